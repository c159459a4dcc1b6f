"""Running the scripted expert, and goal images as the paper makes them (a frame of a success).

Which frame is the goal is a policy's ``goal_frame`` (``a2g_core.data.episodes.GOAL_FRAMES``)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from a2g_core.data.episodes import GOAL_FRAMES, GRIP_CLOSED, check_goal_frame, goal_step, grip_changes
from a2g_core.sim.env import VIEWS, TabletopEnv

SETTLE_STEPS = 4     # hold the last set-point so the final frame (the goal) is at rest
NOISE_CORRELATION = 0.9   # per step, of the executed-pose perturbation (about 10 steps, half a second)


@dataclass
class Episode:
    """One episode: ``frames[view]`` is (T+1, H, W, 3) (observations before each action and the last),
    ``states`` (T+1, 5), ``actions`` (T, 5) as executed (clipped); ``success_step`` is the number of
    actions after which the task's check first held (None if it never did)."""
    task: str
    mode: str
    seed: int
    frames: dict[str, np.ndarray]
    states: np.ndarray
    actions: np.ndarray
    success: bool
    info: dict = field(default_factory=dict)
    success_step: int | None = None

    @property
    def goal(self) -> dict[str, np.ndarray]:
        return self.goal_at("final")

    def goal_at(self, frame: str) -> dict[str, np.ndarray]:
        """The goal images of this episode by the rule ``frame`` (see ``GOAL_FRAMES``); ``success`` falls
        back to the last frame when the task never succeeded."""
        return {v: f[goal_step(frame, len(self.actions), self.success_step)] for v, f in self.frames.items()}

    def __len__(self) -> int:
        return len(self.actions)


def run_expert(env: TabletopEnv, seed: int, options: dict | None = None, noise: float = 0.0,
               yaw_noise: float | None = None) -> Episode:
    """Reset with ``seed`` and run the task's scripted expert to the end (or ``env.max_steps``).

    ``noise`` > 0 perturbs the *executed* end-effector position until success (DART, Laskey et al.
    2017): a smooth random offset of that standard deviation in metres (x, y, z; correlation
    ``NOISE_CORRELATION`` per step) is added to each command, while the episode records the expert's
    own command as the action. The expert then corrects from where the arm really is, so the data
    shows the way back to the path, not only the path. The gripper is never perturbed; the task
    bounds the rest (``Task.dart_dims``, ``Task.dart_max``: writing's pen stays on the board), and
    lifts the cap while the commanded height is at least ``Task.dart_free_z``. The wrist's yaw is
    perturbed only where the task asks (``Task.dart_yaw``, radians, or ``yaw_noise`` where given; from a draw of
    its own so the position's stays the same), while the gripper is commanded open or the commanded height is at
    least ``Task.dart_free_z`` (the way back to the heading the expert grasps at, and to the one it
    turns the held object to), and elsewhere decays at the same correlation, without jumps."""
    obs, _ = env.reset(seed=seed, options=options)
    return record_plan(env, obs, env.task.expert(env), seed, noise=noise, yaw_noise=yaw_noise)


