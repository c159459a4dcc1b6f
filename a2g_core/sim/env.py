"""The tabletop as a gymnasium environment: end-effector pose control, head and wrist cameras.

Observation ``{"images": {"head", "wrist": HxWx3 uint8}, "state": [x, y, z, yaw, grip]}``; action
``[x, y, z, yaw, grip]``: an absolute end-effector target (metres, radians) and a gripper command
(0 open … 1 closed), held for one control step (50 ms). ``info["is_success"]`` is the task's check
on simulator state; ``info["action"]`` is the action after clipping to the workspace.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from a2g_core.sim import scene as S
from a2g_core.sim.tasks import MODES, TASKS, Scene, Task

VIEWS = ("head", "wrist")
STATE_DIM = 5
ACTION_DIM = 5
RESOLUTIONS = (64, 96, 128)


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


class TabletopEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": S.CONTROL_HZ}

    def __init__(self, task: str = "place_empty_cup", mode: str = "easy", resolution: int = 96,
                 words: list[str] | str | None = None, max_steps: int | None = None,
                 render_mode: str | None = "rgb_array"):
        if task not in TASKS:
            raise ValueError(f"Unknown task {task!r}; choose one of: {', '.join(TASKS)}.")
        if mode not in MODES:
            raise ValueError(f"Unknown mode {mode!r}; choose 'easy' or 'hard'.")
        if resolution not in RESOLUTIONS:
            raise ValueError(f"Resolution {resolution!r} is not supported; choose one of {RESOLUTIONS}.")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} is not supported; use 'rgb_array'.")
        self.task: Task = TASKS[task]
        self.mode = mode
        self.resolution = resolution
        self.render_mode = render_mode
        self.words = self.task.validate_words(words)
        self.max_steps = max_steps or self.task.max_steps
        low, high = self.task.workspace()
        self.action_space = gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        img = gym.spaces.Box(0, 255, (resolution, resolution, 3), dtype=np.uint8)
        self.observation_space = gym.spaces.Dict({
            "images": gym.spaces.Dict({v: img for v in VIEWS}),
            "state": gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), dtype=np.float32),
        })
        self._compiled: OrderedDict[str, tuple] = OrderedDict()   # xml -> (model, data, renderer, defaults)
        self.model = self.data = self.renderer = None
        self.scene: Scene | None = None
        self.steps = 0
        self._noise_sigma = 0.0

    # ----------------------------------------------------------------- model cache
    def _load(self, xml: str) -> None:
        """Compile ``xml`` (or reuse it): a renderer costs ~0.2 s, so keep the last few scenes."""
        if xml not in self._compiled:
            model = mujoco.MjModel.from_xml_string(xml)
            data = mujoco.MjData(model)
            renderer = mujoco.Renderer(model, self.resolution, self.resolution)
            defaults = {k: getattr(model, k).copy() for k in
                        ("body_pos", "body_quat", "geom_rgba", "mat_rgba", "light_dir", "light_diffuse", "cam_pos")}
            self._compiled[xml] = (model, data, renderer, defaults)
            while len(self._compiled) > 3:
                self._compiled.popitem(last=False)[1][2].close()
        self._compiled.move_to_end(xml)
        self.model, self.data, self.renderer, defaults = self._compiled[xml]
        self._arm_qpos = [self.model.joint(j).qposadr[0] for j in ("x", "y", "z", "yaw", "finger_l")]
        for k, v in defaults.items():
            getattr(self.model, k)[:] = v

    # ----------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        self.scene = self.task.sample(rng, self.mode, self.words, options or {})
        hard = self.mode == "hard"
        self._load(S.build_xml(self.scene.bodies, self.resolution, hard=hard, marker=self.task.marker))
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        for name, (x, y, z, yaw) in self.scene.poses.items():
            body = m.body(name)
            if m.body_jntnum[body.id] and m.jnt_type[m.body_jntadr[body.id]] == mujoco.mjtJoint.mjJNT_FREE:
                adr = m.jnt_qposadr[m.body_jntadr[body.id]]
                d.qpos[adr:adr + 3] = (x, y, z)
                d.qpos[adr + 3:adr + 7] = yaw_quat(yaw)
            else:
                m.body_pos[body.id] = (x, y, z)
                m.body_quat[body.id] = yaw_quat(yaw)
        for geom, rgba in self.scene.colors.items():
            m.geom_rgba[m.geom(geom).id] = rgba
        self._noise_sigma = 0.0
        if hard:   # lighting, table colour, camera pose and pixel noise (RoboTwin's "randomized")
            m.light_diffuse[0] = rng.uniform(0.35, 0.85, 3)
            ldir = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), -1.0])
            m.light_dir[0] = ldir / np.linalg.norm(ldir)
            m.mat_rgba[m.material("table").id] = (*rng.uniform(0.35, 1.0, 3), 1.0)
            m.cam_pos[m.camera("head").id] += rng.uniform(-0.015, 0.015, 3)
            self._noise_sigma = float(rng.uniform(2.0, 6.0))
        home = self.task.home()
        for j, v in zip(("x", "y", "z", "yaw"), home[:4]):
            d.qpos[m.joint(j).qposadr[0]] = v
        for f in ("finger_l", "finger_r"):
            d.qpos[m.joint(f).qposadr[0]] = S.FINGER_MAX * (1 - home[4])
        self._apply_ctrl(home)
        mujoco.mj_forward(m, d)
        mujoco.mj_step(m, d, nstep=2 * S.SUBSTEPS)      # let objects settle on the table
        self.task.on_reset(self)
        self.steps = 0
        return self._obs(), self._info(home)

    def step(self, action):
        if self.scene is None:
            raise RuntimeError("Call reset() before step().")
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (ACTION_DIM,):
            raise ValueError(f"An action must have shape ({ACTION_DIM},) = [x, y, z, yaw, grip]; got shape {a.shape}.")
        if not np.all(np.isfinite(a)):
            raise ValueError("The action contains NaN or infinite values; every entry must be a finite number.")
        a = self.clip(a)
        self._apply_ctrl(a)
        mujoco.mj_step(self.model, self.data, nstep=S.SUBSTEPS)
        self.task.on_step(self)
        self.steps += 1
        info = self._info(a)
        truncated = self.steps >= self.max_steps
        return self._obs(), float(info["is_success"]), False, truncated, info

    def clip(self, action) -> np.ndarray:
        """``action`` clipped to the task's workspace: what ``step`` executes."""
        return np.clip(np.asarray(action, dtype=np.float64), self.action_space.low, self.action_space.high)

    def render(self):
        return self._render("head") if self.render_mode == "rgb_array" else None

    def close(self):
        for _, _, renderer, _ in self._compiled.values():
            renderer.close()
        self._compiled.clear()
        self.model = self.data = self.renderer = None

    # ----------------------------------------------------------------- helpers
    def _apply_ctrl(self, a: np.ndarray) -> None:
        self.data.ctrl[:4] = a[:4]
        self.data.ctrl[4] = S.FINGER_MAX * (1.0 - a[4])

    def _render(self, view: str) -> np.ndarray:
        self.renderer.update_scene(self.data, camera=view)
        self.task.decorate(self, self.renderer.scene)
        img = self.renderer.render()
        if self._noise_sigma:
            noise = self.np_random.normal(0.0, self._noise_sigma, img.shape)
            img = np.clip(img + noise, 0, 255).astype(np.uint8)
        return img

    def _obs(self) -> dict:
        return {"images": {v: self._render(v) for v in VIEWS}, "state": self.proprio()}

    def _info(self, action: np.ndarray) -> dict:
        return {"is_success": bool(self.task.success(self)), "action": np.asarray(action, np.float32).copy(),
                **self.scene.public}

    def proprio(self) -> np.ndarray:
        """[x, y, z, yaw, grip]: end-effector pose and how closed the gripper is (0 open, 1 closed)."""
        x, y, z, yaw, finger = self.data.qpos[self._arm_qpos]
        return np.array([x, y, z, yaw, 1.0 - finger / S.FINGER_MAX], dtype=np.float32)

    def body_pos(self, name: str) -> np.ndarray:
        return self.data.body(name).xpos.copy()

    def body_yaw(self, name: str) -> float:
        w, x, y, z = self.data.body(name).xquat
        return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))

    def body_tilt(self, name: str) -> float:
        """Angle (rad) between the body's z axis and the world's."""
        return float(np.arccos(np.clip(self.data.body(name).xmat[8], -1, 1)))

    def gripper_open(self) -> bool:
        return bool(self.proprio()[4] < 0.35)

    def body_bottom(self, name: str) -> float:
        """Lowest point of an upright body's geoms (world z)."""
        m, d = self.model, self.data
        bid = m.body(name).id
        lows = []
        for g in range(m.body_geomadr[bid], m.body_geomadr[bid] + m.body_geomnum[bid]):
            size, t = m.geom_size[g], m.geom_type[g]
            half = {int(mujoco.mjtGeom.mjGEOM_BOX): size[2], int(mujoco.mjtGeom.mjGEOM_CYLINDER): size[1],
                    int(mujoco.mjtGeom.mjGEOM_CAPSULE): size[1] + size[0]}.get(int(t), size[0])
            lows.append(d.geom_xpos[g][2] - half)
        return float(min(lows))
