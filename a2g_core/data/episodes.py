"""The episode store: one folder per episode, frames in memory-mappable ``.npy`` files.

Layout of a dataset folder::

    dataset.json                      format, fps, views, resolution, state/action layout
    <task>-<mode>-<seed:06d>/         one episode (written as ``.tmp`` and renamed when complete)
        head.npy, wrist.npy           uint8 (T+1, H, W, 3): the observation before each action, and the last
        lowdim.npz                    state (T+1, 5) float32, action (T, 5) float32
        goal_head.png, goal_wrist.png the goal images: the episode's final frame per view
        meta.json                     task, mode, seed, length, success, success_step, info (e.g. the written word)

A folder is complete exactly when it has no ``.tmp`` suffix, so a killed writer never leaves a
half episode that a reader would take for a whole one.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

FORMAT = "a2g-episodes/1"
STATE_NAMES = ["ee_x", "ee_y", "ee_z", "ee_yaw", "grip"]
ACTION_NAMES = ["target_x", "target_y", "target_z", "target_yaw", "grip_cmd"]


def episode_name(task: str, mode: str, seed: int) -> str:
    return f"{task}-{mode}-{seed:06d}"


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def square_resize(image: Image.Image, size: int) -> np.ndarray:
    """Centre square crop, then ``size``×``size`` RGB: how any camera image becomes a model frame."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    side = min(w, h)
    rgb = rgb.crop(((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2))
    return np.asarray(rgb.resize((size, size), Image.BILINEAR))


def init_dataset(root: Path, *, views: tuple[str, ...], resolution: int, fps: int, state_names=None,
                 action_names=None, profile: str = "tabletop") -> None:
    """Create ``root`` with its ``dataset.json``, or check an existing one agrees. The names default to
    the simulator's layout; ``profile`` (a2g_core.robot.profiles) is the embodiment the data comes from."""
    root.mkdir(parents=True, exist_ok=True)
    spec = {"format": FORMAT, "fps": fps, "views": list(views), "resolution": resolution,
            "state_names": list(state_names or STATE_NAMES), "action_names": list(action_names or ACTION_NAMES),
            "profile": profile}
    path = root / "dataset.json"
    if path.exists():
        old = json.loads(path.read_text())
        for k in ("format", "resolution", "views", "fps"):
            if old.get(k) != spec[k]:
                raise ValueError(f"{root} holds a dataset with {k}={old.get(k)!r}, not {spec[k]!r}; "
                                 f"write to another folder.")
        return
    path.write_text(json.dumps(spec, indent=2))


def discard_partial(root: Path) -> int:
    """Remove half-written episodes (``*.tmp``) left by a killed writer; return how many."""
    stale = [p for p in root.glob("*.tmp") if p.is_dir()]
    for p in stale:
        shutil.rmtree(p)
    return len(stale)


def write_episode(root: Path, ep, name: str | None = None) -> Path:
    """Write a ``sim.rollout.Episode`` atomically (as ``name``, default task-mode-seed); return its folder."""
    final = root / (name or episode_name(ep.task, ep.mode, ep.seed))
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for view, frames in ep.frames.items():
        np.save(tmp / f"{view}.npy", np.ascontiguousarray(frames, dtype=np.uint8))
        Image.fromarray(frames[-1]).save(tmp / f"goal_{view}.png")
    np.savez(tmp / "lowdim.npz", state=ep.states.astype(np.float32), action=ep.actions.astype(np.float32))
    meta = {"task": ep.task, "mode": ep.mode, "seed": ep.seed, "length": len(ep), "success": ep.success,
            "success_step": ep.success_step, "views": list(ep.frames), "info": ep.info, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=_json_default))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


# Which frame of an expert episode is its goal image, for a policy's training windows and for every goal
# made for it (the policy's config names one): "final", the last frame (paper §5.2; our experts then
# have the task done *and* the arm back home), or "success", the first frame in which the task's check
# holds (the task done, the arm still at the object: what a rollout, which stops at success, ends on,
# so the goals hindsight relabelling makes look like the goals the policy is given).
GOAL_FRAMES = ("final", "success")


def check_goal_frame(frame: str) -> str:
    if frame not in GOAL_FRAMES:
        raise ValueError(f"Unknown goal frame {frame!r}; choose {' or '.join(GOAL_FRAMES)}.")
    return frame


