"""Closed-loop evaluation of a policy in the simulator: success with a 95% interval.

The goal for a seed is the final frame of the scripted expert on the same seed (paper §5.2), so
the scene the policy starts from is exactly the one the goal image was made in.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from typing import Callable

import numpy as np

from a2g_core.eval.sim_bench import wilson

EVAL_SEED_START = 10_000       # far from the training seeds (gen-data starts at 0)

_POLICY = {}


def load_policy(path):
    from a2g_core.models.act2goal import Act2GoalPolicy
    return Act2GoalPolicy.from_pretrained(path)


def run_episode(policy, env, seed: int, goal: dict, max_steps: int | None = None,
                on_step: Callable[[dict, dict], None] | None = None) -> dict:
    """Reset ``env`` with ``seed`` and act with ``policy`` until success or the step limit."""
    obs, info = env.reset(seed=seed)
    policy.reset(seed=seed)
    limit = max_steps or env.max_steps
    for step in range(limit):
        obs, _, terminated, truncated, info = env.step(policy.select_action(obs, goal))
        if on_step:
            on_step(obs, info)
        if info["is_success"] or terminated or truncated:
            break
    return {"seed": seed, "success": bool(info["is_success"]), "steps": step + 1}


def _episode_job(job) -> dict:
    path, task, mode, seed, words = job
    import torch
    torch.set_num_threads(1)
    from a2g_core.sim import make_env
    from a2g_core.sim.rollout import expert_goal
    if path not in _POLICY:
        _POLICY[path] = load_policy(path)
    policy = _POLICY[path]
    res = policy.config.resolution
    key = ("env", task, mode, words)
    if key not in _POLICY:
        _POLICY[key] = make_env(task, mode, res, words=list(words) if words else None)
    goal, ok = expert_goal(task, mode, seed, res, words)
    out = run_episode(policy, _POLICY[key], seed, goal)
    out["expert_success"] = ok
    out["info"] = {k: v for k, v in _POLICY[key].scene.public.items()}
    return out


def evaluate(policy_path, *, task: str, mode: str, episodes: int, workers: int = 1,
             seed_start: int = EVAL_SEED_START, words: list[str] | None = None,
             progress: Callable[[int, int, dict], None] | None = None) -> dict:
    from a2g_core.sim import MODES, TASKS
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; choose from: {', '.join(TASKS)}.")
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}; choose easy or hard.")
    if episodes < 1 or workers < 1:
        raise ValueError("--episodes and --workers must be at least 1.")
    if words:
        TASKS[task].validate_words(words)
    load_policy(policy_path)           # fail here, in one sentence, if the checkpoint is bad
    jobs = [(str(policy_path), task, mode, s, tuple(words) if words else None)
            for s in range(seed_start, seed_start + episodes)]
    results = []
    if workers == 1:
        it = map(_episode_job, jobs)
    else:
        pool = mp.get_context("spawn").Pool(workers, initializer=os.environ.__setitem__, initargs=("LP_NUM_THREADS", "0"))
        it = pool.imap_unordered(_episode_job, jobs)
    for r in it:
        results.append(r)
        if progress:
            progress(len(results), len(jobs), r)
    if workers > 1:
        pool.close()
        pool.join()
    k = sum(r["success"] for r in results)
    lo, hi = wilson(k, len(results))
    return {"task": task, "mode": mode, "episodes": len(results), "success": k / len(results), "ci95": [lo, hi],
            "mean_steps": float(np.mean([r["steps"] for r in results])), "results": sorted(results, key=lambda r: r["seed"])}
