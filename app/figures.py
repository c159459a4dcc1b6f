"""Plotly figures of the lab (UI side: the core never imports plotly)."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

STATE_NAMES = ["x", "y", "z", "yaw", "grip"]


def msth_timeline(offsets: list[int], num_proximal: int, action_offsets: list[int], P: int, E: int) -> go.Figure:
    """Where the imagined frames and the P + M actions fall, in steps from now."""
    fig = go.Figure()
    prox = action_offsets[:P]
    fig.add_trace(go.Scatter(x=prox[:E], y=["actions"] * E, mode="markers", name=f"executed actions (1..{E})",
                             marker=dict(size=7, color="#2563eb")))
    if P > E:
        fig.add_trace(go.Scatter(x=prox[E:], y=["actions"] * (P - E), mode="markers", name="proximal, not executed",
                                 marker=dict(size=7, color="#93c5fd")))
    fig.add_trace(go.Scatter(x=action_offsets[P:], y=["actions"] * (len(action_offsets) - P), mode="markers",
                             name="distal actions (guidance)", marker=dict(size=12, symbol="diamond", color="#f59e0b")))
    fig.add_trace(go.Scatter(x=offsets[:num_proximal], y=["frames"] * num_proximal, mode="markers+text",
                             name="proximal frames", text=[f"+{o}" for o in offsets[:num_proximal]],
                             textposition="top center", marker=dict(size=14, symbol="square", color="#16a34a")))
    fig.add_trace(go.Scatter(x=offsets[num_proximal:], y=["frames"] * (len(offsets) - num_proximal),
                             mode="markers+text", name="distal frames", text=[f"+{o}" for o in offsets[num_proximal:]],
                             textposition="top center", marker=dict(size=14, symbol="square", color="#dc2626")))
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), title="MSTH timeline (steps from now)",
                      xaxis_title="step offset", legend=dict(orientation="h", y=-0.35))
    return fig


def rollout_plot(states: np.ndarray, actions: np.ndarray, chunks: list, predictions: dict | None) -> go.Figure:
    """Proprio state and executed actions over time; predicted distal actions as diamonds."""
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=len(STATE_NAMES), cols=1, shared_xaxes=True, vertical_spacing=0.03,
                        subplot_titles=STATE_NAMES)
    t_state = np.arange(len(states))
    for i, name in enumerate(STATE_NAMES):
        show = i == 0
        fig.add_trace(go.Scatter(x=t_state, y=states[:, i], name="state", line=dict(color="#111827"),
                                 showlegend=show, legendgroup="s"), row=i + 1, col=1)
        fig.add_trace(go.Scatter(x=t_state[1:], y=actions[:, i], name="executed action (proximal)",
                                 line=dict(color="#2563eb", dash="dot"), showlegend=show, legendgroup="a"),
                      row=i + 1, col=1)
        if predictions is not None and len(predictions["distal"]):
            xs = (predictions["t0"][:, None] + predictions["offsets"][:, -predictions["distal"].shape[1]:]).ravel()
            ys = predictions["distal"][:, :, i].ravel()
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name="predicted distal action",
                                     marker=dict(symbol="diamond", color="#f59e0b", size=7), showlegend=show,
                                     legendgroup="d"), row=i + 1, col=1)
    for t0, _ in chunks:
        fig.add_vline(x=t0, line=dict(color="#d1d5db", width=1))
    fig.update_layout(height=620, margin=dict(l=10, r=10, t=30, b=10), legend=dict(orientation="h", y=-0.08))
    return fig


def rounds_plot(rounds: list, baselines: dict) -> go.Figure:
    """Success per improvement round, one line per run (round 0 = the base policy)."""
    fig = go.Figure()
    runs: dict[str, list] = {}
    for r in rounds:
        if r.status == "done" and "success" in r.metrics:
            runs.setdefault(r.config.get("run", "?"), []).append((r.number, r.metrics["success"]))
    for run, pts in runs.items():
        pts = sorted(pts)
        if run in baselines:
            pts = [(0, baselines[run])] + pts
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                 name=run.rsplit("/", 1)[-1]))
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), title="success per round",
                      xaxis=dict(title="round", dtick=1), yaxis=dict(range=[0, 1], title="success"))
    return fig


def evaluation_plot(rows: list) -> go.Figure:
    """Success per task × mode × method with 95% intervals."""
    fig = go.Figure()
    groups: dict[str, list] = {}
    for e in rows:
        groups.setdefault(f"{e.method or 'policy'} · {e.mode}", []).append(e)
    for name, es in groups.items():
        fig.add_trace(go.Bar(x=[e.task for e in es], y=[e.success for e in es], name=name,
                             error_y=dict(type="data", symmetric=False, array=[e.ci_high - e.success for e in es],
                                          arrayminus=[e.success - e.ci_low for e in es])))
    fig.update_layout(barmode="group", height=360, margin=dict(l=10, r=10, t=30, b=10),
                      yaxis=dict(range=[0, 1], title="success"), title="evaluations (95% Wilson intervals)")
    return fig
