import pytest
import torch

from a2g_core.models.io import load_network, save_network
from a2g_core.models.vae import VAEConfig, VideoVAE
from a2g_core.models.vae.modeling_vae import to_uint8, to_unit
from tests.models.conftest import TINY_VAE


def test_unit_round_trip():
    x = torch.randint(0, 256, (2, 3, 8, 8, 3), dtype=torch.uint8)
    assert to_unit(x).shape == (2, 3, 3, 8, 8)
    torch.testing.assert_close(to_uint8(to_unit(x)), x)


def test_encode_decode_shapes_and_save_load(tmp_path):
    torch.manual_seed(0)
    vae = VideoVAE(TINY_VAE)
    frames = torch.randint(0, 256, (2, 3, 32, 32, 3), dtype=torch.uint8)
    vae.calibrate(frames.reshape(-1, 32, 32, 3))
    z = vae.encode(frames)
    assert z.shape == (2, 3, 4, 4, 4)
    assert vae.decode(z).shape == frames.shape and vae.decode(z).dtype == torch.uint8
    save_network(vae, tmp_path)
    loaded = load_network(VideoVAE, tmp_path)
    torch.testing.assert_close(loaded.encode(frames), z, rtol=0, atol=0)


def test_training_reduces_reconstruction_loss():
    torch.manual_seed(0)
    vae = VideoVAE(TINY_VAE)
    frames = torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8)
    frames[:, :16] = 40                              # some structure to learn
    opt = torch.optim.Adam(vae.parameters(), lr=2e-3)
    losses = []
    for _ in range(30):
        loss, parts = vae({"frames": frames})
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(parts["loss_rec"].item())
    assert losses[-1] < 0.7 * losses[0]


def test_wrong_frames_are_refused():
    vae = VideoVAE(TINY_VAE)
    with pytest.raises(ValueError, match="uint8 frames"):
        vae.encode(torch.zeros(2, 64, 64, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="uint8 frames"):
        vae.encode(torch.zeros(2, 32, 32, 3))


def test_object_weight_only_reweights_frames_with_objects():
    """On a plain frame every pixel is background, so the weighted loss equals the plain one; a
    small object makes them differ (its pixels weigh more)."""
    plain_cfg = VAEConfig(resolution=32, block_out_channels=(8, 16), norm_num_groups=8, latent_channels=4, object_weight=0.0)
    torch.manual_seed(0)
    plain = VideoVAE(plain_cfg)
    weighted = VideoVAE(VAEConfig(resolution=32, block_out_channels=(8, 16), norm_num_groups=8, latent_channels=4,
                                  object_weight=10.0))
    weighted.load_state_dict(plain.state_dict())
    frames = torch.full((2, 32, 32, 3), 180, dtype=torch.uint8)
    torch.manual_seed(1)
    a = plain({"frames": frames})[1]["loss_rec"]
    torch.manual_seed(1)
    b = weighted({"frames": frames})[1]["loss_rec"]
    torch.testing.assert_close(a, b)
    frames[:, 10:13, 20:23] = torch.tensor([220, 20, 20], dtype=torch.uint8)   # a 3-pixel red object
    torch.manual_seed(1)
    a = plain({"frames": frames})[1]["loss_rec"]
    torch.manual_seed(1)
    b = weighted({"frames": frames})[1]["loss_rec"]
    assert not torch.allclose(a, b)
