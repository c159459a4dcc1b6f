"""Paired comparison of two evaluations on the same seeds: is one policy ahead of the other?

Two policies run on the same seeds meet the same scenes, so the seeds where both succeed or both fail
say nothing about which is better; only the seeds where exactly one succeeds do. McNemar's exact test
asks whether those split evenly, and Newcombe's interval (1998, method 10: Wilson intervals of the two
rates, combined through their correlation on the shared seeds) bounds the difference in success rate.
Blocks of 50 seeds swing by up to ten successes for one policy, so two unpaired Wilson intervals hide a
difference that the same seeds show.
"""
from __future__ import annotations

import json
from math import comb, sqrt
from pathlib import Path

from a2g_core.eval.sim_bench import wilson


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact p-value that the discordant seeds split evenly between the two policies."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def format_p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else "<0.001"


def paired_difference(both: int, only_a: int, only_b: int, neither: int) -> tuple[float, float, float]:
    """Success rate of A minus that of B on the same seeds, with Newcombe's 95% interval."""
    n = both + only_a + only_b + neither
    if n == 0:
        raise ValueError("No shared seeds to compare.")
    pa, pb = (both + only_a) / n, (both + only_b) / n
    la, ua = wilson(both + only_a, n)
    lb, ub = wilson(both + only_b, n)
    den = (both + only_a) * (only_b + neither) * (both + only_b) * (only_a + neither)
    phi = (both * neither - only_a * only_b) / sqrt(den) if den else 0.0
    d = pa - pb
    lo = d - sqrt(max(0.0, (pa - la) ** 2 - 2 * phi * (pa - la) * (ub - pb) + (ub - pb) ** 2))
    hi = d + sqrt(max(0.0, (ua - pa) ** 2 - 2 * phi * (ua - pa) * (pb - lb) + (pb - lb) ** 2))
    return d, max(-1.0, lo), min(1.0, hi)


def load_results(spec: str) -> tuple[str, dict]:
    """``spec``: one eval ``--json`` file, or several joined by commas (seed blocks of one policy).
    Returns the label and ``{(task, mode): {(seed, noise_seed): success}}``."""
    cells: dict = {}
    labels = []
    for name in (s for s in spec.split(",") if s.strip()):
        path = Path(name.strip())
        if not path.is_file():
            raise ValueError(f"{path} does not exist; pass files written by `eval --json`.")
        try:
            report = json.loads(path.read_text())
            found = report["cells"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValueError(f"{path} is not a file written by `eval --json` (no 'cells' list).") from None
        for c in found:
            seeds = cells.setdefault((c["task"], c["mode"]), {})
            for r in c["results"]:
                seeds[(r["seed"], r["noise_seed"])] = bool(r["success"])
        if found:
            execute = found[0].get("execute")              # reports before --execute lack it
            label = report.get("policy", path.stem) + (f" (E={execute})" if execute else "")
        else:
            label = str(path)
        if label not in labels:
            labels.append(label)
    return " + ".join(labels), cells


def paired(a: list[bool], b: list[bool]) -> dict:
    """Successes of two policies on the same seeds, in the same order: counts, difference and test."""
    if len(a) != len(b):
        raise ValueError(f"Paired results need the same seeds; got {len(a)} and {len(b)} episodes.")
    both = sum(x and y for x, y in zip(a, b))
    only_a = sum(x and not y for x, y in zip(a, b))
    only_b = sum(y and not x for x, y in zip(a, b))
    d, lo, hi = paired_difference(both, only_a, only_b, len(a) - both - only_a - only_b)
    return {"seeds": len(a), "a": both + only_a, "b": both + only_b, "only_a": only_a, "only_b": only_b,
            "difference": d, "ci95": [lo, hi], "p_value": mcnemar_exact(only_a, only_b)}


def compare(a: dict, b: dict) -> list[dict]:
    """One row per (task, mode) cell in both result sets, over the seeds both played."""
    rows = []
    for cell in sorted(set(a) & set(b)):
        shared = sorted(set(a[cell]) & set(b[cell]))
        if shared:
            rows.append({"task": cell[0], "mode": cell[1],
                         **paired([a[cell][s] for s in shared], [b[cell][s] for s in shared])})
    return rows
