"""The video VAE: diffusers' AutoencoderKL applied frame by frame, plus per-channel latent statistics
(computed once on the training frames) so the world model works on unit-scale latents."""
from __future__ import annotations

import dataclasses

import torch
from diffusers import AutoencoderKL

from a2g_core.models.vae.configuration_vae import VAEConfig


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 (..., H, W, 3) → float (..., 3, H, W) in [−1, 1]."""
    return images.permute(*range(images.dim() - 3), -1, -3, -2).float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float (..., 3, H, W) in [−1, 1] → uint8 (..., H, W, 3)."""
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(*range(x.dim() - 3), -2, -1, -3)


class VideoVAE(torch.nn.Module):
    config_class = VAEConfig

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        n = len(config.block_out_channels)
        self.ae = AutoencoderKL(
            in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
            up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=tuple(config.block_out_channels),
            layers_per_block=config.layers_per_block, latent_channels=config.latent_channels,
            norm_num_groups=config.norm_num_groups, sample_size=config.resolution, mid_block_add_attention=False)
        self.register_buffer("latent_mean", torch.zeros(config.latent_channels))
        self.register_buffer("latent_std", torch.ones(config.latent_channels))

    def at_resolution(self, resolution: int) -> "VideoVAE":
        """This VAE reading frames of ``resolution`` px (in place): it is convolutional, so its weights
        read any size its downsampling divides (a 64 px VAE reads 96 px frames into 24×24 latents)."""
        self.config = dataclasses.replace(self.config, resolution=resolution)
        return self

    def _check(self, images: torch.Tensor) -> None:
        r = self.config.resolution
        if images.dtype != torch.uint8 or images.shape[-3:] != (r, r, 3):
            raise ValueError(f"The VAE takes uint8 frames of shape (..., {r}, {r}, 3); got {tuple(images.shape)} "
                             f"{images.dtype}.")

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (..., H, W, 3) → normalised latent means (..., C, h, w)."""
        self._check(images)
        lead = images.shape[:-3]
        x = to_unit(images.reshape(-1, *images.shape[-3:]))
        z = self.ae.encode(x).latent_dist.mean
        z = (z - self.latent_mean[:, None, None]) / self.latent_std[:, None, None]
        return z.reshape(*lead, *z.shape[1:])

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (..., C, h, w) → uint8 frames (..., H, W, 3)."""
        lead = latents.shape[:-3]
        z = latents.reshape(-1, *latents.shape[-3:])
        z = z * self.latent_std[:, None, None] + self.latent_mean[:, None, None]
        x = self.ae.decode(z).sample
        return to_uint8(x).reshape(*lead, *to_uint8(x).shape[1:])

    @torch.no_grad()
    def calibrate(self, images: torch.Tensor) -> None:
        """Set the latent statistics from a sample of training frames (uint8 (N, H, W, 3))."""
        self._check(images)
        z = self.ae.encode(to_unit(images.to(self.latent_mean.device))).latent_dist.mean
        self.latent_mean.copy_(z.mean(dim=(0, 2, 3)))
        self.latent_std.copy_(z.std(dim=(0, 2, 3)).clamp_min(1e-4))

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """``batch["frames"]``: uint8 (B, H, W, 3). Loss = L1 + MSE reconstruction (optionally weighted
        toward pixels unlike the frame's median colour) + a small KL."""
        self._check(batch["frames"])
        x = to_unit(batch["frames"])
        post = self.ae.encode(x).latent_dist
        rec = self.ae.decode(post.sample()).sample
        err = (rec - x).abs() + (rec - x) ** 2
        if self.config.object_weight:
            # small objects are few pixels against a plain table: weight pixels by how far they are
            # from the frame's median colour, so a 4-pixel cup counts (it vanished without this)
            med = x.flatten(2).median(dim=2).values[..., None, None]
            w = 1 + self.config.object_weight * (x - med).abs().mean(dim=1, keepdim=True)
            err = err * w / w.mean(dim=(2, 3), keepdim=True)
        loss_rec = err.mean()
        loss_kl = post.kl().mean() / x[0].numel()
        loss = loss_rec + self.config.kl_weight * loss_kl
        return loss, {"loss_rec": loss_rec.detach(), "loss_kl": loss_kl.detach()}
