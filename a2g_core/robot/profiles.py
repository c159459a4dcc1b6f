"""Embodiment profiles: what a robot sends and receives on the wire, and the safety limits the
server applies to every action it sends. The profile is part of a checkpoint's config."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from a2g_core.sim.scene import CONTROL_HZ, WORKSPACE_HIGH, WORKSPACE_LOW


@dataclass(frozen=True)
class Profile:
    name: str
    cameras: dict              # wire key -> the policy's view name
    state_key: str
    state_names: tuple
    action_names: tuple
    low: tuple                 # per action dim: hard limits (joint limits / workspace)
    high: tuple
    max_step: tuple            # per action dim: largest change from one control step to the next
    fps: int
    control: str               # what an action means, in words
    half_turn_dims: tuple = ()  # state dims that are a parallel gripper's yaw: the same grip turned by a half turn

    @property
    def state_dim(self) -> int:
        return len(self.state_names)

    @property
    def action_dim(self) -> int:
        return len(self.action_names)

    @property
    def grip_dims(self) -> tuple:
        """The action dims that command a gripper."""
        return tuple(i for i, n in enumerate(self.action_names) if "grip" in n)

    def make_safe(self, actions: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Clamp a chunk (H, A) to the limits and to ``max_step`` per step, starting from ``state``
        (whose first ``action_dim`` entries are the commanded quantities). Non-finite input is an error."""
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[1] != self.action_dim:
            raise ValueError(f"A chunk for {self.name} must be (H, {self.action_dim}); got {actions.shape}.")
        if not np.isfinite(actions).all():
            raise ValueError("The policy produced non-finite actions; nothing was sent.")
        low, high, step = (np.asarray(v, dtype=np.float64) for v in (self.low, self.high, self.max_step))
        prev = np.clip(np.asarray(state, dtype=np.float64)[: self.action_dim], low, high)
        out = np.empty_like(actions)
        for k, a in enumerate(actions):
            prev = np.clip(np.clip(a, prev - step, prev + step), low, high)
            out[k] = prev
        return out.astype(np.float32)


_JOINTS = tuple(f"{arm}_joint{i}" for arm in ("left", "right") for i in range(1, 8))

PROFILES = {
    "tabletop": Profile(
        name="tabletop",
        cameras={"observation.images.head": "head", "observation.images.wrist": "wrist"},
        state_key="observation.state",
        state_names=("ee_x", "ee_y", "ee_z", "ee_yaw", "grip"),
        action_names=("target_x", "target_y", "target_z", "target_yaw", "grip_cmd"),
        low=tuple(float(v) for v in WORKSPACE_LOW), high=tuple(float(v) for v in WORKSPACE_HIGH),
        # the scripted experts move at most 0.02 m, 0.2 rad per step (measured on the expert data)
        max_step=(0.05, 0.05, 0.05, 0.4, 1.0),
        fps=CONTROL_HZ,
        control="absolute end-effector pose targets (m, rad) and gripper command (0 open, 1 closed)",
        half_turn_dims=(3,),
    ),
    # AgiBot Genie-01: two 7-joint arms and two grippers, as AgiBot World and Genie Sim lay them out.
    # Joint limits below are conservative defaults, NOT the robot's datasheet: set the real ones
    # before driving hardware (untested here: no robot is attached to this project's machines).
    "genie01": Profile(
        name="genie01",
        cameras={"observation.images.top_head": "top_head", "observation.images.hand_left": "hand_left",
                 "observation.images.hand_right": "hand_right"},
        state_key="observation.state",
        state_names=_JOINTS + ("left_gripper", "right_gripper"),
        action_names=_JOINTS + ("left_gripper", "right_gripper"),
        low=(-3.1,) * 14 + (0.0, 0.0), high=(3.1,) * 14 + (1.0, 1.0),
        max_step=(0.05,) * 14 + (0.2, 0.2),
        fps=30,
        control="absolute joint position targets (rad) and gripper openings (0..1)",
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"Unknown embodiment profile {name!r}; choose one of {', '.join(PROFILES)}.")
    return PROFILES[name]
