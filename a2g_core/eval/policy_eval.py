"""Closed-loop evaluation of a policy in the simulator: success with a 95% interval.

The goal for a seed is the final frame of the scripted expert on the same seed (paper §5.2), so
the scene the policy starts from is exactly the one the goal image was made in. With a
``scenario`` every episode plays the one scene of that seed and the seeds only draw the policy's
noise (paper §5.4: self-improvement on one scenario of a task).
"""
from __future__ import annotations

import multiprocessing as mp
from typing import Callable

import numpy as np

from a2g_core.eval.sim_bench import wilson

EVAL_SEED_START = 10_000       # far from the training seeds (gen-data starts at 0)

_WORKER_CACHE: dict = {}     # per worker process: loaded policies and envs
PLACE_CM = 5.0               # a first grasp this near (x-y) where the expert lets the object go is at its place
EDGE_M = 0.002               # an arm this near (x-y) a bound of its task's workspace is pinned at its edge


def _cm(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) * 100)


def grasp_turn_deg(grasp, taken) -> float:
    """How far (degrees, 0–90) a first grasp's wrist yaw is from the expert's (``grasp``, ``taken``: poses
    x, y, z, yaw), modulo a half turn: the two fingers are alike, so a grip turned 180° is the same grip.
    place_shoe's expert closes across the shoe's width; a grasp 90° off closes along its length."""
    from a2g_core.sim.expert import wrap
    return float(np.degrees(abs(wrap(grasp[3] - taken[3], np.pi))))


def grasp_at_place(grasp, taken, let_go) -> bool:
    """Whether a policy's first grasp (x, y, z) took hold where the expert let the object go rather than
    where it took it (``let_go``, ``taken``): within ``PLACE_CM`` of the one, in x-y, and nearer it than
    the other. The cup's coaster, say: the object read off the goal image instead of the scene."""
    to_place = _cm(grasp[:2], let_go[:2])
    return to_place < PLACE_CM and to_place < _cm(grasp[:2], taken[:2])


def at_workspace_edge(state, low, high) -> bool:
    """Whether a state's x-y lies within ``EDGE_M`` of the workspace's bounds ``low``, ``high``: where a
    policy that keeps pushing past them ends, since the env clips every action to them."""
    xy = np.asarray(state)[:2]
    return bool((xy - np.asarray(low)[:2] < EDGE_M).any() or (np.asarray(high)[:2] - xy < EDGE_M).any())


def median_scores(results: list[dict]) -> dict[str, float] | None:
    """Each ``Task.scores`` figure's median over ``results`` (episodes of one task), or None for none."""
    if not results:
        return None
    return {k: float(np.median([r["scores"][k] for r in results])) for k in results[0]["scores"]}


def by_scene(results: list[dict], most: int = 6) -> dict[str, list[int]]:
    """Successes and episodes per value of each scene figure a task makes public (``Scene.public``: plug_in's
    peg, box or cylinder; move_can_pot's goal side; plating's dessert count) that takes two to ``most`` values
    over ``results``, as ``{"peg=box": [k, n], ...}``: which kind of scene a policy fails on. Figures with more
    values (writing's word) are left out."""
    out = {}
    for key in sorted({k for r in results for k in r["info"]}):
        values = sorted({str(r["info"].get(key)) for r in results})
        if 2 <= len(values) <= most:
            for v in values:
                rs = [r for r in results if str(r["info"].get(key)) == v]
                out[f"{key}={v}"] = [sum(bool(r["success"]) for r in rs), len(rs)]
    return out


def load_policy(path, adapter=None, execute: int | None = None):
    """The policy at ``path`` (+ ``adapter``), executing ``execute`` actions per chunk (default: its E)."""
    from a2g_core.models.act2goal import Act2GoalPolicy
    policy = Act2GoalPolicy.from_pretrained(path, adapter=adapter)
    if execute is not None:
        policy.set_execute(execute)
    return policy


