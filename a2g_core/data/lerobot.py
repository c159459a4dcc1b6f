"""LeRobot dataset v3.0, both ways: any episode-store folder out (expert data, recorded rollouts,
teleop demos), and a v3.0 dataset made elsewhere in (cameras and state/action layout mapped by a
small config), so the models train on it.

Layout written and read (LeRobot codebase v3.0)::

    meta/info.json                      codebase_version, fps, features, counts, path templates
    meta/stats.json                     min/max/mean/std/count/quantiles per feature (images per channel, in [0, 1])
    meta/tasks.parquet                  index ``task`` (the string), column ``task_index``
    meta/episodes/chunk-000/file-000.parquet   one row per episode: length, tasks, where its rows and
                                        video spans are, plus our own ``a2g/*`` columns
    data/chunk-000/file-NNN.parquet     one row per frame
    videos/<key>/chunk-000/file-NNN.mp4 the frames of many episodes, one after another

How our episodes map onto frames: an episode has T+1 observations and T actions. LeRobot pairs one
action with every frame, so the export writes T+1 frames and gives the last one the last action
again, with ``next.done`` true; the import drops the action of an episode's last frame. States
and actions round-trip exactly; frames within H.264 (visually lossless at crf 12). Every frame of
an episode also carries its goal images as ``goal.images.<view>`` (constant per episode, so the
video costs next to nothing); on import the goal is the episode's final frame, as in the paper.
"""
from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from a2g_core.data.episodes import EpisodeStore, discard_partial, init_dataset, square_resize, write_episode

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_PER_FILE = 200                   # data and video files hold this many episodes (chunk-000 until 1000 files)
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
CRF = 12


class LeRobotFormatError(ValueError):
    """A LeRobot dataset that cannot be read; the message names the file and the field."""


# ----------------------------------------------------------------------------------------- export

def _video_feature(h: int, w: int, fps: int) -> dict:
    return {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": h, "video.width": w, "video.codec": "h264", "video.pix_fmt": "yuv420p",
                     "video.is_depth_map": False, "video.fps": fps, "video.channels": 3, "has_audio": False}}


def _scalar(dtype: str) -> dict:
    return {"dtype": dtype, "shape": [1], "names": None}


def _stats(x: np.ndarray, axis=0) -> dict:
    x = np.asarray(x, dtype=np.float64)
    out = {"min": x.min(axis), "max": x.max(axis), "mean": x.mean(axis), "std": x.std(axis)}
    out.update({f"q{round(q * 100):02d}": np.quantile(x, q, axis=axis) for q in QUANTILES})
    return out


def _image_stats(frames: np.ndarray) -> dict:
    """Per-channel statistics of uint8 frames (N, H, W, 3) in [0, 1], shaped (3, 1, 1) as LeRobot keeps them."""
    flat = frames.reshape(-1, 3).astype(np.float32) / 255.0
    return {k: np.asarray(v).reshape(3, 1, 1) for k, v in _stats(flat).items()}


def _jsonable(stats: dict) -> dict:
    return {k: {s: np.asarray(v).tolist() for s, v in d.items()} for k, d in stats.items()}


class _VideoFile:
    """One mp4 that many episodes' frames are appended to (H.264, every other frame a keyframe so
    readers seek fast, as LeRobot's own writer does)."""

    def __init__(self, path: Path, fps: int):
        import imageio.v2 as imageio
        path.parent.mkdir(parents=True, exist_ok=True)
        self.frames = 0
        self._w = imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1, pixelformat="yuv420p",
                                     output_params=["-crf", str(CRF), "-g", "2", "-bf", "0"], ffmpeg_log_level="error")

    def append(self, frames: np.ndarray) -> None:
        for f in frames:
            self._w.append_data(np.ascontiguousarray(f))
        self.frames += len(frames)

    def close(self) -> None:
        self._w.close()


