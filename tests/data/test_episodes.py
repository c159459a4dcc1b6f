import json

import numpy as np
import pytest

from a2g_core.data.episodes import EpisodeStore, episode_name
from a2g_core.data.generate import generate


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    stats = generate(root, tasks=["place_empty_cup"], modes=["easy"], episodes=2, resolution=64)
    assert stats["written"] == 2 and stats["success"] == 2
    return root


def test_layout_and_lazy_loading(dataset):
    store = EpisodeStore(dataset)
    assert len(store) == 2 and store.views == ["head", "wrist"]
    ep = store[0]
    frames = ep.frames("head")
    assert isinstance(frames, np.memmap)                    # read lazily, not loaded whole
    state, action = ep.lowdim()
    assert frames.shape == (ep.length + 1, 64, 64, 3)
    assert state.shape == (ep.length + 1, 5) and action.shape == (ep.length, 5)
    np.testing.assert_array_equal(ep.goal()["head"], frames[-1])
    assert ep.meta["task"] == "place_empty_cup" and ep.meta["success"] is True


def test_resume_keeps_finished_and_discards_half_written(dataset):
    done = dataset / episode_name("place_empty_cup", "easy", 0)
    before = done.joinpath("head.npy").stat().st_mtime_ns
    half = dataset / (episode_name("place_empty_cup", "easy", 2) + ".tmp")
    half.mkdir()
    (half / "head.npy").write_bytes(b"truncated")
    assert len(EpisodeStore(dataset)) == 2                  # a .tmp folder is never read as an episode
    stats = generate(dataset, tasks=["place_empty_cup"], modes=["easy"], episodes=3, resolution=64)
    assert stats == {"written": 1, "skipped": 2, "discarded": 1, "success": 1, "steps": stats["steps"],
                     "not_handed_over": 0}
    assert done.joinpath("head.npy").stat().st_mtime_ns == before
    assert not half.exists() and len(EpisodeStore(dataset)) == 3


def test_parallel_workers_write_the_same_episodes(dataset, tmp_path):
    generate(tmp_path, tasks=["place_empty_cup"], modes=["easy"], episodes=2, workers=2, resolution=64)
    a, b = EpisodeStore(dataset)[1], EpisodeStore(tmp_path)[1]
    np.testing.assert_array_equal(a.frames("wrist"), b.frames("wrist"))
    np.testing.assert_array_equal(a.lowdim()[1], b.lowdim()[1])


def test_failed_episodes_are_kept_but_filtered(dataset):
    meta_path = dataset / episode_name("place_empty_cup", "easy", 1) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "success": False}))
    try:
        assert len(EpisodeStore(dataset)) == 2
        assert len(EpisodeStore(dataset, only_success=False)) == 3
    finally:
        meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize("kwargs,message", [
    ({"tasks": ["juggling"]}, "Unknown task"), ({"modes": ["medium"]}, "Unknown mode"),
    ({"episodes": 0}, "at least 1"), ({"resolution": 100}, "not supported"),
    ({"words": ["CAT"]}, "writing task only"), ({"noise": 0.2}, "metres between 0 and 0.05"),
    ({"noise": 0.015, "yaw_noise": 2.0}, "radians between 0 and 1"), ({"yaw_noise": 0.3}, "pass --noise too"),
])
def test_bad_generation_arguments(tmp_path, kwargs, message):
    args = {"tasks": ["plating"], "modes": ["easy"], "episodes": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate(tmp_path, **args)


def test_dataset_resolution_mismatch(dataset):
    with pytest.raises(ValueError, match="resolution"):
        generate(dataset, tasks=["place_empty_cup"], modes=["easy"], episodes=1, resolution=96)


def test_not_a_dataset(tmp_path):
    with pytest.raises(ValueError, match="not a dataset folder"):
        EpisodeStore(tmp_path)


def test_handover_episodes_start_where_the_policy_left_off(tmp_path, tiny_policy_dir):
    """gen-data --handover-from: the policy acts first, the expert takes over, and only the expert's part is
    written, starting from the very state the policy's rollout reached."""
    from a2g_core.eval.policy_eval import load_policy, run_episode
    from a2g_core.sim import make_env
    from a2g_core.sim.rollout import expert_goal
    stats = generate(tmp_path, tasks=["plug_in"], modes=["easy"], episodes=2, resolution=64,
                     handover_from=tiny_policy_dir, handover_steps=(6, 14))
    assert stats["written"] == 2 and stats["success"] == 2 and stats["not_handed_over"] == 0
    policy, env = load_policy(tiny_policy_dir), make_env("plug_in", "easy", 64)
    for ep in EpisodeStore(tmp_path):
        steps = ep.meta["info"]["handover_step"]
        assert 6 <= steps <= 14 and ep.meta["info"]["handover_from"] == str(tiny_policy_dir)
        goal, _ = expert_goal("plug_in", "easy", ep.meta["seed"], 64)
        out = run_episode(policy, env, ep.meta["seed"], goal, max_steps=steps, record=True)
        np.testing.assert_array_equal(ep.lowdim()[0][0], out["episode"].states[-1])
        np.testing.assert_array_equal(ep.frames("wrist")[0], out["episode"].frames["wrist"][-1])
        assert not np.array_equal(ep.lowdim()[0][0], env.task.home())          # the policy did move the arm
    env.close()


@pytest.mark.parametrize("kwargs,message", [
    ({"tasks": ["plating"]}, "no expert that takes over"), ({"handover_steps": (30, 10)}, "FIRST <= LAST"),
    ({"handover_from": "nowhere"}, "not a policy checkpoint"), ({"resolution": 96}, "pass --resolution 64"),
])
def test_bad_handover_arguments(tmp_path, tiny_policy_dir, kwargs, message):
    args = {"tasks": ["plug_in"], "modes": ["easy"], "episodes": 1, "resolution": 64,
            "handover_from": tiny_policy_dir, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate(tmp_path, **args)
