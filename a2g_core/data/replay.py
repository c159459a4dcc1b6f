"""Hindsight replay (paper §4.5, HER): every executed chunk is a transition (o, c_p, a, o'), and
relabelling makes the observation actually reached the goal, g' = o'. The sample's action targets
are the actions taken between o and o' and only those (the paper: "optimise action prediction
toward the stored action a"); the MSTH offsets past o' have no action taken towards g', so the loss
masks them out rather than invent one. A failed rollout teaches as much as a successful one: "this
is how you get there".

Which reached observation is the goal (``goal``):
- ``chunk``: the one the chunk ended on, the paper's g' = o' (E steps ahead: a near goal);
- ``future``: any observation the rollout reached from there to its end, uniformly (HER's
  "future" strategy; the chunk's own end is one of them). Goals then lie as far ahead as the task
  goals the policy is evaluated on, and the targets are the whole way there.

``keep_goal`` (not the paper's recipe): a rollout that reached the goal it was given (the sim's
check, or the operator's label) has one more true goal, that one; this share of its samples keep it,
with the targets the whole way to the rollout's end (HER keeps a share of original goals too). Only
those samples ever show the policy goals of the kind it is evaluated and operated on (the expert's
last frame, the arm back home): the relabelled ones are frames of its own rollouts. Measured
(README, self-improvement): successes with future goals and a kept share of 0.5 took hard move_can_pot from 0.06 to
0.31 in three rounds and the cup policy shipped until the fifteenth session from 0.33 to 0.75 in one; without kept goals the
rounds gave the gain back.

Measured (docs/improvement-runs.md, tenth session): with "stay" as the targets past o' instead of the mask, 45
LoRA steps on *expert* episodes relabelled this way raised the policy's action loss on the
expert's own windows from 0.18 to 0.48 (masked: 0.22; with the task goals: 0.19)."""
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
    goal: np.ndarray | None = None   # (V, C, h, w): the latents of the goal it was given and reached


GOALS = ("chunk", "future")


def check_keep_goal(share: float) -> None:
    if not 0 <= share <= 1:
        raise ValueError(f"The share of samples that keep their given goal is between 0 and 1, not {share}.")


class HindsightReplay:
    def __init__(self, cfg: msth.MSTHConfig, goal: str = "chunk", horizon: int | None = None,
                 keep_goal: float = 0.0):
        if goal not in GOALS:
            raise ValueError(f"Unknown relabelling {goal!r}; choose {' or '.join(GOALS)}.")
        check_keep_goal(keep_goal)
        self.cfg, self.goal, self.horizon = cfg, goal, horizon        # horizon: K as in data.windows
        self.keep_goal = keep_goal
        self.rollouts: list[_Rollout] = []
        self.transitions: list[tuple[int, int, int]] = []       # (rollout, t0, t1)

    def add_rollout(self, latents: list[np.ndarray], states: np.ndarray, actions: np.ndarray,
                    chunks: list[tuple[int, int]], reached_goal: list[np.ndarray] | None = None) -> None:
        """One rollout's frames (as latents per view), states, actions and its executed chunks;
        ``reached_goal``: the latents per view of the goal it was given, if it reached it."""
        steps = len(actions)
        if len(states) != steps + 1 or any(len(l) != steps + 1 for l in latents):
            raise ValueError(f"A rollout of {steps} actions needs {steps + 1} states and frames per view.")
        if reached_goal is not None and len(reached_goal) != len(latents):
            raise ValueError(f"The reached goal has {len(reached_goal)} views, the rollout {len(latents)}.")
        if reached_goal is not None and any(g.shape != l.shape[1:] for g, l in zip(reached_goal, latents)):
            raise ValueError(f"The reached goal's latents {[g.shape for g in reached_goal]} do not match the "
                             f"rollout's frames {[l.shape[1:] for l in latents]}.")
        goal = None if reached_goal is None else np.stack(reached_goal).astype(np.float32)
        self.rollouts.append(_Rollout(latents, states, actions, goal))
        for t0, t1 in chunks:
            if not 0 <= t0 < t1 <= steps:
                raise ValueError(f"Chunk ({t0}, {t1}) lies outside the rollout's {steps} steps.")
            self.transitions.append((len(self.rollouts) - 1, t0, t1))

    def __len__(self) -> int:
        return len(self.transitions)

    def goal_step(self, i: int, rng: np.random.Generator) -> int:
        """The step whose observation becomes transition ``i``'s goal (see ``goal`` above)."""
        r, _, t1 = self.transitions[i]
        return t1 if self.goal == "chunk" else int(rng.integers(t1, len(self.rollouts[r].actions) + 1))

    def relabel_with_achieved_goal(self, i: int, goal_step: int | None = None) -> dict[str, np.ndarray]:
        """Transition ``i`` as a training sample whose goal is the observation reached at
        ``goal_step`` (default: where its chunk ended)."""
        r, t0, t1 = self.transitions[i]
        ro = self.rollouts[r]
        end = t1 if goal_step is None else goal_step
        if not t1 <= end <= len(ro.actions):
            raise ValueError(f"Goal step {end} is not reached after chunk ({t0}, {t1}) of a {len(ro.actions)}-step rollout.")
        return msth_window(self.cfg, ro.latents, ro.states, ro.actions, t0, end, self.horizon, supervise_past_end=False)

    def _sample_one(self, i: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        ro = self.rollouts[self.transitions[i][0]]
        if ro.goal is not None and rng.random() < self.keep_goal:
            item = self.relabel_with_achieved_goal(i, len(ro.actions))     # the whole way to where it succeeded
            return {**item, "goal_latents": ro.goal}
        return self.relabel_with_achieved_goal(i, self.goal_step(i, rng))

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        if not self.transitions:
            raise ValueError("The replay buffer is empty: record some rollouts first.")
        picks = [int(i) for i in rng.integers(0, len(self), batch_size)]
        items = [self._sample_one(i, rng) for i in picks]
        return {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in items[0]}
