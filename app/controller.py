"""The lab's thin controller: UI callbacks call these methods, these call ``a2g_core``.

Each browser session has its own simulator (keyed by a small id kept in ``gr.State``). All of a
simulator's work runs on one thread of its own: MuJoCo's EGL context stays current on the thread
that created it (another thread gets EGL_BAD_ACCESS), and one thread also serialises two clicks.
"""
from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from a2g_core.sim import MODES, TASKS, make_env
from a2g_core.sim.rollout import expert_goal

DISPLAY_SCALE = 3


def upscale(img: np.ndarray, k: int = DISPLAY_SCALE) -> np.ndarray:
    """Nearest-neighbour upscaling so small sim frames stay crisp in the browser."""
    return np.repeat(np.repeat(img, k, axis=0), k, axis=1)


class LabError(Exception):
    """An error meant for the operator: one readable sentence."""


@dataclass
class SimSession:
    env: object = None
    seed: int = 0
    obs: dict | None = None
    info: dict = field(default_factory=dict)
    plan: object = None
    thread: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="sim"))

    def run(self, fn, *args):
        """Run ``fn`` on this session's simulator thread and wait for it."""
        return self.thread.submit(fn, *args).result()


class LabController:
    def __init__(self, resolution: int = 96):
        self.resolution = resolution
        self._sessions: dict[str, SimSession] = {}
        self._guard = threading.Lock()

    # ------------------------------------------------------------------ sessions
    def new_session(self) -> str:
        sid = uuid.uuid4().hex[:12]
        with self._guard:
            self._sessions[sid] = SimSession()
        return sid

    def _session(self, sid: str | None) -> SimSession:
        with self._guard:
            if not sid or sid not in self._sessions:
                raise LabError("This browser session is not known to the lab; reload the page.")
            return self._sessions[sid]

    # ------------------------------------------------------------------ simulator
    def sim_reset(self, sid: str, task: str, mode: str, seed) -> dict:
        if task not in TASKS:
            raise LabError(f"Unknown task {task!r}; pick one from the list.")
        if mode not in MODES:
            raise LabError(f"Unknown mode {mode!r}; pick easy or hard.")
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            raise LabError(f"The seed must be a whole number, not {seed!r}.") from None
        if seed < 0:
            raise LabError("The seed must be zero or positive.")
        s = self._session(sid)

        def reset():
            if s.env is None or s.env.task.name != task or s.env.mode != mode:
                if s.env is not None:
                    s.env.close()
                s.env = make_env(task, mode, self.resolution)
            s.seed = seed
            s.obs, s.info = s.env.reset(seed=seed)
            s.plan = None
            return self._view(s)
        return s.run(reset)

    def sim_step_expert(self, sid: str, steps: int = 10) -> dict:
        """Advance the scripted expert ``steps`` control steps (a demonstration, not the policy)."""
        s = self._session(sid)

        def step():
            if s.env is None:
                raise LabError("Reset the simulator first.")
            if s.plan is None:
                s.plan = s.env.task.expert(s.env)
            for _ in range(int(steps)):
                a = next(s.plan, None)
                if a is None or s.env.steps >= s.env.max_steps:
                    break
                s.obs, _, _, _, s.info = s.env.step(a)
            return self._view(s)
        return s.run(step)

    def goal(self, task: str, mode: str, seed) -> dict:
        goal, ok = expert_goal(task, mode, int(seed), self.resolution)
        return {"head": upscale(goal["head"]), "wrist": upscale(goal["wrist"]), "expert_success": ok}

    def _view(self, s: SimSession) -> dict:
        env = s.env
        extra = ", ".join(f"{k}: {v}" for k, v in s.info.items() if k not in ("is_success", "action"))
        status = (f"{env.task.name} / {env.mode} / seed {s.seed} · step {env.steps}/{env.max_steps} · "
                  f"success: {'yes' if s.info.get('is_success') else 'no'}" + (f" · {extra}" if extra else ""))
        return {"head": upscale(s.obs["images"]["head"]), "wrist": upscale(s.obs["images"]["wrist"]),
                "state": [round(float(v), 4) for v in s.obs["state"]], "status": status}

    def close(self) -> None:
        with self._guard:
            for s in self._sessions.values():
                if s.env is not None:
                    s.run(s.env.close)
                s.thread.shutdown()
            self._sessions.clear()
