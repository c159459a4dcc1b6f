import numpy as np
import pytest

from a2g_core import msth
from a2g_core.data.episodes import EpisodeStore
from a2g_core.data.generate import generate
from a2g_core.data.windows import MSTHWindows

CFG = msth.MSTHConfig(P=8, r=4, M=2, E=6)


@pytest.fixture(scope="module")
def store_and_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("win")
    generate(root, tasks=["place_shoe"], modes=["easy"], episodes=1, resolution=64)
    store = EpisodeStore(root)
    cache = root / "latents" / "fake"
    for e in store:                      # latents whose value is the frame index: easy to check
        (cache / e.path.name).mkdir(parents=True)
        for v in store.views:
            lat = np.broadcast_to(np.arange(e.length + 1, dtype=np.float16)[:, None, None, None], (e.length + 1, 2, 2, 2))
            np.save(cache / e.path.name / f"{v}.npy", np.ascontiguousarray(lat))
    return store, cache


def test_window_reads_msth_offsets(store_and_cache):
    store, cache = store_and_cache
    w = MSTHWindows(store, cache, CFG, ["head", "wrist"])
    length = store[0].length
    t = 10
    win = w.window(0, t)
    idx = msth.episode_indices(CFG, t, length)
    assert win["obs_latents"].shape == (2, 2, 2, 2) and (win["obs_latents"] == t).all()
    assert (win["goal_latents"] == length).all()                       # the goal is the final frame
    np.testing.assert_array_equal(win["future_latents"][0, :, 0, 0, 0], idx["frames"])
    states, actions = store[0].lowdim()
    np.testing.assert_array_equal(win["actions"], actions[idx["actions"]])
    # the pose readout's target: the state where the task is done
    np.testing.assert_array_equal(win["done_state"], states[store[0].success_step])
    batch = w.sample(np.random.default_rng(0), 3)
    assert batch["future_latents"].shape == (3, 2, CFG.num_frames, 2, 2, 2)
    assert batch["actions"].shape == (3, CFG.num_actions, 5)


def test_missing_view_and_empty_dataset(store_and_cache, tmp_path):
    store, cache = store_and_cache
    with pytest.raises(ValueError, match="no view"):
        MSTHWindows(store, cache, CFG, ["head", "top_head"])
    generate(tmp_path, tasks=["place_shoe"], modes=["easy"], episodes=1, seed_start=5, resolution=64)
    empty = EpisodeStore(tmp_path, tasks=["plating"])
    with pytest.raises(ValueError, match="no successful episodes"):
        MSTHWindows(empty, cache, CFG, ["head"])
    with pytest.raises(ValueError, match="latent cache"):
        MSTHWindows(EpisodeStore(tmp_path), cache, CFG, ["head"])


def test_windows_start_before_success(store_and_cache):
    """The expert's way home after success is a target, never a start (see data/windows.py)."""
    store, cache = store_and_cache
    ep = store[0]
    assert ep.success and 0 < ep.success_step < ep.length      # the expert goes home after success
    w = MSTHWindows(store, cache, CFG, ["head"])
    starts = w.sample(np.random.default_rng(0), 512)["obs_latents"][:, 0, 0, 0, 0].numpy()
    assert starts.max() < ep.success_step and starts.min() == 0
    assert (w.window(0, ep.success_step - 1)["goal_latents"] == ep.length).all()


def test_success_goal_frame(store_and_cache):
    """``goal_frame="success"``: the goal (and where the targets stop) is the first frame with the task
    done, in the windows, the stored episode and the sim's expert goal alike; a bad rule is one sentence."""
    from a2g_core.sim.rollout import expert_goal
    store, cache = store_and_cache
    ep = store[0]
    w = MSTHWindows(store, cache, CFG, ["head"], goal_frame="success")
    win = w.window(0, ep.success_step - 1)
    assert (win["goal_latents"] == ep.success_step).all()
    assert win["future_latents"].max() == ep.success_step                 # nothing past the goal
    assert (w.sample(np.random.default_rng(0), 256)["goal_latents"] == ep.success_step).all()
    np.testing.assert_array_equal(ep.goal("success")["head"], ep.frames("head")[ep.success_step])
    np.testing.assert_array_equal(ep.goal("final")["head"], ep.frames("head")[ep.length])
    sim_goal, ok = expert_goal("place_shoe", "easy", ep.meta["seed"], 64, frame="success")
    assert ok
    np.testing.assert_array_equal(sim_goal["head"], ep.goal("success")["head"])
    with pytest.raises(ValueError, match="Unknown goal frame 'middle'; choose final or success"):
        MSTHWindows(store, cache, CFG, ["head"], goal_frame="middle")
    with pytest.raises(ValueError, match="Unknown goal frame"):
        expert_goal("place_shoe", "easy", 0, 64, frame="middle")


