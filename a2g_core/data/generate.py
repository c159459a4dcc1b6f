"""Expert data generation: many seeds, parallel worker processes, resumable after a kill."""
from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path
from typing import Callable

from a2g_core.data.episodes import discard_partial, episode_name, init_dataset, write_episode

_ENVS: dict = {}
_POLICIES: dict = {}


def worker_init() -> None:
    os.environ["LP_NUM_THREADS"] = "0"        # one render thread per worker: workers scale across cores


def expert_job(task: str, mode: str, seed: int, resolution: int, *, root: str | Path | None = None,
               words: list[str] | None = None, noise: float = 0.0, yaw_noise: float | None = None,
               handover: tuple[str, int, int] | None = None) -> tuple:
    """One job for ``run_jobs``: the expert on ``seed``, its episode written under ``root`` unless None;
    with ``handover`` (policy checkpoint, first and last step), the expert takes over from that policy's rollout
    (``handover_episode``)."""
    return (None if root is None else str(root), task, mode, seed, resolution, tuple(words) if words else None,
            noise, yaw_noise, handover)


def _run_one(job: tuple) -> tuple[str, str, int, bool | None, int]:
    """Run an ``expert_job``; write the episode unless its ``root`` is None. Success is None where a handover
    left nothing to record."""
    root, task, mode, seed, resolution, words, noise, yaw_noise, handover = job
    from a2g_core.sim import make_env
    from a2g_core.sim.rollout import run_expert
    key = (task, mode, resolution, words)
    if key not in _ENVS:
        _ENVS[key] = make_env(task, mode, resolution, words=list(words) if words else None)
    if handover is None:
        ep = run_expert(_ENVS[key], seed, noise=noise, yaw_noise=yaw_noise)
    else:
        ep = handover_episode(_ENVS[key], seed, *handover, words=words, noise=noise, yaw_noise=yaw_noise)
        if ep is None:
            return task, mode, seed, None, 0
    if root is not None:
        write_episode(Path(root), ep)
    return task, mode, seed, ep.success, len(ep)


def handover_episode(env, seed: int, policy_path: str, first: int, last: int, *, words=None, noise: float = 0.0,
                     yaw_noise: float | None = None):
    """The expert's way on from where a policy got to (DAgger's states, the expert's labels; Ross et al. 2011):
    the policy at ``policy_path`` acts on ``seed`` towards the expert's goal for a number of steps drawn from
    ``first``..``last`` by the seed, then ``Task.recover`` takes over; the episode is the expert's part only, so a
    policy trained on it learns the way back from the states its own rollouts reach, not their mistakes. None where
    the policy succeeded before the handover or the task's expert has no way on (``recover`` returns None)."""
    import numpy as np
    import torch

    from a2g_core.eval.policy_eval import load_policy, run_episode
    from a2g_core.sim.rollout import expert_goal, record_plan
    torch.set_num_threads(1)
    if policy_path not in _POLICIES:
        _POLICIES[policy_path] = load_policy(policy_path)
    policy = _POLICIES[policy_path]
    if policy.config.resolution != env.resolution:
        raise ValueError(f"{policy_path} reads {policy.config.resolution} px frames; pass --resolution "
                         f"{policy.config.resolution}.")
    goal, _ = expert_goal(env.task.name, env.mode, seed, env.resolution, words, frame=policy.config.goal_frame)
    steps = int(np.random.default_rng([seed, 0x4A4D]).integers(first, last + 1))
    rollout = run_episode(policy, env, seed, goal, max_steps=steps, record=True)
    ep = rollout["episode"]
    plan = None if rollout["success"] else env.task.recover(env, command=ep.actions[-1])
    if plan is None:
        return None
    obs = {"images": {v: f[-1] for v, f in ep.frames.items()}, "state": ep.states[-1]}
    return record_plan(env, obs, plan, seed, noise=noise, yaw_noise=yaw_noise,
                       extra={"handover_step": steps, "handover_from": str(policy_path)})


