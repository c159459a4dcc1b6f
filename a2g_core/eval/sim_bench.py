"""Simulator benchmark: control rate, render rate, expert success, data-generation time.

Speeds run in this process with one render thread (``LP_NUM_THREADS=0``), so they are per core;
each is the median of ``repeats`` runs because this machine is shared and noisy.
"""
from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Callable

import numpy as np

os.environ.setdefault("LP_NUM_THREADS", "0")


def _median_rate(fn: Callable[[], int], repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for k successes in n trials."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, c - h), min(1.0, c + h)


def speed(resolution: int = 96, steps: int = 200, repeats: int = 5, task: str = "place_empty_cup") -> dict:
    from a2g_core.sim import VIEWS, make_env    # first: it selects the EGL backend for mujoco
    import mujoco  # noqa: I001
    env = make_env(task, "easy", resolution)
    env.reset(seed=0)
    plan = [env.task.home() + np.array([0.1 * np.sin(i / 10), 0.1 * np.cos(i / 13), -0.05, 0.3, 0]) for i in range(steps)]

    def control() -> int:
        env.reset(seed=0)
        for a in plan:
            env.step(a)
        return steps

    def render() -> int:
        for _ in range(steps):
            for v in VIEWS:
                env.renderer.update_scene(env.data, camera=v)
                env.renderer.render()
        return steps * len(VIEWS)

    def physics() -> int:
        for _ in range(steps):
            mujoco.mj_step(env.model, env.data, nstep=25)
        return steps

    out = {"resolution": resolution, "control_steps_per_s": _median_rate(control, repeats),
           "frames_per_s": _median_rate(render, repeats), "physics_steps_per_s": _median_rate(physics, repeats)}
    env.close()
    return out


def expert_success(tasks, modes, episodes: int, workers: int, resolution: int = 96,
                   progress: Callable[[int, int], None] | None = None) -> list[dict]:
    from a2g_core.data.generate import expert_job, run_jobs
    jobs = [expert_job(t, m, s, resolution) for t in tasks for m in modes for s in range(episodes)]
    results: dict[tuple, list] = {}
    for i, (task, mode, seed, ok, n) in enumerate(run_jobs(jobs, workers)):
        results.setdefault((task, mode), []).append((seed, ok, n))
        if progress:
            progress(i + 1, len(jobs))
    rows = []
    for (task, mode), rs in sorted(results.items()):
        k = sum(ok for _, ok, _ in rs)
        lo, hi = wilson(k, len(rs))
        rows.append({"task": task, "mode": mode, "episodes": len(rs), "success": k / len(rs), "ci95": [lo, hi],
                     "failed_seeds": sorted(s for s, ok, _ in rs if not ok),
                     "mean_steps": float(np.mean([n for _, _, n in rs]))})
    return rows


def gen_time(episodes: int, workers: int, task: str = "place_empty_cup") -> dict:
    from a2g_core.data.generate import generate
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        stats = generate(d, tasks=[task], modes=["easy"], episodes=episodes, workers=workers)
        dt = time.perf_counter() - t
    return {"task": task, "episodes": episodes, "workers": workers, "seconds": dt, "steps": stats["steps"],
            "steps_per_s": stats["steps"] / dt}


def run_sim_bench(*, episodes: int = 20, repeats: int = 5, workers: int = 2, gen_episodes: int = 100,
                  tasks: str = "all", log: Callable[[str], None] = print,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    from a2g_core.sim import MODES, RESOLUTIONS, TASKS
    task_list = list(TASKS) if tasks == "all" else tasks.split(",")
    report: dict = {"speed": []}
    log("| resolution | control steps/s (2 cameras, 1 core) | frames rendered/s | physics-only steps/s |")
    log("|---|---|---|---|")
    for r in RESOLUTIONS:
        s = speed(r, repeats=repeats)
        report["speed"].append(s)
        log(f"| {r} | {s['control_steps_per_s']:.0f} | {s['frames_per_s']:.0f} | {s['physics_steps_per_s']:.0f} |")
    if gen_episodes:
        g = gen_time(gen_episodes, workers)
        report["generation"] = g
        log(f"\ngen-data: {g['episodes']} episodes of {g['task']} ({g['steps']} steps) with {g['workers']} workers "
            f"in {g['seconds']:.1f} s ({g['steps_per_s']:.0f} steps/s)\n")
    if episodes:
        rows = expert_success(task_list, MODES, episodes, workers, progress=progress)
        report["expert"] = rows
        log("| task | mode | expert success | 95% interval | mean steps | failed seeds |")
        log("|---|---|---|---|---|---|")
        for r in rows:
            log(f"| {r['task']} | {r['mode']} | {r['success']:.2f} ({round(r['success'] * r['episodes'])}/{r['episodes']}) "
                f"| {r['ci95'][0]:.2f}–{r['ci95'][1]:.2f} | {r['mean_steps']:.0f} | {r['failed_seeds'] or '-'} |")
    return report
