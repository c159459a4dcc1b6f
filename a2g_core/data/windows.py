"""MSTH training windows: for a step t of an episode, the current latents, the goal latents, the
future latents at the MSTH frame offsets, the state, and the actions at the MSTH action offsets
(offsets from ``a2g_core.msth`` only). The goal is the episode's final frame (paper §5.2), or its
first frame with the task done (``goal_frame="success"``, see ``a2g_core.data.episodes.GOAL_FRAMES``).

Windows start only while the task is still undone (before the episode's ``success_step``, when it
is recorded): the expert's way home after success stays a target (future frames and actions) but is
never a start. Rollouts stop at success, so those starts are never met at control time, and they
taught the policy that "arm at home, as in the goal image" means "stay": measured (``diagnose``), a
DP-GC trained with them was still within 3 cm of home after 48 steps of a training seed."""
from __future__ import annotations

import numpy as np
import torch

from a2g_core import msth
from a2g_core.data.episodes import EpisodeStore, goal_step, grip_changes
from a2g_core.data.latents import load_latents

# what a window's ``done_state`` (the pose readout's target) is: the state where the task is done, or the state at
# the next step a gripper command changes (``grip_changes``: a grasp or a release), where the task is done after the last
POSE_TARGETS = ("done", "next_grip")


class MSTHWindows:
    """Samples batches of windows from the latent cache of ``store``; holds memory maps, not frames."""

    def __init__(self, store: EpisodeStore, latent_root, cfg: msth.MSTHConfig, views, goal_frame: str = "final",
                 horizon: int | None = None, early: float = 0.0, pose_target: str = "done", grip_dims=()):
        """``early``: the fraction of sampled windows that start within the episode's first P steps
        (the rest start anywhere before success). ``pose_target`` (``POSE_TARGETS``) sets each window's
        ``done_state``; "next_grip" reads the gripper commands at ``grip_dims`` of the actions."""
        if len(store) == 0:
            raise ValueError(f"The dataset {store.root} has no successful episodes to train on.")
        missing = [v for v in views if v not in store.views]
        if missing:
            raise ValueError(f"The dataset {store.root} has no view(s) {missing}; it has {store.views}.")
        if not 0 <= early <= 1:
            raise ValueError(f"The fraction of early windows must be in [0, 1], got {early}.")
        if pose_target not in POSE_TARGETS:
            raise ValueError(f"The pose target must be one of {', '.join(POSE_TARGETS)}; got {pose_target!r}.")
        self.cfg, self.views, self.horizon, self.early = cfg, list(views), horizon, early
        self.latents = [[load_latents(latent_root, e.path.name, v) for v in self.views] for e in store]
        low = [e.lowdim() for e in store]
        self.states = [s for s, _ in low]
        self.actions = [a for _, a in low]
        self.lengths = np.array([e.length for e in store])
        self.starts = np.array([e.steps_before_success for e in store])
        self.ends = np.array([goal_step(goal_frame, e.length, e.success_step) for e in store])
        self.dones = np.array([goal_step("success", e.length, e.success_step) for e in store])
        self.grips = [grip_changes(a, grip_dims) if pose_target == "next_grip" else None for a in self.actions]

    def all_states(self) -> np.ndarray:
        return np.concatenate(self.states)

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        eps = rng.integers(0, len(self.lengths), batch_size)
        span = self.starts[eps]
        if self.early:
            span = np.where(rng.random(batch_size) < self.early, np.minimum(span, self.cfg.P), span)
        items = [self.window(int(e), int(rng.integers(0, n))) for e, n in zip(eps, span)]
        return {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in items[0]}

    def window(self, e: int, t: int) -> dict[str, np.ndarray]:
        """The window at step ``t`` of episode ``e``, its goal at the episode's goal step."""
        done, grips = int(self.dones[e]), self.grips[e]
        if grips is not None:                           # the next grasp or release at or after t, if before done
            i = np.searchsorted(grips, t)
            done = min(done, int(grips[i])) if i < len(grips) else done
        return msth_window(self.cfg, self.latents[e], self.states[e], self.actions[e], t, int(self.ends[e]), self.horizon,
                           done=done)


def msth_window(cfg: msth.MSTHConfig, latents: list[np.ndarray], states: np.ndarray, actions: np.ndarray,
                t: int, end: int, horizon: int | None = None, supervise_past_end: bool = True,
                done: int | None = None) -> dict[str, np.ndarray]:
    """A training sample at step ``t`` whose goal is the frame at step ``end``: the MSTH targets
    (frames, actions) come from the steps between, the last one repeating past ``end``. The offsets
    are those of K = ``horizon`` (the policy's control K), or of the steps left to ``end`` when None.
    ``latents`` holds one (T+1, C, h, w) array per view. ``action_mask`` says which action targets
    the loss reads: all of them, or without ``supervise_past_end`` only the actions taken up to
    ``end`` (nothing was taken after a relabelled goal, so nothing there is a target). ``done_state`` is the
    state at step ``done``, where the task is done (default ``end``): the target of the pose readout."""
    idx = msth.episode_indices(cfg, t, end, K=horizon)
    mask = np.ones(len(idx["action_offsets"]), np.float32) if supervise_past_end else \
        (t + idx["action_offsets"] <= end).astype(np.float32)
    return {
        "action_mask": mask,
        "obs_latents": np.stack([l[t] for l in latents]).astype(np.float32),
        "goal_latents": np.stack([l[end] for l in latents]).astype(np.float32),
        "future_latents": np.stack([l[idx["frames"]] for l in latents]).astype(np.float32),
        "frame_offsets": idx["frame_offsets"].astype(np.int64),
        "state": states[t].astype(np.float32),
        "done_state": states[end if done is None else done].astype(np.float32),
        "actions": actions[idx["actions"]].astype(np.float32),
        "action_offsets": idx["action_offsets"].astype(np.int64),
    }
