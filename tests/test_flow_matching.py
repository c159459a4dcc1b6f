import pytest
import torch

from a2g_core.flow_matching import euler_integrate, interpolate, sample_t, velocity_target


def test_interpolation_endpoints_and_target():
    x0, n = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    torch.testing.assert_close(interpolate(x0, n, torch.zeros(3)), x0)
    torch.testing.assert_close(interpolate(x0, n, torch.ones(3)), n)
    s = torch.tensor([0.2, 0.5, 0.9])
    xs = interpolate(x0, n, s)
    # the straight path: x_s + (0 - s)·v = x0 with v = noise - x0
    torch.testing.assert_close(xs - s[:, None, None] * velocity_target(x0, n), x0)


def test_euler_recovers_x0_for_the_true_velocity():
    x0, n = torch.randn(2, 7), torch.randn(2, 7)
    out = euler_integrate(lambda x, s: velocity_target(x0, n), n, steps=3)
    torch.testing.assert_close(out, x0)


def test_sample_t_in_open_interval():
    s = sample_t(1000, generator=torch.Generator().manual_seed(0))
    assert (s > 0).all() and (s < 1).all() and 0.4 < s.mean() < 0.6


def test_bad_steps():
    with pytest.raises(ValueError, match="at least 1"):
        euler_integrate(lambda x, s: x, torch.zeros(1, 2), 0)
