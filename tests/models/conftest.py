import pytest
import torch

from a2g_core.models.act2goal import Act2GoalConfig, Act2GoalPolicy
from a2g_core.models.vae import VAEConfig, VideoVAE

TINY_VAE = VAEConfig(resolution=32, block_out_channels=(8, 16, 16, 16), norm_num_groups=8, latent_channels=4,
                     object_weight=0.0)
TINY = Act2GoalConfig(resolution=32, latent_channels=4, latent_size=4, patch_size=2, latent_standardize=True, keypoints=4, msth_P=8, msth_r=4, msth_M=2,
                      msth_E=6, inference_horizon=30, wm_dim=32, wm_heads=2, layers=2, expert_dim=16,
                      expert_heads=2, imagine_steps=2, action_steps=2)


@pytest.fixture
def policy():
    torch.manual_seed(0)
    vae = VideoVAE(TINY_VAE).requires_grad_(False)
    return Act2GoalPolicy(TINY, vae=vae)


def make_batch(cfg=TINY, b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    v, f, h = len(cfg.views), cfg.msth.num_frames, cfg.msth.num_actions
    c, s = cfg.latent_channels, cfg.latent_size
    return {"obs_latents": torch.randn(b, v, c, s, s, generator=g), "goal_latents": torch.randn(b, v, c, s, s, generator=g),
            "future_latents": torch.randn(b, v, f, c, s, s, generator=g),
            "frame_offsets": torch.randint(1, 40, (b, f), generator=g), "state": torch.randn(b, 5, generator=g),
            "actions": torch.randn(b, h, 5, generator=g), "action_offsets": torch.randint(1, 40, (b, h), generator=g)}


def make_obs(cfg=TINY, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = lambda: torch.randint(0, 255, (cfg.resolution, cfg.resolution, 3), dtype=torch.uint8, generator=g).numpy()
    return {"images": {v: img() for v in cfg.views}, "state": torch.randn(5, generator=g).numpy()}, \
        {v: img() for v in cfg.views}