def goal_step(frame: str, length: int, success_step: int | None) -> int:
    """The step of an episode of ``length`` actions whose frame is its goal by the rule ``frame``."""
    check_goal_frame(frame)
    return success_step if frame == "success" and success_step is not None else length


GRIP_CLOSED = 0.5     # a gripper command above this closes the fingers (0 open, 1 closed)


def grip_changes(actions: np.ndarray, grip_dims) -> np.ndarray:
    """The steps (ascending) at which any of ``grip_dims`` of the (T, A) actions crosses ``GRIP_CLOSED`` from the
    step before (a grasp or a release)."""
    if not len(grip_dims):
        raise ValueError("A pose target at the next grip needs the profile's gripper dims; it has none.")
    shut = np.asarray(actions)[:, list(grip_dims)] > GRIP_CLOSED
    return 1 + np.flatnonzero((shut[1:] != shut[:-1]).any(axis=1))


@dataclass
class StoredEpisode:
    """An episode on disk. Frames are memory-mapped: indexing reads only what it touches."""
    path: Path
    meta: dict

    @property
    def length(self) -> int:
        return int(self.meta["length"])

    @property
    def success(self) -> bool:
        return bool(self.meta["success"])

    @property
    def success_step(self) -> int | None:
        """Actions after which the task's check first held (None: never, or not recorded)."""
        return self.meta.get("success_step")

    @property
    def steps_before_success(self) -> int:
        """The steps a training window may start at: before success, or all when none is recorded."""
        return self.success_step or self.length

    def frames(self, view: str) -> np.ndarray:
        f = self.path / f"{view}.npy"
        if not f.exists():
            raise ValueError(f"Episode {self.path.name} has no view {view!r}; it has {self.meta['views']}.")
        return np.load(f, mmap_mode="r")

    def lowdim(self) -> tuple[np.ndarray, np.ndarray]:
        with np.load(self.path / "lowdim.npz") as z:
            return z["state"], z["action"]

    def goal(self, frame: str = "final") -> dict[str, np.ndarray]:
        """The goal images by the rule ``frame`` (see ``GOAL_FRAMES``; ``final`` is what goal_<view>.png shows)."""
        step = goal_step(frame, self.length, self.success_step)
        return {v: np.array(self.frames(v)[step]) for v in self.meta["views"]}


class EpisodeStore:
    """Index of the complete episodes under ``root`` (no frames are read until asked for)."""

    def __init__(self, root: str | Path, *, tasks=None, modes=None, only_success: bool = True,
                 per_task: int | None = None):
        """``per_task`` keeps at most that many episodes (lowest seeds first) per task and mode."""
        self.root = Path(root)
        spec_path = self.root / "dataset.json"
        if not spec_path.exists():
            raise ValueError(f"{self.root} is not a dataset folder (no dataset.json); create one with "
                             f"`python -m a2g_core gen-data`.")
        self.spec = json.loads(spec_path.read_text())
        self.episodes: list[StoredEpisode] = []
        self.cells: dict[tuple[str, str], int] = {}                 # episodes kept per (task, mode)
        for d in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.endswith(".tmp")):
            meta_path = d / "meta.json"
            if not meta_path.exists():
                continue
            meta = json.loads(meta_path.read_text())
            if tasks and meta["task"] not in tasks or modes and meta["mode"] not in modes:
                continue
            if only_success and not meta["success"]:
                continue
            cell = (meta["task"], meta["mode"])
            if per_task is not None and self.cells.get(cell, 0) >= per_task:
                continue
            self.cells[cell] = self.cells.get(cell, 0) + 1
            self.episodes.append(StoredEpisode(d, meta))

    def __len__(self) -> int:
        return len(self.episodes)

    def __getitem__(self, i: int) -> StoredEpisode:
        return self.episodes[i]

    def __iter__(self):
        return iter(self.episodes)

    @property
    def views(self) -> list[str]:
        return list(self.spec["views"])

    @property
    def resolution(self) -> int:
        """The frames' size in px (square)."""
        return int(self.spec["resolution"])

    def num_frames(self) -> int:
        return sum(e.length + 1 for e in self.episodes)