def run_episode(policy, env, seed: int, goal: dict, max_steps: int | None = None, record: bool = False,
                noise_seed: int | None = None) -> dict:
    """Reset ``env`` with ``seed`` and act with ``policy`` until success or the step limit; the
    policy's noise is seeded with ``noise_seed`` (default: ``seed``). With ``record``,
    ``out["episode"]`` is the rollout (a ``sim.rollout.Episode``) and ``out["chunks"]`` the (t0, t1)
    step ranges of the executed chunks: the transitions of hindsight replay. ``out["grasp"]`` is the pose
    (x, y, z, yaw) where the policy first shut the gripper (``sim.rollout.first_grasp``) or None; ``out["scores"]`` how near
    the last scene came to the task's success check (``Task.scores``: cm off the target, ink on the word);
    ``out["at_edge"]`` whether the arm ended pinned at its workspace's edge (``at_workspace_edge``)."""
    from a2g_core.sim.rollout import Episode, first_grasp
    obs, info = env.reset(seed=seed)
    policy.reset(seed=seed if noise_seed is None else noise_seed)
    limit = max_steps or env.max_steps
    frames = {v: [f] for v, f in obs["images"].items()} if record else None
    states, actions = [obs["state"]], []
    for step in range(limit):
        obs, _, terminated, truncated, info = env.step(policy.select_action(obs, goal))
        if record:
            for v, f in obs["images"].items():
                frames[v].append(f)
        states.append(obs["state"])
        actions.append(info["action"])
        if info["is_success"] or terminated or truncated:
            break
    grasp = first_grasp(states, actions)
    out = {"seed": seed, "noise_seed": seed if noise_seed is None else noise_seed,
           "success": bool(info["is_success"]), "steps": step + 1, "grasp": None if grasp is None else grasp.tolist(),
           "scores": env.task.scores(env),
           "at_edge": at_workspace_edge(states[-1], env.action_space.low, env.action_space.high)}
    if record:
        e = policy.config.msth_E
        out["episode"] = Episode(env.task.name, env.mode, seed, {v: np.stack(f) for v, f in frames.items()},
                                 np.stack(states), np.stack(actions), out["success"],
                                 success_step=step + 1 if out["success"] else None)
        out["chunks"] = [(t, min(t + e, step + 1)) for t in range(0, step + 1, e)]
    return out


def _episode_job(job) -> dict:
    path, adapter, execute, task, mode, seed, noise_seed, words, max_steps = job
    import torch
    torch.set_num_threads(1)
    from a2g_core.sim import make_env
    from a2g_core.sim.rollout import expert_goal, expert_grasp
    if (path, adapter, execute) not in _WORKER_CACHE:
        _WORKER_CACHE[(path, adapter, execute)] = load_policy(path, adapter, execute)
    policy = _WORKER_CACHE[(path, adapter, execute)]
    res = policy.config.resolution
    key = ("env", task, mode, words)
    if key not in _WORKER_CACHE:
        _WORKER_CACHE[key] = make_env(task, mode, res, words=list(words) if words else None)
    goal_key = (task, mode, seed, res, words, policy.config.goal_frame)
    if _WORKER_CACHE.get("goal", (None,))[0] != goal_key:        # a scenario's episodes share one goal
        _WORKER_CACHE["goal"] = (goal_key, expert_goal(task, mode, seed, res, words, frame=policy.config.goal_frame))
    goal, ok = _WORKER_CACHE["goal"][1]
    out = run_episode(policy, _WORKER_CACHE[key], seed, goal, max_steps=max_steps, noise_seed=noise_seed)
    out.update(task=task, mode=mode, expert_success=ok)
    taken, let_go = expert_grasp(task, mode, seed, res, words) or (None, None)
    grasp = out["grasp"]
    both = taken is not None and grasp is not None
    out["grasp_error_cm"] = _cm(grasp[:3], taken[:3]) if both else None
    out["grasp_turn_deg"] = grasp_turn_deg(grasp, taken) if both else None
    out["grasp_at_place"] = None if let_go is None or grasp is None else grasp_at_place(grasp, taken, let_go)
    out["info"] = {k: v for k, v in _WORKER_CACHE[key].scene.public.items()}
    return out


def evaluate(policy_path, *, task: str, mode: str, episodes: int, workers: int = 1, adapter=None,
             seed_start: int = EVAL_SEED_START, words: list[str] | None = None, max_steps: int | None = None,
             scenario: int | None = None, execute: int | None = None,
             progress: Callable[[int, int, dict], None] | None = None) -> dict:
    """One task and mode; see ``evaluate_cells``."""
    return evaluate_cells(policy_path, cells=[(task, mode)], episodes=episodes, workers=workers, adapter=adapter,
                          seed_start=seed_start, words=words, max_steps=max_steps, scenario=scenario, execute=execute,
                          progress=progress)[0]


