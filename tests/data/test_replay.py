import numpy as np
import pytest

from a2g_core.data.replay import HindsightReplay
from a2g_core.msth import MSTHConfig

CFG = MSTHConfig(P=4, r=2, M=2, E=3)


def _rollout(steps=10, views=2):
    # latent frame t is filled with the value t, so every sample says which step it came from
    lat = [np.broadcast_to(np.arange(steps + 1, dtype=np.float32)[:, None, None, None], (steps + 1, 2, 4, 4)).copy()
           for _ in range(views)]
    states = np.arange(steps + 1, dtype=np.float32)[:, None].repeat(5, 1)
    actions = np.arange(1, steps + 1, dtype=np.float32)[:, None].repeat(5, 1)   # action t+1 leads to state t+1
    return lat, states, actions


def test_goal_is_the_reached_observation():
    replay = HindsightReplay(CFG)
    replay.add_rollout(*_rollout(), chunks=[(0, 3), (3, 6), (6, 9), (9, 10)])
    for i, (t0, t1) in enumerate([(0, 3), (3, 6), (6, 9), (9, 10)]):
        w = replay.relabel_with_achieved_goal(i)
        assert (w["obs_latents"] == t0).all() and (w["goal_latents"] == t1).all()
        assert w["state"][0] == t0
        # MSTH targets come from what was reached: nothing after o' is ever used
        assert w["future_latents"].max() <= t1 and w["actions"].max() <= t1
        assert w["actions"][0, 0] == t0 + 1
        # the loss reads only the actions taken on the way to o': nothing was done towards g' after it
        kept = w["action_mask"] > 0
        assert kept[0] and set(w["actions"][kept, 0]) == set(range(t0 + 1, t1 + 1))
        assert (t0 + w["action_offsets"][kept] <= t1).all() and (t0 + w["action_offsets"][~kept] > t1).all()


def test_sample_batches_and_bad_chunks():
    replay = HindsightReplay(CFG)
    with pytest.raises(ValueError, match="empty"):
        replay.sample(np.random.default_rng(0), 2)
    lat, states, actions = _rollout()
    with pytest.raises(ValueError, match="outside the rollout"):
        replay.add_rollout(lat, states, actions, chunks=[(8, 12)])
    with pytest.raises(ValueError, match="needs 11 states"):
        replay.add_rollout(lat, states[:-1], actions, chunks=[(0, 3)])
    replay.add_rollout(lat, states, actions, chunks=[(0, 3), (3, 6)])
    b = replay.sample(np.random.default_rng(0), 5)
    assert b["obs_latents"].shape == (5, 2, 2, 4, 4) and b["actions"].shape == (5, CFG.num_actions, 5)


def test_future_goals_are_later_reached_observations():
    replay = HindsightReplay(CFG, goal="future")
    replay.add_rollout(*_rollout(), chunks=[(0, 3), (3, 6)])
    rng = np.random.default_rng(0)
    goals = {i: {replay.goal_step(i, rng) for _ in range(200)} for i in (0, 1)}
    assert goals == {0: set(range(3, 11)), 1: set(range(6, 11))}     # from the chunk's end to the rollout's
    w = replay.relabel_with_achieved_goal(0, goal_step=10)
    assert (w["goal_latents"] == 10).all() and (w["obs_latents"] == 0).all()
    # the targets are the way actually taken to that goal: beyond the chunk, up to the goal
    assert w["future_latents"].max() == 10 and w["actions"].max() == 10 and w["actions"][0, 0] == 1
    b = replay.sample(np.random.default_rng(1), 64)
    assert set(np.unique(b["goal_latents"][:, 0, 0, 0, 0].numpy())) > {3.0, 6.0}
    with pytest.raises(ValueError, match="not reached"):
        replay.relabel_with_achieved_goal(1, goal_step=4)
    with pytest.raises(ValueError, match="Unknown relabelling"):
        HindsightReplay(CFG, goal="final")


def test_a_reached_goal_is_kept_for_its_share_of_samples():
    replay = HindsightReplay(CFG, goal="chunk", keep_goal=0.5)
    lat, states, actions = _rollout()
    given = [np.full((2, 4, 4), -1.0, np.float32) for _ in lat]        # the goal it was given: unlike any frame
    replay.add_rollout(lat, states, actions, chunks=[(0, 3), (3, 6)], reached_goal=given)
    replay.add_rollout([l + 100 for l in lat], states, actions, chunks=[(0, 3)])    # a failure: always relabelled
    b = replay.sample(np.random.default_rng(0), 400)
    kept = (b["goal_latents"][:, 0, 0, 0, 0] == -1).numpy()
    success = (b["obs_latents"][:, 0, 0, 0, 0] < 100).numpy()
    assert 0.4 < kept[success].mean() < 0.6 and not kept[~success].any()
    # a kept goal's targets are the whole way the rollout took to its success (step 10), nothing past it
    for i in np.flatnonzero(kept):
        mask = b["action_mask"][i].numpy() > 0
        t0 = int(b["obs_latents"][i, 0, 0, 0, 0])
        np.testing.assert_array_equal(mask, t0 + b["action_offsets"][i].numpy() <= 10)
        assert b["actions"][i, mask, 0].max() == 10
    with pytest.raises(ValueError, match="has 1 views, the rollout 2"):
        replay.add_rollout(lat, states, actions, chunks=[(0, 3)], reached_goal=given[:1])
    with pytest.raises(ValueError, match="do not match the rollout's frames"):
        replay.add_rollout(lat, states, actions, chunks=[(0, 3)], reached_goal=[g[:1] for g in given])
    with pytest.raises(ValueError, match="between 0 and 1"):
        HindsightReplay(CFG, keep_goal=1.5)
