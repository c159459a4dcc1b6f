"""LeRobot v3.0 export and import: layout, exact states/actions, frames within compression, data made
elsewhere (AgiBot World layout), clear errors on malformed input, and training on what was imported."""
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from a2g_core.data.episodes import EpisodeStore
from a2g_core.data.generate import generate
from a2g_core.data.lerobot import LeRobotFormatError, Mapping, export_lerobot, import_lerobot
from a2g_core.models.act2goal import Act2GoalPolicy
from a2g_core.models.vae import VAEConfig
from a2g_core.train.loop import TrainConfig
from a2g_core.train.stages import train_policy, train_vae
from tests.train.test_stages import POLICY


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("lerobot")
    generate(root / "data", tasks=["place_empty_cup", "writing"], modes=["easy"], episodes=1, resolution=64)
    meta = root / "data" / "writing-easy-000000" / "meta.json"          # a failed rollout travels too
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "success": False}))
    export_lerobot(root / "data", root / "lr")
    return root


def test_export_layout_and_meta(exported):
    lr = exported / "lr"
    info = json.loads((lr / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20 and info["total_episodes"] == 2
    store = EpisodeStore(exported / "data", only_success=False)
    assert info["total_frames"] == sum(e.length + 1 for e in store)
    feats = info["features"]
    for key in ("observation.images.head", "observation.images.wrist", "goal.images.head", "goal.images.wrist"):
        assert feats[key]["dtype"] == "video" and feats[key]["shape"] == [64, 64, 3]
        assert (lr / info["video_path"].format(video_key=key, chunk_index=0, file_index=0)).exists()
    assert feats["observation.state"]["names"] == store.spec["state_names"]
    data = pq.read_table(lr / "data/chunk-000/file-000.parquet")
    assert data.num_rows == info["total_frames"]
    assert set(data.column_names) == {k for k, f in feats.items() if f["dtype"] != "video"}
    episodes = pq.read_table(lr / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["tasks"] for e in episodes] == [["place_empty_cup"], ["writing"]]
    assert episodes[1]["dataset_from_index"] == episodes[0]["dataset_to_index"] == episodes[0]["length"]
    assert episodes[1]["videos/observation.images.head/from_timestamp"] == pytest.approx(episodes[0]["length"] / 20)
    tasks = pq.read_table(lr / "meta/tasks.parquet").to_pandas()
    assert tasks.loc["writing", "task_index"] == 1
    stats = json.loads((lr / "meta/stats.json").read_text())
    state = np.concatenate([e.lowdim()[0] for e in store])
    np.testing.assert_allclose(stats["observation.state"]["mean"], state.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["observation.state"]["max"], state.max(0), rtol=1e-6)
    assert np.asarray(stats["observation.images.head"]["mean"]).shape == (3, 1, 1)
    assert 0 < np.min(stats["observation.images.head"]["mean"]) < 1
    done = data.column("next.done").to_pylist()
    assert sum(done) == 2 and done[episodes[0]["length"] - 1]


def test_round_trip_keeps_states_actions_exactly(exported):
    back = exported / "back"
    assert import_lerobot(exported / "lr", back) == 2
    a, b = EpisodeStore(exported / "data", only_success=False), EpisodeStore(back, only_success=False)
    assert b.spec["profile"] == "tabletop" and b.spec["state_names"] == a.spec["state_names"]
    for x, y in zip(a, b):
        assert y.path.name == x.path.name
        assert {k: y.meta[k] for k in ("task", "mode", "seed", "length", "success", "success_step", "info")} == \
               {k: x.meta[k] for k in ("task", "mode", "seed", "length", "success", "success_step", "info")}
        for u, w in zip(x.lowdim(), y.lowdim()):
            np.testing.assert_array_equal(u, w)
        for v in a.views:
            err = np.abs(np.asarray(x.frames(v), np.int16) - np.asarray(y.frames(v), np.int16))
            assert err.mean() < 6, f"{v}: mean error {err.mean():.2f}/255 after H.264"
            np.testing.assert_array_equal(y.goal()[v], y.frames(v)[-1])
    assert not EpisodeStore(back).episodes[0].path.name.startswith("writing")     # the failure stays a failure
    steps = TrainConfig(steps=2, batch_size=2, warmup=1, log_every=1, ckpt_every=2)   # and the import trains
    train_vae(back, exported / "vae", steps, vae_config=VAEConfig(
        resolution=64, block_out_channels=(8, 16, 16, 16), norm_num_groups=8, latent_channels=4))
    logs = train_policy(back, exported / "s1", steps, stage=1, preset=POLICY, vae_dir=exported / "vae" / "vae")
    assert logs["step"] == 2 and np.isfinite(logs["loss"])


def test_malformed_input_names_the_file_and_field(exported, tmp_path):
    with pytest.raises(LeRobotFormatError, match=r"meta/info\.json is missing"):
        import_lerobot(tmp_path / "nothing", tmp_path / "out")
    bad = tmp_path / "bad"
    shutil.copytree(exported / "lr", bad)
    info = json.loads((bad / "meta/info.json").read_text())
    (bad / "meta/info.json").write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    with pytest.raises(LeRobotFormatError, match="codebase_version is v2.1"):
        import_lerobot(bad, tmp_path / "out")
    (bad / "meta/info.json").write_text(json.dumps(info))
    with pytest.raises(LeRobotFormatError, match="'observation.state.joints' is not among"):
        import_lerobot(bad, tmp_path / "out", mapping={"views": {"head": "observation.images.head"},
                                                       "state": ["observation.state.joints"], "action": ["action"]})
    ep_path = bad / "meta/episodes/chunk-000/file-000.parquet"
    rows = pq.read_table(ep_path).to_pylist()
    rows[0]["length"] += 1
    pq.write_table(pa.Table.from_pylist(rows), ep_path)
    with pytest.raises(LeRobotFormatError, match=r"file-000\.parquet: episode 0 has \d+ rows but .* length is"):
        import_lerobot(bad, tmp_path / "out")
    rows[0]["length"] -= 1
    pq.write_table(pa.Table.from_pylist([{k: v for k, v in r.items() if k != "dataset_from_index"} for r in rows]),
                   ep_path)
    with pytest.raises(LeRobotFormatError, match="has no column 'dataset_from_index'"):
        import_lerobot(bad, tmp_path / "out")
    with pytest.raises(ValueError, match="unknown field"):
        Mapping.load({"views": {}, "state": [], "action": [], "cameras": {}})
    with pytest.raises(ValueError, match="not empty"):
        export_lerobot(exported / "data", exported / "lr")


def _agibot_like(root, episodes=2, frames=12):
    """A v3.0 dataset written the way AgiBot World's community conversion lays it out (not by us):
    three 96×128 cameras, 14 joints + 2 grippers in separate features, an episode per data file."""
    import imageio.v2 as imageio
    rng = np.random.default_rng(0)
    cams = ("top_head", "hand_left", "hand_right")
    feats = {f"observation.images.{c}": {"dtype": "video", "shape": [96, 128, 3], "names": ["height", "width", "rgb"]}
             for c in cams}
    for key, dim in (("observation.states.joint.position", 14), ("observation.states.effector.position", 2),
                     ("actions.joint.position", 14), ("actions.effector.position", 2)):
        feats[key] = {"dtype": "float32", "shape": [dim], "names": None}
    info = {"codebase_version": "v3.0", "fps": 30, "robot_type": "a2d", "features": feats,
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"}
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    (root / "meta/info.json").write_text(json.dumps(info))
    eps = []
    for e in range(episodes):
        cols = {k: rng.normal(size=(frames, f["shape"][0])).astype(np.float32).tolist()
                for k, f in feats.items() if f["dtype"] == "float32"}
        cols |= {"episode_index": [e] * frames, "frame_index": list(range(frames))}
        (root / "data/chunk-000").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(cols), root / f"data/chunk-000/file-{e:03d}.parquet")
        row = {"episode_index": e, "tasks": ["pick the cup"], "length": frames, "data/chunk_index": 0,
               "data/file_index": e, "dataset_from_index": e * frames}
        for c in cams:
            key = f"observation.images.{c}"
            path = root / f"videos/{key}/chunk-000/file-{e:03d}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            with imageio.get_writer(path, fps=30, codec="libx264", macro_block_size=1, pixelformat="yuv420p",
                                    ffmpeg_log_level="error") as w:
                for t in range(frames):
                    w.append_data(np.full((96, 128, 3), 20 * t, np.uint8))
            row |= {f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": e, f"videos/{key}/from_timestamp": 0.0}
        eps.append(row)
    pq.write_table(pa.Table.from_pylist(eps), root / "meta/episodes/chunk-000/file-000.parquet")
    return cols


def test_agibot_world_layout_imports_and_trains(tmp_path):
    last = _agibot_like(tmp_path / "agibot")
    assert import_lerobot(tmp_path / "agibot", tmp_path / "ours", mapping="agibot-world") == 2
    store = EpisodeStore(tmp_path / "ours")
    assert store.spec["profile"] == "genie01" and store.views == ["top_head", "hand_left", "hand_right"]
    ep = store[1]
    state, action = ep.lowdim()
    assert state.shape == (12, 16) and action.shape == (11, 16) and ep.length == 11
    np.testing.assert_array_equal(state[:, :14], np.asarray(last["observation.states.joint.position"], np.float32))
    np.testing.assert_array_equal(action[:, 14:], np.asarray(last["actions.effector.position"], np.float32)[:-1])
    frames = ep.frames("hand_left")
    assert frames.shape == (12, 64, 64, 3)
    assert abs(int(frames[5].mean()) - 100) <= 4                   # frame t is grey 20·t: order and timing kept
    np.testing.assert_array_equal(ep.goal()["top_head"], ep.frames("top_head")[-1])

    steps = TrainConfig(steps=2, batch_size=2, warmup=1, log_every=1, ckpt_every=2)
    train_vae(tmp_path / "ours", tmp_path / "vae", steps, vae_config=VAEConfig(
        resolution=64, block_out_channels=(8, 16, 16, 16), norm_num_groups=8, latent_channels=4))
    logs = train_policy(tmp_path / "ours", tmp_path / "s1", steps, stage=1, preset=POLICY,
                        vae_dir=tmp_path / "vae" / "vae")
    assert logs["step"] == 2 and np.isfinite(logs["loss"])
    cfg = Act2GoalPolicy.from_pretrained(tmp_path / "s1" / "final").config
    assert cfg.profile == "genie01" and cfg.state_dim == 16 and len(cfg.views) == 3
