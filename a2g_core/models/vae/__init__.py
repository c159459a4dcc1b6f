from a2g_core.models.vae.configuration_vae import VAEConfig
from a2g_core.models.vae.modeling_vae import VideoVAE

__all__ = ["VAEConfig", "VideoVAE"]