def test_fixed_horizon_windows_read_controls_offsets(store_and_cache):
    """With a horizon (a policy's ``fixed_horizon``: K as at control) every window has the same offsets,
    so they say nothing about how far the goal is; the targets still stop at the goal."""
    from a2g_core.data.replay import HindsightReplay
    from a2g_core.models.act2goal import PRESETS
    store, cache = store_and_cache
    ep = store[0]
    w = MSTHWindows(store, cache, CFG, ["head"], horizon=40)
    near, far = w.window(0, ep.success_step - 1), w.window(0, 0)
    for win in (near, far):
        np.testing.assert_array_equal(win["frame_offsets"], msth.frame_offsets(CFG, 40))
        np.testing.assert_array_equal(win["action_offsets"], msth.action_offsets(CFG, 40))
    assert near["future_latents"].max() == ep.length                       # clamped to the goal
    assert not np.array_equal(MSTHWindows(store, cache, CFG, ["head"]).window(0, 0)["frame_offsets"],
                              far["frame_offsets"])                        # the steps left: another K
    replay = HindsightReplay(CFG, horizon=40)
    states, actions = ep.lowdim()
    replay.add_rollout([np.load(cache / ep.path.name / "head.npy")], states, actions, [(0, 6)])
    np.testing.assert_array_equal(replay.relabel_with_achieved_goal(0)["action_offsets"], msth.action_offsets(CFG, 40))
    assert PRESETS["tiny"].train_horizon == PRESETS["tiny"].inference_horizon
    assert PRESETS["tiny"].with_(fixed_horizon=False).train_horizon is None


def test_early_windows_start_within_the_first_P_steps(store_and_cache):
    """``early`` of the windows start before step P (the cache's latents at step t equal t)."""
    store, cache = store_and_cache
    starts = lambda w: w.sample(np.random.default_rng(0), 2000)["obs_latents"][:, 0, 0, 0, 0].numpy()
    uniform = starts(MSTHWindows(store, cache, CFG, ["head"]))
    assert (uniform < CFG.P).mean() < 0.4 and uniform.max() >= 2 * CFG.P
    assert (starts(MSTHWindows(store, cache, CFG, ["head"], early=1.0)) < CFG.P).all()
    half = (starts(MSTHWindows(store, cache, CFG, ["head"], early=0.5)) < CFG.P).mean()
    assert 0.45 < half < 0.65                               # half by choice, plus uniform ones that land there
    with pytest.raises(ValueError, match=r"early windows must be in \[0, 1\]"):
        MSTHWindows(store, cache, CFG, ["head"], early=1.5)


def test_next_grip_pose_target(store_and_cache):
    """``pose_target="next_grip"``: a window's done_state is the state at the next grasp or release (the expert
    shuts the gripper on the shoe, then opens it over the mat), and the done state after the last; a profile
    without grippers, or an unknown target, is one sentence."""
    from a2g_core.data.windows import grip_changes
    from a2g_core.robot.profiles import get_profile
    store, cache = store_and_cache
    ep = store[0]
    states, actions = ep.lowdim()
    grips = grip_changes(actions, get_profile("tabletop").grip_dims)
    assert len(grips) == 2 and actions[grips[0], 4] > 0.5 > actions[grips[0] - 1, 4]     # shut, then opened
    assert actions[grips[1], 4] < 0.5 < actions[grips[1] - 1, 4]
    w = MSTHWindows(store, cache, CFG, ["head"], pose_target="next_grip", grip_dims=(4,))
    done = MSTHWindows(store, cache, CFG, ["head"])
    for t, target in ((0, grips[0]), (grips[0], grips[0]), (grips[0] + 1, min(grips[1], ep.success_step))):
        np.testing.assert_array_equal(w.window(0, t)["done_state"], states[target])
    np.testing.assert_array_equal(done.window(0, 0)["done_state"], states[ep.success_step])
    assert get_profile("genie01").grip_dims == (14, 15)
    with pytest.raises(ValueError, match="needs the profile's gripper dims"):
        MSTHWindows(store, cache, CFG, ["head"], pose_target="next_grip")
    with pytest.raises(ValueError, match="pose target must be one of done, next_grip; got 'middle'"):
        MSTHWindows(store, cache, CFG, ["head"], pose_target="middle")
