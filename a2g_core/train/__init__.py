"""One training loop for every stage: the VAE, stage 1 (L_v + λ·L_a), stage 2 (L_a), LoRA rounds."""
