"""Flow-matching helpers shared by every model (conventions of diffusers' FlowMatchEulerDiscreteScheduler).

``x_s = (1 − s)·x0 + s·noise``, s ∈ [0, 1] (s = 1 is pure noise); the network predicts the velocity
``noise − x0``; sampling integrates from s = 1 to s = 0 with Euler steps (paper §4.2).
These are pure functions: no step counter, nothing to share between threads.
"""
from __future__ import annotations

from typing import Callable

import torch


def sample_t(batch: int, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """Noise levels for training: logit-normal (more weight mid-way, as in SD3), in (0, 1)."""
    return torch.sigmoid(torch.randn(batch, generator=generator, device=device))


def interpolate(x0: torch.Tensor, noise: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``(1 − s)·x0 + s·noise`` with ``s`` broadcast from (B,) over the remaining dims."""
    s = s.reshape(-1, *([1] * (x0.dim() - 1)))
    return (1 - s) * x0 + s * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return noise - x0


def euler_integrate(velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], noise: torch.Tensor,
                    steps: int) -> torch.Tensor:
    """Integrate ``dx/ds = velocity(x, s)`` from s = 1 (``noise``) to s = 0 in ``steps`` equal steps."""
    if steps < 1:
        raise ValueError(f"The number of integration steps must be at least 1, got {steps}.")
    x = noise
    grid = torch.linspace(1.0, 0.0, steps + 1, device=noise.device)
    for s0, s1 in zip(grid[:-1], grid[1:]):
        s = torch.full((x.shape[0],), float(s0), device=x.device)
        x = x + (s1 - s0) * velocity(x, s)
    return x
