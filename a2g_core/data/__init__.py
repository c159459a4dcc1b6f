"""Episode store on disk, and (later) the latent cache, MSTH window sampler and HER replay buffer."""
