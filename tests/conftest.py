import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "0")

import pytest  # noqa: E402


def _tiny_policy(path, **variant):
    import numpy as np
    import torch

    from a2g_core.models.act2goal import Act2GoalConfig, Act2GoalPolicy
    from a2g_core.models.vae import VAEConfig, VideoVAE
    torch.manual_seed(0)
    vae = VideoVAE(VAEConfig(resolution=64, block_out_channels=(8, 16, 16, 16), norm_num_groups=8, latent_channels=4))
    cfg = Act2GoalConfig(**variant, latent_channels=4, msth_P=8, msth_r=4, msth_M=2, msth_E=6, wm_dim=32, wm_heads=2, layers=2,
                         expert_dim=16, expert_heads=2, imagine_steps=2, action_steps=2)
    policy = Act2GoalPolicy(cfg, vae=vae)
    rng = np.random.default_rng(0)
    policy.set_normalization(rng.normal(0, 0.1, (100, 5)), rng.normal(0, 0.05, (100, 10, 5)), np.zeros((100, 5)))
    for p in policy.expert.head.parameters():          # the head starts at zero: make actions vary
        torch.nn.init.normal_(p, std=0.1)
    policy.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory):
    """An untrained 64 px policy (toy widths) saved like a real checkpoint: enough to drive the sim."""
    return _tiny_policy(tmp_path_factory.mktemp("policy") / "tiny64")


@pytest.fixture(scope="session")
def tiny_dp_gc_dir(tmp_path_factory):
    """The DP-GC baseline (no world model, no MSTH) at the same toy size."""
    from a2g_core.train.stages import VARIANTS
    return _tiny_policy(tmp_path_factory.mktemp("policy") / "dp_gc64", **VARIANTS["dp_gc"])
