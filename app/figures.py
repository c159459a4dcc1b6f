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
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), title="MSTH timeline (steps from now)",
                      xaxis_title="step offset", legend=dict(orientation="h", y=-0.5))
    fig.update_yaxes(range=[-0.5, 1.8])            # room above the frames' row for their offset labels
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
