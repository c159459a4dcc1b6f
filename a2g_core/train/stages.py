"""The stages, each a model + a batch sampler handed to the one training loop.

- ``vae``: the video VAE on random frames of the dataset (all views).
- ``1``: Act2Goal joint training, ``L_v + λ·L_a`` (paper §4.4), on the latent cache.
- ``2``: action adaptation, ``L_a`` end to end, from a stage-1 policy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from a2g_core.data.episodes import EpisodeStore
from a2g_core.models.act2goal import PRESETS, Act2GoalConfig, Act2GoalPolicy
from a2g_core.models.act2goal.configuration_act2goal import GENIE01
from a2g_core.models.io import load_network, save_network
from a2g_core.models.vae import VAEConfig, VideoVAE
from a2g_core.train.loop import TrainConfig, device, train

# the method and the baselines of the paper, one harness: same encoder, expert, data and loop
VARIANTS = {"act2goal": {}, "no_msth": {"use_msth": False},
            "dp_gc": {"use_world_model": False, "use_msth": False}}
# the model's layout per embodiment profile (a2g_core.robot.profiles); a dataset names its profile
LAYOUTS = {"tabletop": {}, "genie01": GENIE01}


def frame_sampler(store: EpisodeStore) -> Callable[[np.random.Generator, int], dict]:
    views = store.views
    lengths = np.array([e.length + 1 for e in store])

    def sample(rng, b):
        eps = rng.integers(0, len(store), b)
        frames = [store[e].frames(views[rng.integers(len(views))])[rng.integers(lengths[e])] for e in eps]
        return {"frames": torch.from_numpy(np.stack(frames))}
    return sample


def train_vae(data: str | Path, out: str | Path, cfg: TrainConfig, *, vae_config: VAEConfig | None = None,
              progress=None):
    store = EpisodeStore(data, only_success=False)
    if len(store) == 0:
        raise ValueError(f"The dataset {data} has no episodes.")
    res = store.resolution
    vae_config = vae_config or VAEConfig(resolution=res)
    if vae_config.resolution != res:
        raise ValueError(f"The dataset's frames are {res} px but the VAE takes {vae_config.resolution} px.")
    vae = VideoVAE(vae_config)
    sample = frame_sampler(store)
    calib = np.random.default_rng(1234)

    def save(folder: Path):
        vae.calibrate(sample(calib, 256)["frames"])
        save_network(vae, folder / "vae")

    logs = train(vae, sample, cfg, out, save_fn=save, progress=progress)
    save(Path(out))
    return logs


def build_policy(preset: str | Act2GoalConfig, vae_dir: str | Path, variant: str = "act2goal",
                 profile: str = "tabletop", resolution: int | None = None) -> Act2GoalPolicy:
    """A fresh policy of ``preset`` (a name or a config), sized to the trained VAE in ``vae_dir`` and
    laid out for the embodiment ``profile`` (views, state and action dimensions). ``resolution``:
    the frames' size where it is not the VAE's (``VideoVAE.at_resolution``)."""
    if isinstance(preset, str) and preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    if variant not in VARIANTS:
        raise ValueError(f"Unknown policy {variant!r}; choose one of {', '.join(VARIANTS)}.")
    vae = load_network(VideoVAE, Path(vae_dir))
    if resolution:
        vae.at_resolution(resolution)
    vae.requires_grad_(False)
    base = PRESETS[preset] if isinstance(preset, str) else preset
    cfg = base.fit_to_vae(vae.config).with_(**VARIANTS[variant], **LAYOUTS[profile])
    return Act2GoalPolicy(cfg, vae=vae)


SPREAD_LIMIT = 10.0   # a dim varying this many times the policy's own std is one it was not trained on


def _refuse_new_spread(policy, proprio, spec, data, init) -> None:
    """One clear sentence where the data moves a state or action dim far beyond the ``init`` policy's statistics,
    which would feed it values hundreds of stds out and wreck the training (measured on hard plug_in: action losses of 10²–10³)."""
    state_spread, action_spread = policy.proprio_spread(*proprio)
    for kind, spread in (("state", state_spread), ("action", action_spread)):
        names = spec.get(f"{kind}_names")
        i = int(np.argmax(spread))
        if spread[i] > SPREAD_LIMIT:
            name = f"{names[i]!r}" if names and i < len(names) else f"dim {i}"
            raise ValueError(f"The {kind} {name} varies {spread[i]:.0f}× more in {data} than in the data {init} was "
                             f"trained on; pass --renormalize to refit its state and action statistics to this data.")


def train_policy(data: str | Path, out: str | Path, cfg: TrainConfig, *, stage: int,
                 preset: str | Act2GoalConfig = "tiny",
                 vae_dir: str | Path | None = None, init: str | Path | None = None, variant: str = "act2goal",
                 per_task: int | None = None, tasks=None, modes=None, progress=None, cache_progress=None,
                 retrain: dict | None = None, renormalize: bool = False, execute: int | None = None,
                 keypoint_shapes: bool = False, carry_resolution: bool = False):
    """Stage 1 or 2 on the dataset's successful episodes (``per_task`` of each task and mode, only
    ``tasks``/``modes`` where given). ``retrain`` replaces settings of an ``init``
    policy's config (``state_noise``, ``state_noise_dims``, ``early_windows``, ``pose_loss_weight``, ``pose_target``,
    ``context_dropout``, ``goal_frame``, ``video_loss_weight``, and, only with ``renormalize``, ``relative_dims`` and
    ``half_turn_actions``;
    ``fixed_horizon``: switches a policy trained on the steps left to the goal to control's K). An ``init``
    policy keeps its state and action statistics unless ``renormalize`` refits them to this data; data where a dim varies
    far more than they allow (hard plug_in turns its peg, easy never does) is refused. ``execute``
    sets the E the saved policy runs with (training never reads it; default: the preset's or the
    ``init`` policy's). ``keypoint_shapes`` has the action expert read its keypoint maps' shapes too, from
    a new input layer at zero weight (an ``init`` policy acts as before until training uses them).
    ``carry_resolution``: an ``init`` policy trained on frames of another size is carried to the data's
    (``Act2GoalPolicy.at_resolution``, its latent statistics fitted to the data); otherwise that is refused."""
    from a2g_core.data.latents import build_latent_cache
    from a2g_core.data.windows import MSTHWindows
    if stage == 2 and init is None:
        raise ValueError("Stage 2 starts from a stage-1 policy: pass --init <policy folder>.")
    store = EpisodeStore(data, tasks=tasks, modes=modes, per_task=per_task)
    if not len(store):
        raise ValueError(f"The dataset {data} has no successful episodes" + (f" of {', '.join(tasks)}" if tasks else "")
                         + ".")
    if init is not None:
        policy = Act2GoalPolicy.from_pretrained(init)
        form = {k: v for k, v in (retrain or {}).items() if k in ("relative_dims", "half_turn_actions")}
        if policy.config.with_(**form) != policy.config and not renormalize:
            raise ValueError("A policy's action statistics are of its actions' form (relative dims, half-turn "
                             "actions); changing it needs --renormalize.")
        if retrain:
            checked = policy.config.with_(**retrain)            # validates the new values
            old_half_turn = policy.config.half_turn_action_dims
            for k in retrain:                                   # one config object, shared by both networks
                setattr(policy.config, k, getattr(checked, k))
            policy.expert.refit_action_layers(old_half_turn)
        vae_dir = Path(init) / "vae"
    elif vae_dir is None:
        raise ValueError("Stage 1 needs a trained VAE: pass --vae <folder> (from `train --stage vae`).")
    else:
        profile = store.spec.get("profile", "tabletop")
        if profile not in LAYOUTS:
            raise ValueError(f"The dataset {data} comes from the {profile!r} profile; the models know "
                             f"{', '.join(LAYOUTS)}.")
        policy = build_policy(preset, vae_dir, variant, profile, resolution=store.resolution)
    carried = store.resolution != policy.config.resolution
    if carried and not (init is not None and carry_resolution):
        raise ValueError(f"The dataset's frames are {store.resolution} px but the policy takes "
                         f"{policy.config.resolution} px" + (" (--carry-resolution resizes it to them)." if init else "."))
    if carried:
        policy = policy.at_resolution(store.resolution)
    if execute is not None:
        policy.set_execute(execute)
    if keypoint_shapes:
        policy.expert.add_keypoint_shapes()
    if policy.config.pose_loss_weight:                 # an ``init`` policy given the pose loss by ``retrain``
        policy.expert.add_pose_readout()
    if sorted(store.views) != sorted(policy.config.views):
        raise ValueError(f"The dataset {data} has views {store.views} but the policy reads {list(policy.config.views)}.")
    policy.to(device())                    # the cache is encoded (and the policy trained) on the GPU if any
    latent_root = build_latent_cache(store, policy.vae, vae_dir, progress=cache_progress)
    windows = MSTHWindows(store, latent_root, policy.config.msth, policy.config.views, policy.config.goal_frame,
                          policy.config.train_horizon, policy.config.early_windows,
                          **policy.config.pose_windows)
    chunks = windows.sample(np.random.default_rng(0), 4096)
    proprio = windows.all_states(), chunks["actions"].numpy(), chunks["state"].numpy()
    if carried and policy.config.latent_standardize:        # per element: fitted to frames of the new size
        policy.set_latent_normalization(chunks["obs_latents"].numpy())
    if init is None:
        policy.set_normalization(*proprio, chunks["obs_latents"].numpy())
    elif renormalize:
        policy.set_proprio_normalization(*proprio)
    else:
        _refuse_new_spread(policy, proprio, store.spec, data, init)
    # newest data first: the lab opens on the task a policy was trained on last (--init from another task's)
    policy.trained_on = sorted(store.cells) + [c for c in policy.trained_on or () if c not in store.cells]
    policy.stage = stage
    policy.train()
    policy.vae.eval()
    logs = train(policy, windows.sample, cfg, out, save_fn=policy.save_pretrained, progress=progress)
    policy.save_pretrained(Path(out) / "final")
    return logs
