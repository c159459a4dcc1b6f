"""Hindsight replay (paper §4.5, HER): every executed chunk is a transition (o, c_p, a, o'), and
relabelling makes the observation actually reached the goal, g' = o'. The MSTH targets of the
sample come from what was reached too (frames and actions between o and o'; past o' the last one
repeats), so a failed rollout teaches as much as a successful one: "this is how you get there"."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from a2g_core import msth
from a2g_core.data.windows import msth_window


@dataclass
class _Rollout:
    latents: list[np.ndarray]        # per view (T+1, C, h, w)
    states: np.ndarray               # (T+1, S)
    actions: np.ndarray              # (T, A)


class HindsightReplay:
    def __init__(self, cfg: msth.MSTHConfig):
        self.cfg = cfg
        self.rollouts: list[_Rollout] = []
        self.transitions: list[tuple[int, int, int]] = []       # (rollout, t0, t1)

    def add_rollout(self, latents: list[np.ndarray], states: np.ndarray, actions: np.ndarray,
                    chunks: list[tuple[int, int]]) -> None:
        """One rollout's frames (as latents per view), states, actions and its executed chunks."""
        steps = len(actions)
        if len(states) != steps + 1 or any(len(l) != steps + 1 for l in latents):
            raise ValueError(f"A rollout of {steps} actions needs {steps + 1} states and frames per view.")
        self.rollouts.append(_Rollout(latents, states, actions))
        for t0, t1 in chunks:
            if not 0 <= t0 < t1 <= steps:
                raise ValueError(f"Chunk ({t0}, {t1}) lies outside the rollout's {steps} steps.")
            self.transitions.append((len(self.rollouts) - 1, t0, t1))

    def __len__(self) -> int:
        return len(self.transitions)

    def relabel_with_achieved_goal(self, i: int) -> dict[str, np.ndarray]:
        """Transition ``i`` as a training sample whose goal is the observation it reached."""
        r, t0, t1 = self.transitions[i]
        ro = self.rollouts[r]
        return msth_window(self.cfg, ro.latents, ro.states, ro.actions, t0, t1)

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        if not self.transitions:
            raise ValueError("The replay buffer is empty: record some rollouts first.")
        items = [self.relabel_with_achieved_goal(int(i)) for i in rng.integers(0, len(self), batch_size)]
        return {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in items[0]}
