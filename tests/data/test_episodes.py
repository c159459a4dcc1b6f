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
    assert stats == {"written": 1, "skipped": 2, "discarded": 1, "success": 1, "steps": stats["steps"]}
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
