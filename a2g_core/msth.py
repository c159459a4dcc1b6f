"""Multi-Scale Temporal Hashing (paper §4.3, appendix A.1): which future steps are imagined and acted.

From the current step t, with proximal horizon P, visual stride r, M distal anchors and total
imagined length K:

- proximal frames at ``t + k·r``, k = 1..P/r (dense, for closed-loop control);
- distal frames at ``t + d_m``, ``d_m = P + floor((K − P) / log(M + 1) · log(m + 1))``, m = 1..M
  (log-spaced, sparse; ``d_M = K``: the last anchor is the goal);
- proximal actions 1..P (the first E are executed), distal actions at the ``d_m`` (guidance only).

An action offset k is the k-th action from now: the one executed at step ``t + k − 1``, which
brings the observation at ``t + k``. Edge rules: K is clamped to at least P (an episode that ends
before P still has P proximal actions), and every index past the episode's end repeats the last
frame or action; at rest on the goal, that is what the robot would see and do.
The dataset, the models and the UI read offsets from here and from nowhere else.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MSTHConfig:
    """``P`` proximal horizon, ``r`` visual stride, ``M`` distal anchors, ``E`` actions executed."""
    P: int = 54
    r: int = 6
    M: int = 9
    E: int = 50

    def __post_init__(self):
        for name in ("P", "r", "E"):
            if getattr(self, name) < 1:
                raise ValueError(f"MSTH {name} must be at least 1, got {getattr(self, name)}.")
        if self.M < 0:
            raise ValueError(f"MSTH M (distal anchors) must be 0 or more, got {self.M}.")
        if self.P % self.r:
            raise ValueError(f"MSTH P ({self.P}) must be a multiple of the stride r ({self.r}).")
        if self.E > self.P:
            raise ValueError(f"MSTH E ({self.E}) cannot exceed the proximal horizon P ({self.P}).")

    @property
    def num_proximal_frames(self) -> int:
        return self.P // self.r

    @property
    def num_frames(self) -> int:
        return self.num_proximal_frames + self.M

    @property
    def num_actions(self) -> int:
        return self.P + self.M


def proximal_frame_offsets(cfg: MSTHConfig) -> np.ndarray:
    """``k·r`` for k = 1..P/r."""
    return cfg.r * np.arange(1, cfg.num_proximal_frames + 1)


def distal_offsets(cfg: MSTHConfig, K: int) -> np.ndarray:
    """``d_m`` for m = 1..M, with K clamped to at least P; non-decreasing, ``d_M = max(K, P)``."""
    K = max(int(K), cfg.P)
    if cfg.M == 0:
        return np.zeros(0, dtype=int)
    m = np.arange(1, cfg.M + 1)
    # the tiny epsilon keeps floor() exact at m = M, where the ratio of logs is 1
    return cfg.P + np.floor((K - cfg.P) / math.log(cfg.M + 1) * np.log(m + 1) + 1e-9).astype(int)


def frame_offsets(cfg: MSTHConfig, K: int) -> np.ndarray:
    """All imagined frame offsets: proximal then distal."""
    return np.concatenate([proximal_frame_offsets(cfg), distal_offsets(cfg, K)])


def action_offsets(cfg: MSTHConfig, K: int) -> np.ndarray:
    """All predicted action offsets: proximal 1..P then distal ``d_m``."""
    return np.concatenate([np.arange(1, cfg.P + 1), distal_offsets(cfg, K)])


def executed_offsets(cfg: MSTHConfig) -> np.ndarray:
    """The proximal actions that are executed: 1..E."""
    return np.arange(1, cfg.E + 1)


def episode_indices(cfg: MSTHConfig, t: int, length: int, K: int | None = None) -> dict[str, np.ndarray]:
    """Array indices for a training sample at step ``t`` of an episode with ``length`` actions
    (and ``length + 1`` frames). K defaults to the steps left to the episode's last frame (the goal).

    Returns ``frames`` (into the frame array) and ``actions`` (into the action array), both clamped
    to the episode, and ``frame_offsets`` / ``action_offsets`` as used.
    """
    if not 0 <= t <= length:
        raise ValueError(f"Step {t} is outside the episode (0..{length}).")
    K = length - t if K is None else K
    f_off, a_off = frame_offsets(cfg, K), action_offsets(cfg, K)
    return {"frames": np.minimum(t + f_off, length), "actions": np.clip(t + a_off - 1, 0, max(length - 1, 0)),
            "frame_offsets": f_off, "action_offsets": a_off}