def export_lerobot(src: str | Path, out: str | Path, *, include_failed: bool = True, progress=None) -> dict:
    """Write the episode-store folder ``src`` as a LeRobot v3.0 dataset in ``out`` (which must not
    exist or be empty); return its ``info.json``. ``progress(done, total)`` after each episode."""
    store = EpisodeStore(src, only_success=not include_failed)
    if not len(store):
        raise ValueError(f"{src} holds no complete episodes to export.")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty; export into a new folder.")
    spec, fps, views = store.spec, int(store.spec["fps"]), store.views
    res = store.resolution
    keys = {v: f"observation.images.{v}" for v in views} | {f"goal:{v}": f"goal.images.{v}" for v in views}
    tasks = sorted({e.meta["task"] for e in store})
    task_index = {t: i for i, t in enumerate(tasks)}

    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    episodes, columns, video = [], None, {}
    image_sums = {k: [] for k in keys.values()}
    lowdim = {"observation.state": [], "action": []}
    index = 0
    for n, ep in enumerate(store):
        file_index = n // EPISODES_PER_FILE
        if n % EPISODES_PER_FILE == 0:                    # a new data file and new video files
            if columns is not None:
                _flush(columns, tmp / DATA_PATH.format(chunk_index=0, file_index=file_index - 1))
            for v in video.values():
                v.close()
            columns = {k: [] for k in ("observation.state", "action", "next.done", "timestamp", "frame_index",
                                       "episode_index", "index", "task_index")}
            video = {k: _VideoFile(tmp / VIDEO_PATH.format(video_key=k, chunk_index=0, file_index=file_index), fps)
                     for k in keys.values()}
        state, action = ep.lowdim()
        length = ep.length + 1
        action = np.concatenate([action, action[-1:]]) if len(action) else np.zeros((1, len(spec["action_names"])),
                                                                                    np.float32)
        row = {"episode_index": n, "tasks": [ep.meta["task"]], "length": length,
               "data/chunk_index": 0, "data/file_index": file_index,
               "dataset_from_index": index, "dataset_to_index": index + length}
        goal = ep.goal()
        for v in views:
            frames = np.asarray(ep.frames(v))
            for key, fr in ((keys[v], frames), (keys[f"goal:{v}"], np.repeat(goal[v][None], length, axis=0))):
                start = video[key].frames / fps
                video[key].append(fr)
                row |= {f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": file_index,
                        f"videos/{key}/from_timestamp": start, f"videos/{key}/to_timestamp": start + length / fps}
                image_sums[key].append(fr[:: max(1, length // 8)])
        row |= {"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                "a2g/name": ep.path.name, "a2g/mode": ep.meta["mode"], "a2g/seed": int(ep.meta["seed"]),
                "a2g/success": bool(ep.meta["success"]), "a2g/success_step": -1 if ep.success_step is None else ep.success_step,
                "a2g/info": json.dumps(ep.meta.get("info", {}))}
        for k, x in (("observation.state", state), ("action", action)):
            row |= {f"stats/{k}/{s}": np.asarray(val).tolist() for s, val in _stats(x).items()}
            row[f"stats/{k}/count"] = [length]
            lowdim[k].append(x)
        episodes.append(row)
        columns["observation.state"].extend(state.astype(np.float32))
        columns["action"].extend(action.astype(np.float32))
        columns["next.done"].extend([False] * (length - 1) + [True])
        columns["timestamp"].extend((np.arange(length) / fps).astype(np.float32))
        columns["frame_index"].extend(range(length))
        columns["episode_index"].extend([n] * length)
        columns["index"].extend(range(index, index + length))
        columns["task_index"].extend([task_index[ep.meta["task"]]] * length)
        index += length
        if progress:
            progress(n + 1, len(store))
    _flush(columns, tmp / DATA_PATH.format(chunk_index=0, file_index=(len(store) - 1) // EPISODES_PER_FILE))
    for v in video.values():
        v.close()

    (tmp / "meta/episodes/chunk-000").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(episodes), tmp / EPISODES_PATH.format(chunk_index=0, file_index=0))
    import pandas as pd
    pd.DataFrame({"task_index": list(task_index.values())},
                 index=pd.Index(list(task_index), name="task")).to_parquet(tmp / "meta/tasks.parquet")

    stats = {k: _stats(np.concatenate(x)) | {"count": [index]} for k, x in lowdim.items()}
    stats |= {k: _image_stats(np.concatenate(x)) | {"count": [index]} for k, x in image_sums.items()}
    ep_idx = np.concatenate([[i] * e["length"] for i, e in enumerate(episodes)])
    frame_idx = np.concatenate([np.arange(e["length"]) for e in episodes])
    stats |= {"episode_index": _stats(ep_idx[:, None]), "frame_index": _stats(frame_idx[:, None]),
              "timestamp": _stats(frame_idx[:, None] / fps), "index": _stats(np.arange(index)[:, None]),
              "task_index": _stats(np.concatenate([[task_index[e["tasks"][0]]] * e["length"]
                                                   for e in episodes])[:, None])}
    for k in ("episode_index", "frame_index", "timestamp", "index", "task_index"):
        stats[k]["count"] = [index]
    (tmp / "meta/stats.json").write_text(json.dumps(_jsonable(stats), indent=1))

    features = {k: _video_feature(res, res, fps) for k in keys.values()}
    features |= {"observation.state": {"dtype": "float32", "shape": [len(spec["state_names"])],
                                       "names": list(spec["state_names"])},
                 "action": {"dtype": "float32", "shape": [len(spec["action_names"])], "names": list(spec["action_names"])},
                 "next.done": _scalar("bool"), "timestamp": _scalar("float32"), "frame_index": _scalar("int64"),
                 "episode_index": _scalar("int64"), "index": _scalar("int64"), "task_index": _scalar("int64")}
    info = {"codebase_version": CODEBASE_VERSION, "robot_type": f"a2g_{spec.get('profile', 'tabletop')}",
            "total_episodes": len(store), "total_frames": index, "total_tasks": len(tasks), "chunks_size": 1000,
            "data_files_size_in_mb": 100, "video_files_size_in_mb": 200, "fps": fps,
            "splits": {"train": f"0:{len(store)}"}, "data_path": DATA_PATH, "video_path": VIDEO_PATH,
            "features": features}
    (tmp / "meta/info.json").write_text(json.dumps(info, indent=4))
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return info


def _flush(columns: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: pa.array([np.asarray(x).tolist() for x in v], type=pa.list_(pa.float32()))
              if k in ("observation.state", "action") else pa.array(v) for k, v in columns.items()}
    arrays["timestamp"] = pa.array(columns["timestamp"], type=pa.float32())
    pq.write_table(pa.table(arrays), path)


# ----------------------------------------------------------------------------------------- import

@dataclass
class Mapping:
    """How a LeRobot dataset's features become our episode layout.
    ``views``: our view name -> LeRobot video key. ``state``/``action``: feature keys concatenated in
    order, each optionally sliced as ``key[a:b]``. ``profile``: the embodiment (robot.profiles)."""
    views: dict
    state: list
    action: list
    profile: str = "tabletop"
    mode: str = "lerobot"
    state_names: list = field(default_factory=list)
    action_names: list = field(default_factory=list)

    @classmethod
    def load(cls, value: str | Path | dict, info: dict | None = None) -> "Mapping":
        """A preset name (``a2g``, ``agibot-world``), a JSON file or a dict. ``a2g`` reads our own
        export's layout from ``info`` (every ``observation.images.<view>``, its robot profile)."""
        if isinstance(value, dict):
            d = value
        elif str(value) == "a2g":
            feats = (info or {}).get("features", {})
            robot = str((info or {}).get("robot_type") or "")
            d = {"views": {k.rsplit(".", 1)[-1]: k for k, f in feats.items()
                           if k.startswith("observation.images.") and f.get("dtype") == "video"},
                 "state": ["observation.state"], "action": ["action"],
                 "profile": robot[4:] if robot.startswith("a2g_") else "tabletop"}
        elif str(value) in MAPPINGS:
            d = MAPPINGS[str(value)]
        else:
            path = Path(value)
            if not path.exists():
                raise ValueError(f"--mapping {value!r} is neither a preset (a2g, {', '.join(MAPPINGS)}) nor a JSON file.")
            try:
                d = json.loads(path.read_text())
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} is not valid JSON ({e.msg}, line {e.lineno}).") from None
        unknown = set(d) - set(cls.__dataclass_fields__)
        missing = {"views", "state", "action"} - set(d)
        if unknown or missing:
            raise ValueError(f"A mapping needs views, state and action" + (f"; unknown field(s): {sorted(unknown)}"
                             if unknown else f"; missing: {sorted(missing)}") + ".")
        return cls(**d)


MAPPINGS = {
    # AgiBot World (community LeRobot conversions): three cameras, 14 arm joints + 2 grippers.
    "agibot-world": {"views": {"top_head": "observation.images.top_head", "hand_left": "observation.images.hand_left",
                               "hand_right": "observation.images.hand_right"},
                     "state": ["observation.states.joint.position", "observation.states.effector.position"],
                     "action": ["actions.joint.position", "actions.effector.position"],
                     "profile": "genie01", "mode": "agibot"},
}

_SLICE = re.compile(r"^(?P<key>[^\[]+)(\[(?P<a>\d*):(?P<b>\d*)\])?$")


def _read_json(path: Path, what: str) -> dict:
    if not path.exists():
        raise LeRobotFormatError(f"{path} is missing; a LeRobot v3.0 dataset needs its {what}.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise LeRobotFormatError(f"{path} is not valid JSON ({e.msg}, line {e.lineno}).") from None


def _read_parquet(path: Path):
    if not path.exists():
        raise LeRobotFormatError(f"{path} is missing.")
    try:
        return pq.read_table(path)
    except Exception as e:
        raise LeRobotFormatError(f"{path} is not a readable parquet file ({type(e).__name__}).") from None


def _column(table, name: str, path: Path) -> list:
    if name not in table.column_names:
        raise LeRobotFormatError(f"{path} has no column {name!r}.")
    return table.column(name).to_pylist()


def _decode(path: Path, start: float, count: int, fps: int) -> np.ndarray:
    """``count`` frames of ``path`` from time ``start`` (s), as (count, H, W, 3) uint8."""
    import imageio_ffmpeg
    if not path.exists():
        raise LeRobotFormatError(f"{path} is missing.")
    gen = imageio_ffmpeg.read_frames(str(path), input_params=["-ss", f"{start:.6f}"],
                                     output_params=["-frames:v", str(count)])
    meta = next(gen)
    w, h = meta["size"]
    frames = [np.frombuffer(b, np.uint8).reshape(h, w, 3) for b in gen]
    if len(frames) != count:
        raise LeRobotFormatError(f"{path} holds {len(frames)} frames from {start:.3f} s where the episode "
                                 f"needs {count}.")
    return np.stack(frames)


def import_lerobot(src: str | Path, out: str | Path, *, mapping: Mapping | str = "a2g", resolution: int = 64,
                   progress=None) -> int:
    """Read the LeRobot v3.0 dataset ``src`` into the episode-store folder ``out``; return how many
    episodes were written. Frames are centre-cropped and resized to ``resolution``."""
    from PIL import Image
    from a2g_core.sim.rollout import Episode
    src, out = Path(src), Path(out)
    info_path = src / "meta/info.json"
    info = _read_json(info_path, "description (codebase_version, fps, features)")
    m = mapping if isinstance(mapping, Mapping) else Mapping.load(mapping, info)
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3."):
        raise LeRobotFormatError(f"{info_path}: codebase_version is {version or 'missing'}; this reads v3.x "
                                 f"(convert older datasets with LeRobot's convert_dataset_v21_to_v30).")
    for k in ("fps", "features"):
        if k not in info:
            raise LeRobotFormatError(f"{info_path} has no {k!r}.")
    features, fps = info["features"], int(info["fps"])
    data_tpl, video_tpl = info.get("data_path", DATA_PATH), info.get("video_path", VIDEO_PATH)

    def parts(specs: list, what: str) -> list[tuple[str, slice]]:
        out_ = []
        for s in specs:
            g = _SLICE.match(s)
            key = g["key"] if g else s
            if key not in features:
                raise LeRobotFormatError(f"{info_path}: the mapping's {what} feature {key!r} is not among the "
                                         f"dataset's features ({', '.join(sorted(features))}).")
            out_.append((key, slice(int(g["a"]) if g and g["a"] else None, int(g["b"]) if g and g["b"] else None)))
        return out_

    state_parts, action_parts = parts(m.state, "state"), parts(m.action, "action")
    for view, key in m.views.items():
        if key not in features:
            raise LeRobotFormatError(f"{info_path}: the mapping's camera {key!r} (view {view!r}) is not among the "
                                     f"dataset's features ({', '.join(sorted(features))}).")
        if features[key].get("dtype") != "video":
            raise LeRobotFormatError(f"{info_path}: feature {key!r} is {features[key].get('dtype')!r}; cameras are "
                                     f"read from video features.")

    def names(part_list):
        out_ = []
        for key, sl in part_list:
            n = features[key].get("names")
            n = n.get("motors", next(iter(n.values()))) if isinstance(n, dict) else n
            dim = int(np.prod(features[key]["shape"]))
            n = list(n) if n and len(n) == dim else [f"{key}_{i}" for i in range(dim)]
            out_.extend(n[sl])
        return out_

    state_names, action_names = m.state_names or names(state_parts), m.action_names or names(action_parts)
    ep_dir = src / "meta/episodes"
    ep_files = sorted(ep_dir.glob("chunk-*/file-*.parquet"))
    if not ep_files:
        raise LeRobotFormatError(f"{ep_dir} holds no chunk-XXX/file-XXX.parquet; the dataset has no episode index.")
    episodes = pa.concat_tables([_read_parquet(f) for f in ep_files]).to_pylist()
    for col in ("episode_index", "length", "data/chunk_index", "data/file_index", "dataset_from_index"):
        if episodes and col not in episodes[0]:
            raise LeRobotFormatError(f"{ep_files[0]} has no column {col!r}.")

    init_dataset(out, views=tuple(m.views), resolution=resolution, fps=fps, state_names=state_names,
                 action_names=action_names, profile=m.profile)
    discard_partial(out)
    tables: dict[Path, dict] = {}
    written = 0
    for n, e in enumerate(episodes):
        path = src / data_tpl.format(chunk_index=e["data/chunk_index"], file_index=e["data/file_index"])
        if path not in tables:
            t = _read_parquet(path)
            tables.clear()
            tables[path] = {"table": t, "episode_index": np.asarray(_column(t, "episode_index", path))}
        t = tables[path]
        rows = np.flatnonzero(t["episode_index"] == e["episode_index"])
        length = int(e["length"])
        if len(rows) != length:
            raise LeRobotFormatError(f"{path}: episode {e['episode_index']} has {len(rows)} rows but "
                                     f"{ep_files[0].name} says its length is {length}.")

        def vector(part_list):
            cols = []
            for key, sl in part_list:
                col = np.asarray(t["table"].column(key).take(rows).to_pylist(), dtype=np.float32)
                cols.append(col.reshape(length, -1)[:, sl])
            return np.concatenate(cols, axis=1)

        state, action = vector(state_parts), vector(action_parts)
        frames = {}
        for view, key in m.views.items():
            vpath = src / video_tpl.format(video_key=key, chunk_index=e.get(f"videos/{key}/chunk_index", 0),
                                           file_index=e.get(f"videos/{key}/file_index", 0))
            raw = _decode(vpath, float(e.get(f"videos/{key}/from_timestamp", 0.0)), length, fps)
            frames[view] = raw if raw.shape[1:3] == (resolution, resolution) else np.stack(
                [square_resize(Image.fromarray(f), resolution) for f in raw])
        task = (e.get("tasks") or ["lerobot"])[0]
        ep = Episode(task, e.get("a2g/mode", m.mode), int(e.get("a2g/seed", e["episode_index"])), frames, state,
                     action[:-1], bool(e.get("a2g/success", True)),
                     json.loads(e["a2g/info"]) if e.get("a2g/info") else {"lerobot_episode": int(e["episode_index"])},
                     success_step=int(e["a2g/success_step"]) if e.get("a2g/success_step", -1) >= 0 else None)
        name = e.get("a2g/name") or f"{_slug(task)}-{m.mode}-{int(e['episode_index']):06d}"
        write_episode(out, ep, name=name)
        written += 1
        if progress:
            progress(n + 1, len(episodes))
    return written


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "episode"