def evaluate_cells(policy_path, *, cells: list[tuple[str, str]], episodes: int, workers: int = 1, adapter=None,
                   seed_start: int = EVAL_SEED_START, words: list[str] | None = None, max_steps: int | None = None,
                   scenario: int | None = None, execute: int | None = None,
                   progress: Callable[[int, int, dict], None] | None = None) -> list[dict]:
    """Success per (task, mode) cell with a 95% Wilson interval; all cells share one worker pool.
    Episode i plays seed ``seed_start + i``, or with ``scenario`` the scene of that one seed every
    time, with the policy's noise seeded ``seed_start + i``.
    ``adapter``: a LoRA adapter folder applied on top of the policy (an improvement round's).
    ``max_steps``: end episodes earlier than the task's own limit (quick checks).
    ``execute``: actions executed per chunk before the next prediction (default: the checkpoint's E).
    Each cell also reports where its policy first shut the gripper against where the expert did on
    the same seed: ``grasps`` (episodes where both did) and ``grasp_error_cm`` (their median distance,
    None without any): whether a failing policy finds the object at all; ``grasp_turn_deg``, the median
    of ``grasp_turn_deg``: whether it grips the object the way it lies; ``grasps_at_place``: the
    episodes whose first grasp was within ``PLACE_CM`` of where the expert let the object go, and nearer
    there than the object: a policy that reads the goal image's object for the one in front of it;
    ``scores``: the median over the episodes of each figure of ``Task.scores`` at their ends (for
    writing, the ink's coverage of the word and its precision), and ``failed_scores`` over the failed
    ones alone (None without any): how near the failures came; ``failures_at_edge``, the failed episodes whose
    arm ended pinned at the workspace's edge (``at_workspace_edge``): a policy lost off its data's states;
    ``by_scene``: the successes per kind of scene (``by_scene``)."""
    from a2g_core.sim import MODES, TASKS
    for task, mode in cells:
        if task not in TASKS:
            raise ValueError(f"Unknown task {task!r}; choose from: {', '.join(TASKS)}.")
        if mode not in MODES:
            raise ValueError(f"Unknown mode {mode!r}; choose easy or hard.")
        if words:
            TASKS[task].validate_words(words)
    if episodes < 1 or workers < 1 or (max_steps is not None and max_steps < 1):
        raise ValueError("--episodes, --workers and --max-steps must be at least 1.")
    execute = load_policy(policy_path, adapter, execute).config.msth_E   # fails here, in one sentence, if bad
    adapter = str(adapter) if adapter else None
    jobs = [(str(policy_path), adapter, execute, task, mode, s if scenario is None else scenario, s,
             tuple(words) if words else None, max_steps)
            for task, mode in cells for s in range(seed_start, seed_start + episodes)]
    results: dict[tuple, list] = {cell: [] for cell in cells}
    if workers == 1:
        it, pool = map(_episode_job, jobs), None
    else:
        from a2g_core.data.generate import worker_init
        pool = mp.get_context("spawn").Pool(workers, initializer=worker_init)
        it = pool.imap_unordered(_episode_job, jobs)
    for done, r in enumerate(it, 1):
        results[(r["task"], r["mode"])].append(r)
        if progress:
            progress(done, len(jobs), r)
    if pool is not None:
        pool.close()
        pool.join()
    reports = []
    for (task, mode), rs in results.items():
        k = sum(r["success"] for r in rs)
        lo, hi = wilson(k, len(rs))
        gripped = [r for r in rs if r["grasp_error_cm"] is not None]
        reports.append({"task": task, "mode": mode, "episodes": len(rs), "execute": execute, "max_steps": max_steps,
                        "success": k / len(rs), "ci95": [lo, hi],
                        "mean_steps": float(np.mean([r["steps"] for r in rs])),
                        "grasps": len(gripped),
                        **{k: float(np.median([r[k] for r in gripped])) if gripped else None
                           for k in ("grasp_error_cm", "grasp_turn_deg")},
                        "grasps_at_place": sum(bool(r["grasp_at_place"]) for r in rs),
                        "failures_at_edge": sum(r["at_edge"] and not r["success"] for r in rs),
                        "by_scene": by_scene(rs),
                        "scores": median_scores(rs), "failed_scores": median_scores([r for r in rs if not r["success"]]),
                        "results": sorted(rs, key=lambda r: (r["seed"], r["noise_seed"]))})
    return reports
