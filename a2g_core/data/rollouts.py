"""Recorded rollouts: the frames go to an episode-store folder, the facts (policy, adapter, goal,
outcome, executed chunks = HER transitions) to the lab database, in that order, so a row never
points at a half-written folder."""
from __future__ import annotations

from pathlib import Path

from a2g_core.data.episodes import init_dataset, write_episode
from a2g_core.store import crud
from a2g_core.store.tables import Rollout


def record_rollout(engine, root: str | Path, episode, chunks: list[tuple[int, int]], *, target: str = "sim",
                   policy: str = "", adapter: str | None = None, goal_id: int | None = None,
                   round_id: int | None = None, sim_success: bool | None = None, fps: int = 20) -> Rollout:
    """Store ``episode`` (a ``sim.rollout.Episode``) under ``root`` and its row + transitions."""
    root = Path(root)
    views = tuple(episode.frames)
    init_dataset(root, views=views, resolution=int(next(iter(episode.frames.values())).shape[1]), fps=fps)
    row = crud.add_rollout(engine, target=target, episode_dir="", policy=policy, adapter=adapter,
                           task=episode.task, mode=episode.mode, seed=episode.seed, goal_id=goal_id,
                           round_id=round_id)
    folder = write_episode(root, episode, name=f"rollout-{row.id:06d}")
    crud.update_rollout(engine, rollout_id=row.id, episode_dir=str(folder))
    return crud.finish_rollout(engine, rollout_id=row.id, steps=len(episode), chunks=chunks,
                               sim_success=sim_success)
