"""The embedded simulator: a MuJoCo tabletop with the paper's seven tasks, as gymnasium envs.

``gymnasium.make("Act2Goal/PlaceEmptyCup-v0", mode="hard")`` or ``make_env("place_empty_cup", "hard")``.
"""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")      # before mujoco is first imported: CPU EGL, no display

import gymnasium as gym  # noqa: E402

from a2g_core.sim.env import ACTION_DIM, RESOLUTIONS, STATE_DIM, VIEWS, TabletopEnv  # noqa: E402
from a2g_core.sim.tasks import MODES, TASKS  # noqa: E402

ENV_IDS = {name: "Act2Goal/" + "".join(p.capitalize() for p in name.split("_")) + "-v0" for name in TASKS}

for _name, _id in ENV_IDS.items():
    if _id not in gym.registry:
        gym.register(id=_id, entry_point="a2g_core.sim.env:TabletopEnv", kwargs={"task": _name})


def make_env(task: str, mode: str = "easy", resolution: int = 96, **kwargs) -> TabletopEnv:
    """The unwrapped env (what experts, data generation and the lab use)."""
    return TabletopEnv(task=task, mode=mode, resolution=resolution, **kwargs)


__all__ = ["ACTION_DIM", "ENV_IDS", "MODES", "RESOLUTIONS", "STATE_DIM", "TASKS", "VIEWS", "TabletopEnv", "make_env"]
