"""Recorded rollouts: the frames go to an episode-store folder, the facts (policy, adapter, goal,
outcome, executed chunks = HER transitions) to the lab database. The row is created first (status
``recording``, to name the folder by its id), the folder is written atomically, and only then is
the row marked ``done`` together with its transitions, in one transaction: readers (the buffer,
Review) see done rows only, so none ever points at a half-written folder. Imagined frames, when there are any, go to ``imagined/`` inside
the episode folder: ``step_NNNNNN.npz`` holds, per view, the frames the world model imagined at
that step and their step offsets."""
from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from a2g_core.data.episodes import init_dataset, square_resize, write_episode
from a2g_core.store import crud
from a2g_core.store.tables import Goal, Rollout


def record_goal(engine, root: str | Path, images: dict[str, np.ndarray], *, source: str, task: str | None = None,
                mode: str | None = None, seed: int | None = None, name: str = "") -> Goal:
    """Write a goal's images (view -> RGB array) as PNGs under ``root/goals/``, then its row: a row
    never points at missing files."""
    folder = Path(root) / "goals" / uuid.uuid4().hex[:12]
    folder.mkdir(parents=True)
    paths = {}
    for view, img in images.items():
        Image.fromarray(np.asarray(img)).save(folder / f"{view}.png")
        paths[view] = str(folder / f"{view}.png")
    return crud.add_goal(engine, source=source, images=paths, task=task, mode=mode, seed=seed, name=name)


def expert_goal_name(task: str, seed: int, frame: str = "final") -> str:
    """The name of the expert's goal for a seed in the goal library (the lab looks goals up by it)."""
    return f"expert {task} {seed}" + (" (task done)" if frame == "success" else "")


def goal_images(goal: Goal, resolution: int | None = None) -> dict[str, np.ndarray]:
    """A goal row's images, view -> RGB array (views whose file is gone are left out), as stored or
    made ``resolution`` pixels square."""
    images = {}
    for view, path in goal.images.items():
        if Path(path).exists():
            with Image.open(path) as im:
                images[view] = square_resize(im, resolution) if resolution else np.asarray(im.convert("RGB"))
    return images


def record_rollout(engine, root: str | Path, episode, chunks: list[tuple[int, int]], *, target: str = "sim",
                   policy: str = "", adapter: str | None = None, goal_id: int | None = None,
                   round_id: int | None = None, sim_success: bool | None = None, fps: int = 20,
                   imagined: list | None = None) -> Rollout:
    """Store ``episode`` (a ``sim.rollout.Episode``) under ``root`` and its row + transitions.
    ``imagined[k]`` is ``policy.imagine`` output (or None) at the start of chunk k."""
    root = Path(root)
    views = tuple(episode.frames)
    init_dataset(root, views=views, resolution=int(next(iter(episode.frames.values())).shape[1]), fps=fps)
    row = crud.add_rollout(engine, target=target, episode_dir="", policy=policy, adapter=adapter,
                           task=episode.task, mode=episode.mode, seed=episode.seed, goal_id=goal_id,
                           round_id=round_id)
    folder = write_episode(root, episode, name=f"rollout-{row.id:06d}")
    imagined_dir = None
    if imagined and any(x is not None for x in imagined):
        imagined_dir = folder / "imagined"
        imagined_dir.mkdir(exist_ok=True)
        steps = [t0 for t0, _ in chunks] + [len(episode)] * max(0, len(imagined) - len(chunks))
        for t0, im in zip(steps, imagined):
            if im is not None:
                np.savez_compressed(imagined_dir / f"step_{t0:06d}.npz", offsets=im["offsets"],
                                    **{f"view_{v}": f for v, f in im["frames"].items()})
    crud.update_rollout(engine, rollout_id=row.id, episode_dir=str(folder))
    return crud.finish_rollout(engine, rollout_id=row.id, steps=len(episode), chunks=chunks,
                               sim_success=sim_success, imagined_dir=str(imagined_dir) if imagined_dir else None)


def load_imagined(imagined_dir: str | Path) -> dict[int, dict]:
    """step -> {"frames": {view: (F, H, W, 3)}, "offsets": (F,)} of a recorded rollout."""
    out = {}
    for f in sorted(Path(imagined_dir).glob("step_*.npz")):
        with np.load(f) as z:
            out[int(f.stem[5:])] = {"offsets": z["offsets"],
                                    "frames": {k[5:]: z[k] for k in z.files if k.startswith("view_")}}
    return out


def robot_episode(frames: dict[str, list], states: list, chunks: list[np.ndarray], *, task: str = "robot",
                  info: dict | None = None):
    """A rollout seen through the policy server: an observation at each request and the chunk sent
    back. The server sees no frames between requests, so those steps hold the last one
    (``info["held_frames"]``); the transitions run from request to request, where frames are real.
    The last chunk's outcome is never observed, so it is not part of the episode."""
    from a2g_core.sim.rollout import Episode
    n = len(chunks)
    e = len(chunks[0])
    steps = (n - 1) * e
    idx = np.minimum(np.arange(steps + 1) // e, n - 1)
    actions = np.concatenate(chunks[:-1]) if n > 1 else np.zeros((0, chunks[0].shape[1]), np.float32)
    ep = Episode(task, "robot", 0, {v: np.stack(f)[idx] for v, f in frames.items()}, np.stack(states)[idx],
                 actions, False, {**(info or {}), "held_frames": True, "requests": n})
    return ep, [(k * e, (k + 1) * e) for k in range(n - 1)]