def record_plan(env: TabletopEnv, obs: dict, plan, seed: int, noise: float = 0.0, yaw_noise: float | None = None,
                extra: dict | None = None) -> Episode:
    """Run the expert's ``plan`` from the scene as it is (``obs`` its observation) for up to ``env.max_steps``
    actions, and hold the last for ``SETTLE_STEPS``; ``noise`` and ``yaw_noise`` as in ``run_expert``, seeded by
    ``seed``. ``extra`` is merged into the episode's info."""
    rng = np.random.default_rng([seed, 0xDA27])
    yaw_std = env.task.dart_yaw if yaw_noise is None else yaw_noise
    offset, yaw_rng, yaw_offset = np.zeros(3), np.random.default_rng([seed, 0xDA27, 3]), 0.0
    dims = np.isin(np.arange(3), env.task.dart_dims)
    capped, free = dims * min(noise, env.task.dart_max), dims * noise
    frames = {v: [obs["images"][v]] for v in VIEWS}
    states, actions = [obs["state"]], []
    last = success_step = None
    info = {"is_success": env.task.success(env), **env.scene.public}
    settle = SETTLE_STEPS
    while len(actions) < env.max_steps:
        a = next(plan, None)
        if a is None:
            if settle == 0 or last is None:
                break
            settle -= 1
            a = last
        last = a
        executed = np.array(a, dtype=np.float64)
        if noise > 0 and success_step is None:
            offset = NOISE_CORRELATION * offset + np.sqrt(1 - NOISE_CORRELATION ** 2) * rng.standard_normal(3)
            executed[:3] += offset * (free if a[2] >= env.task.dart_free_z else capped)
            kick = yaw_rng.standard_normal()       # drawn every step: the draws do not depend on the phases
            free_yaw = a[4] <= GRIP_CLOSED or a[2] >= env.task.dart_free_z
            yaw_offset = NOISE_CORRELATION * yaw_offset + np.sqrt(1 - NOISE_CORRELATION ** 2) * kick * free_yaw
            executed[3] += yaw_std * yaw_offset
        obs, _, _, _, info = env.step(executed)
        actions.append(env.clip(a).astype(np.float32) if noise > 0 else info["action"])
        states.append(obs["state"])
        for v in VIEWS:
            frames[v].append(obs["images"][v])
        if info["is_success"] and success_step is None:
            success_step = len(actions)
    public = {k: v for k, v in info.items() if k not in ("is_success", "action")} | (extra or {})
    if noise > 0:
        public["expert_noise"] = float(capped.max())
        if yaw_std:
            public["expert_yaw_noise"] = yaw_std
    return Episode(env.task.name, env.mode, seed, {v: np.stack(f) for v, f in frames.items()},
                   np.stack(states), np.stack(actions), bool(info["is_success"]), public, success_step)


def grasp_steps(actions) -> tuple[int, int | None] | None:
    """The step at which the gripper was first commanded shut after being open, and the step it was next
    commanded open (None if it never was); None if it never shut after being open (it never closed, or it
    held its tool from the start, as in writing)."""
    actions = np.asarray(actions).reshape(-1, 5)                         # action: x, y, z, yaw, grip
    changes = grip_changes(actions, (4,))
    shuts = changes[actions[changes, 4] > GRIP_CLOSED]
    if not len(shuts):
        return None
    reopened = changes[changes > shuts[0]]                                # the next change after a shut opens
    return int(shuts[0]), int(reopened[0]) if len(reopened) else None


def grasp_and_release(states, actions) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The end effector's pose (x, y, z, yaw) at the two steps of ``grasp_steps``, or None where it has none."""
    steps = grasp_steps(actions)
    if steps is None:
        return None
    states, (shut, reopened) = np.asarray(states), steps
    return states[shut, :4].copy(), None if reopened is None else states[reopened, :4].copy()


def first_grasp(states, actions) -> np.ndarray | None:
    """The grasp of ``grasp_and_release``, or None."""
    places = grasp_and_release(states, actions)
    return None if places is None else places[0]


_GOALS: dict[tuple, tuple[dict[str, dict], bool, np.ndarray | None]] = {}


def _expert(task: str, mode: str, seed: int, resolution: int, words: tuple[str, ...] | None) -> tuple:
    """(goal images by rule, success, first grasp and release) of the expert on a seed, cached."""
    words = tuple(words) if words else None
    key = (task, mode, seed, resolution, words)
    if key not in _GOALS:
        env = TabletopEnv(task, mode, resolution, words=list(words) if words else None)
        ep = run_expert(env, seed)
        env.close()
        if len(_GOALS) > 64:
            _GOALS.pop(next(iter(_GOALS)))
        _GOALS[key] = ({f: ep.goal_at(f) for f in GOAL_FRAMES}, ep.success, grasp_and_release(ep.states, ep.actions))
    return _GOALS[key]


def expert_goal(task: str, mode: str, seed: int, resolution: int = 96, words: tuple[str, ...] | None = None,
                frame: str = "final") -> tuple[dict, bool]:
    """Goal images for a seed (the expert's frame per view by the rule ``frame``, see ``GOAL_FRAMES``)
    and whether the expert succeeded. ``words`` (writing) must be what the evaluated env was built
    with, so both draw the same word. Cached: the same arguments always give the same frames."""
    check_goal_frame(frame)
    goals, ok, _ = _expert(task, mode, seed, resolution, words)
    return goals[frame], ok


def expert_grasp(task: str, mode: str, seed: int, resolution: int = 96,
                 words: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``grasp_and_release`` of the expert on a seed (the same run, and cache, as ``expert_goal``):
    where it first takes the object, and where it lets it go."""
    return _expert(task, mode, seed, resolution, words)[2]
