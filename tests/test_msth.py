import numpy as np
import pytest

from a2g_core import msth
from a2g_core.msth import MSTHConfig

PAPER = MSTHConfig(P=54, r=6, M=9, E=50)


def test_paper_values_give_9_plus_9_frames_and_54_plus_9_actions():
    K = 300
    assert len(msth.proximal_frame_offsets(PAPER)) == 9
    assert len(msth.distal_offsets(PAPER, K)) == 9
    assert len(msth.action_offsets(PAPER, K)) == 54 + 9
    assert len(msth.executed_offsets(PAPER)) == 50
    np.testing.assert_array_equal(msth.proximal_frame_offsets(PAPER), [6, 12, 18, 24, 30, 36, 42, 48, 54])


def test_distal_formula_and_last_anchor_is_the_goal():
    K = 300
    d = msth.distal_offsets(PAPER, K)
    expected = [54 + int(np.floor((K - 54) / np.log(10) * np.log(m + 1))) for m in range(1, 10)]
    np.testing.assert_array_equal(d, expected)
    assert d[-1] == K and d[0] > 54
    assert np.all(np.diff(d) > 0)
    assert np.all(np.diff(np.diff(d)) <= 0)         # log spacing: gaps between anchors shrink towards the goal


@pytest.mark.parametrize("K", [0, 10, 54])
def test_horizon_shorter_than_proximal_clamps_to_P(K):
    d = msth.distal_offsets(PAPER, K)
    np.testing.assert_array_equal(d, np.full(9, 54))


def test_indices_past_the_episode_end_repeat_the_last_frame_and_action():
    cfg = MSTHConfig(P=8, r=4, M=2, E=6)
    idx = msth.episode_indices(cfg, t=5, length=10)       # 5 steps left: fewer than P
    np.testing.assert_array_equal(idx["frame_offsets"], [4, 8, 8, 8])
    np.testing.assert_array_equal(idx["frames"], [9, 10, 10, 10])
    np.testing.assert_array_equal(idx["actions"][:8], [5, 6, 7, 8, 9, 9, 9, 9])
    idx = msth.episode_indices(cfg, t=0, length=40)
    np.testing.assert_array_equal(idx["frames"], [4, 8, 8 + int(np.floor(32 / np.log(3) * np.log(2) + 1e-9)), 40])
    assert idx["actions"][0] == 0 and idx["actions"][7] == 7 and idx["actions"][-1] == 39


def test_last_step_of_an_episode():
    cfg = MSTHConfig(P=8, r=4, M=2, E=6)
    idx = msth.episode_indices(cfg, t=10, length=10)
    assert (idx["frames"] == 10).all() and (idx["actions"] == 9).all()
    with pytest.raises(ValueError, match="outside the episode"):
        msth.episode_indices(cfg, t=11, length=10)


@pytest.mark.parametrize("kwargs,message", [
    ({"P": 10, "r": 4}, "multiple of the stride"), ({"E": 60}, "cannot exceed"), ({"r": 0}, "at least 1"),
    ({"M": -1}, "0 or more"),
])
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MSTHConfig(**kwargs)


def test_no_distal_is_fixed_horizon_chunking():
    cfg = MSTHConfig(P=8, r=4, M=0, E=8)
    assert cfg.num_frames == 2 and cfg.num_actions == 8
    assert len(msth.distal_offsets(cfg, 100)) == 0
