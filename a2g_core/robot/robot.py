"""A robot behind a small interface (lerobot's ``Robot``): ``connect / get_observation /
send_action / disconnect``, a context manager; ``send_action`` returns what was actually sent
after clipping. Observations use the wire keys of the robot's embodiment profile."""
from __future__ import annotations

import abc
import importlib

import numpy as np

from a2g_core.robot.profiles import Profile, get_profile


class Robot(abc.ABC):
    profile: Profile

    @abc.abstractmethod
    def connect(self) -> None: ...

    @abc.abstractmethod
    def get_observation(self) -> dict: ...

    @abc.abstractmethod
    def send_action(self, action: np.ndarray) -> np.ndarray: ...

    @abc.abstractmethod
    def disconnect(self) -> None: ...

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc):
        self.disconnect()


class SimRobot(Robot):
    """The embedded simulator as a robot of the ``tabletop`` profile, so the whole bridge runs here."""

    def __init__(self, task: str, mode: str = "easy", seed: int = 0, resolution: int = 64,
                 max_steps: int | None = None):
        self.profile = get_profile("tabletop")
        self.task, self.mode, self.seed, self.resolution, self.max_steps = task, mode, seed, resolution, max_steps
        self.env = None
        self.success = False
        self.steps = 0

    def connect(self) -> None:
        from a2g_core.sim import make_env
        self.env = make_env(self.task, self.mode, self.resolution, max_steps=self.max_steps)
        self._obs, _ = self.env.reset(seed=self.seed)
        self.success, self.done, self.steps = False, False, 0

    def _require(self):
        if self.env is None:
            raise RuntimeError("The robot is not connected; call connect() first.")

    def get_observation(self) -> dict:
        self._require()
        keys = {view: key for key, view in self.profile.cameras.items()}
        out = {keys[v]: img for v, img in self._obs["images"].items()}
        out[self.profile.state_key] = np.asarray(self._obs["state"], dtype=np.float32)
        return out

    def send_action(self, action: np.ndarray) -> np.ndarray:
        self._require()
        self._obs, _, _, truncated, info = self.env.step(np.asarray(action, dtype=np.float64))
        self.steps += 1
        self.success = bool(info["is_success"])
        self.done = self.success or truncated
        return np.asarray(info["action"], dtype=np.float32)

    def goal(self, frame: str = "final") -> dict:
        """The expert's goal frame for this seed (by the rule ``frame``, the policy's ``goal_frame``): the
        goal this scene was made for."""
        from a2g_core.sim.rollout import expert_goal
        return expert_goal(self.task, self.mode, self.seed, self.resolution, frame=frame)[0]

    def disconnect(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None


class Genie01Robot(Robot):
    """AgiBot Genie-01 through AgiBot's Python robot SDK, imported only here.

    UNTESTED: the SDK cannot be installed on this project's machines and no robot is attached, so
    this adapter is kept to the four calls below. ``sdk_module`` names the SDK's Python module; it
    must provide ``connect(address) -> handle``, ``handle.read_cameras() -> {name: HWC uint8}``,
    ``handle.read_joints() -> (16,)`` (14 arm joints + 2 grippers, AgiBot World order) and
    ``handle.command_joints((16,))``. Adapt these four lines to the SDK version on the robot's PC.
    Everything around them (server, gating, safety clamps, recording) is tested with ``SimRobot``.
    """

    CAMERAS = {"top_head": "observation.images.top_head", "hand_left": "observation.images.hand_left",
               "hand_right": "observation.images.hand_right"}

    def __init__(self, address: str, sdk_module: str = "agibot_sdk"):
        self.profile = get_profile("genie01")
        self.address, self.sdk_module = address, sdk_module
        self.handle = None

    def connect(self) -> None:
        try:
            sdk = importlib.import_module(self.sdk_module)
        except ImportError:
            raise ValueError(f"AgiBot's robot SDK (Python module {self.sdk_module!r}) is not installed; install it "
                             f"on the robot's PC (it is not on PyPI) or pass --sdk-module.") from None
        self.handle = sdk.connect(self.address)

    def get_observation(self) -> dict:
        cams = self.handle.read_cameras()
        out = {key: np.asarray(cams[name], dtype=np.uint8) for name, key in self.CAMERAS.items()}
        out[self.profile.state_key] = np.asarray(self.handle.read_joints(), dtype=np.float32)
        return out

    def send_action(self, action: np.ndarray) -> np.ndarray:
        sent = np.clip(np.asarray(action, dtype=np.float32), self.profile.low, self.profile.high)
        self.handle.command_joints(sent)
        return sent

    def disconnect(self) -> None:
        if self.handle is not None and hasattr(self.handle, "close"):
            self.handle.close()
        self.handle = None