def generate(root: str | Path, *, tasks: list[str], modes: list[str], episodes: int, seed_start: int = 0,
             workers: int = 1, resolution: int = 96, words: list[str] | None = None, noise: float = 0.0,
             yaw_noise: float | None = None, handover_from: str | Path | None = None,
             handover_steps: tuple[int, int] = (20, 240),
             progress: Callable[[int, int, tuple], None] | None = None) -> dict:
    """Write ``episodes`` expert episodes per (task, mode) under ``root``; skip those already there.

    ``noise`` > 0 perturbs the executed poses (``run_expert``): the data then shows recoveries;
    ``yaw_noise`` (radians) sets the open wrist's share instead of each task's ``Task.dart_yaw``.
    ``handover_from`` (a policy checkpoint): each episode is the expert taking over from that policy's rollout
    after a number of steps in ``handover_steps`` (``handover_episode``); a seed the policy succeeds on first, or
    leaves where the expert has no way on, writes nothing.
    Returns counts: ``written``, ``skipped`` (already complete), ``discarded`` (half-written, removed),
    ``success`` (among written), ``steps`` (among written), ``not_handed_over``.
    """
    from a2g_core.sim import RESOLUTIONS, TASKS, VIEWS
    from a2g_core.sim.scene import CONTROL_HZ
    from a2g_core.sim.tasks import MODES
    for t in tasks:
        if t not in TASKS:
            raise ValueError(f"Unknown task {t!r}; choose from: {', '.join(TASKS)} (or 'all').")
    for m in modes:
        if m not in MODES:
            raise ValueError(f"Unknown mode {m!r}; choose easy, hard or all.")
    if episodes < 1:
        raise ValueError("--episodes must be at least 1.")
    if workers < 1:
        raise ValueError("--workers must be at least 1.")
    if not 0 <= noise <= 0.05:
        raise ValueError(f"--noise is a standard deviation in metres between 0 and 0.05, got {noise}.")
    if yaw_noise is not None and not 0 <= yaw_noise <= 1:
        raise ValueError(f"--yaw-noise is a standard deviation in radians between 0 and 1, got {yaw_noise}.")
    if yaw_noise and not noise:
        raise ValueError("--yaw-noise perturbs the wrist along with the position: pass --noise too (e.g. 0.015).")
    if handover_from is not None:
        first, last = handover_steps
        if not 0 <= first <= last:
            raise ValueError(f"--handover-steps is FIRST,LAST with 0 <= FIRST <= LAST, got {first},{last}.")
        if not (Path(handover_from) / "policy.json").exists():
            raise ValueError(f"{handover_from} is not a policy checkpoint (no policy.json in it).")
        for t in tasks:
            if TASKS[t].carried is None:
                raise ValueError(f"{t} has no expert that takes over mid-episode (Task.recover); --handover-from "
                                 f"applies to: {', '.join(n for n, c in TASKS.items() if c.carried)}.")
    if resolution not in RESOLUTIONS:
        raise ValueError(f"Resolution {resolution} is not supported; choose one of {RESOLUTIONS}.")
    if words is not None:
        if tasks != ["writing"]:
            raise ValueError("--words applies to the writing task only; pass --task writing.")
        TASKS["writing"].validate_words(words)
    root = Path(root)
    init_dataset(root, views=VIEWS, resolution=resolution, fps=CONTROL_HZ)
    stats = {"written": 0, "skipped": 0, "discarded": discard_partial(root), "success": 0, "steps": 0,
             "not_handed_over": 0}
    handover = None if handover_from is None else (str(handover_from), *map(int, handover_steps))
    jobs = []
    for t in tasks:
        for m in modes:
            for s in range(seed_start, seed_start + episodes):
                if (root / episode_name(t, m, s) / "meta.json").exists():
                    stats["skipped"] += 1
                else:
                    jobs.append(expert_job(t, m, s, resolution, root=root, words=words, noise=noise,
                                           yaw_noise=yaw_noise, handover=handover))
    total = len(jobs)

    def record(res):
        if res[3] is None:
            stats["not_handed_over"] += 1
        else:
            stats["written"] += 1
            stats["success"] += int(res[3])
            stats["steps"] += res[4]
        if progress:
            progress(stats["written"] + stats["not_handed_over"], total, res)

    for res in run_jobs(jobs, workers):
        record(res)
    return stats


def run_jobs(jobs: list[tuple], workers: int):
    """Yield ``_run_one`` results, in this process or in ``workers`` spawned processes."""
    if workers == 1 or len(jobs) <= 1:
        yield from map(_run_one, jobs)
        return
    ctx = mp.get_context("spawn")            # a fresh interpreter per worker: no inherited GL state
    with ctx.Pool(workers, initializer=worker_init) as pool:
        yield from pool.imap_unordered(_run_one, jobs, chunksize=1)
