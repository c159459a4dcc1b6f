"""Plotly figures of stored results, shared by the lab's tabs and the benchmark report."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import plotly.graph_objects as go
from plotly.colors import qualitative


def rounds_plot(rounds: list, baselines: dict) -> go.Figure:
    """Success per improvement round, one line per run (round 0 = the base policy)."""
    runs: dict[str, list] = {}
    for r in rounds:
        if r.status == "done" and "success" in r.metrics:
            runs.setdefault(r.config.get("run", "?"), []).append((r.number, r.metrics["success"]))
    return success_lines({run.rsplit("/", 1)[-1]: ([(0, baselines[run])] if run in baselines else []) + pts
                          for run, pts in runs.items()})


def success_lines(runs: dict[str, list[tuple[int, float]]], title: str = "success per round") -> go.Figure:
    """One line per run through its (round, success) points."""
    fig = go.Figure()
    for name, pts in runs.items():
        pts = sorted(pts)
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=name))
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), title=title,
                      xaxis=dict(title="round", dtick=1), yaxis=dict(range=[0, 1], title="success"))
    return fig


def evaluation_plot(rows: list, title: str = "evaluations (95% Wilson intervals)", reported: dict | None = None) -> go.Figure:
    """Success per task × mode × method with 95% intervals; a method's checkpoints apart where
    several have results for one task and mode (the all-task checkpoint beside a single-task one).
    ``reported`` ((method, task, mode) -> success, e.g. the paper's) adds hatched bars where it has
    a figure for a method, task and mode that the rows hold."""
    fig = go.Figure()
    shared = {k for k, n in Counter((e.method, e.task, e.mode) for e in rows).items() if n > 1}

    def name(e) -> str:
        method = e.method or "policy"
        return (f"{method} ({Path(e.policy).name})" if (e.method, e.task, e.mode) in shared else method) + f" · {e.mode}"

    groups: dict[str, list] = {}
    for e in rows:
        groups.setdefault(name(e), []).append(e)
    for name, es in groups.items():
        fig.add_trace(go.Bar(x=[e.task for e in es], y=[e.success for e in es], name=name,
                             error_y=dict(type="data", symmetric=False, array=[e.ci_high - e.success for e in es],
                                          arrayminus=[e.success - e.ci_low for e in es])))
    shown = [c for c in dict.fromkeys((e.method, e.task, e.mode) for e in rows) if c in (reported or {})]
    for method, mode in dict.fromkeys((m, md) for m, _, md in shown):
        tasks = [t for m, t, md in shown if (m, md) == (method, mode)]
        fig.add_trace(go.Bar(x=tasks, y=[reported[method, t, mode] for t in tasks], name=f"{method}, the paper's · {mode}",
                             marker=dict(pattern=dict(shape="/"), opacity=0.6)))
    # plotly's default 10 colours repeat past ten groups, and the lab often shows more
    fig.update_layout(barmode="group", height=360, margin=dict(l=10, r=10, t=30, b=10), colorway=qualitative.Dark24,
                      yaxis=dict(range=[0, 1], title="success"), title=title)
    return fig
