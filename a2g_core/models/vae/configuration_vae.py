from __future__ import annotations

from dataclasses import dataclass

from a2g_core.models.config import ConfigBase


@dataclass
class VAEConfig(ConfigBase):
    """A small per-frame AutoencoderKL: ``resolution`` px → (``latent_channels``, res/4, res/4).

    Frames of every view share the encoder; the world model sees them as a video of latents.
    """
    resolution: int = 64
    block_out_channels: tuple = (16, 32, 64)          # 3 blocks: 2 downsamplings, 4× (8× erased small objects)
    layers_per_block: int = 1
    latent_channels: int = 8
    norm_num_groups: int = 8
    kl_weight: float = 1e-6
    object_weight: float = 10.0                       # > 0: reconstruction weighted toward non-background pixels

    def __post_init__(self):
        if self.resolution % self.downsample:
            raise ValueError(f"The VAE resolution {self.resolution} must be divisible by {self.downsample}.")
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise ValueError(f"Every VAE channel count must be divisible by norm_num_groups={self.norm_num_groups}.")
        if self.latent_channels < 1:
            raise ValueError("The VAE needs at least one latent channel.")

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def latent_size(self) -> int:
        return self.resolution // self.downsample
