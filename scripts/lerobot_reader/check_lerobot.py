#!/usr/bin/env python
"""Open a local LeRobot v3.0 dataset with LeRobot's own reader and read a few items.

usage: .venv-lerobot/bin/python scripts/lerobot_reader/check_lerobot.py DATASET_ROOT [--video-backend pyav|torchcodec] [--no-delta]

DATASET_ROOT is the folder that holds meta/, data/ (and videos/). Prints the metadata,
reads item 0, a middle item and the last item and prints every key with shape/dtype,
then (unless --no-delta) reads the same items again with delta_timestamps
[-1/fps, 0, +1/fps] on every non-index feature (the way policies train; this path uses
meta/episodes dataset_from_index/dataset_to_index for padding).
Besides LeRobot's own errors it also fails on things LeRobot accepts silently but gets
wrong (see sanity_checks): episodes parquet rows not ordered by episode_index, tasks
parquet without the task string as its pandas index, index/frame/timestamp mismatches.
Exits 0 on success, 1 (with the traceback) on any failure. Never touches the network:
HF_HUB_OFFLINE=1 is set, outgoing sockets are refused, and LeRobot's silent
"local files incomplete -> download from the Hub" fallbacks are turned into errors
that say what was missing locally.
"""

import argparse
import os
import socket
import sys
import traceback
from pathlib import Path

# --- no network, ever (must happen before huggingface_hub / datasets are imported) ---
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _no_network(*args, **kwargs):
    raise RuntimeError(f"check_lerobot: network access attempted ({args[1:] if len(args) > 1 else args})")


_orig_connect = socket.socket.connect


def _guarded_connect(self, address, *a, **k):
    if self.family == getattr(socket, "AF_UNIX", None):
        return _orig_connect(self, address, *a, **k)
    _no_network(self, address)


socket.socket.connect = _guarded_connect
socket.create_connection = _no_network


class LocalDatasetIncomplete(RuntimeError):
    pass


def _install_hub_fallback_guards():
    """LeRobot falls back to the Hub when local files are missing; make that an explicit error."""
    import lerobot.datasets.dataset_metadata as dm
    import lerobot.datasets.lerobot_dataset as ld

    def meta_fallback(*a, **k):
        raise LocalDatasetIncomplete(
            "LeRobotDatasetMetadata could not load meta/ locally (FileNotFoundError/NotADirectoryError "
            "above: meta/info.json, meta/tasks.parquet or meta/episodes/*/*.parquet) and would now "
            "download from the Hub."
        )

    def data_fallback(self, *a, **k):
        meta, root = self.meta, Path(self.root)
        details = []
        pq = sorted((root / "data").glob("*/*.parquet"))
        if not pq:
            details.append(f"no parquet files matching {root / 'data'}/*/*.parquet")
        else:
            try:
                import pyarrow.parquet as pqm

                eps = set()
                for p in pq:
                    eps.update(pqm.read_table(p, columns=["episode_index"]).column(0).to_pylist())
                missing = sorted(set(range(meta.total_episodes)) - eps)
                if missing:
                    details.append(f"episode_index values missing from data/ parquet: {missing[:20]}")
            except Exception as e:  # noqa: BLE001
                details.append(f"could not read data/ parquet episode_index: {e!r}")
        for ep in range(meta.total_episodes):
            for vk in meta.video_keys:
                vp = root / meta.get_video_file_path(ep, vk)
                if not vp.exists():
                    details.append(f"episode {ep} video {vk}: missing {vp}")
        raise LocalDatasetIncomplete(
            "DatasetReader.try_load() found the local data insufficient and LeRobot would now download "
            "from the Hub. " + ("; ".join(details) or "(no specific cause found)")
        )

    dm.get_safe_version = meta_fallback
    dm.LeRobotDatasetMetadata._pull_from_repo = lambda self, *a, **k: meta_fallback()
    ld.get_safe_version = lambda *a, **k: None  # data fallback: let _download raise with details
    ld.LeRobotDataset._download = data_fallback


def describe(value):
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        s = f"Tensor shape={tuple(value.shape)} dtype={value.dtype}"
        if value.numel() and value.dtype.is_floating_point:
            s += f" min={value.min().item():.4g} max={value.max().item():.4g}"
        elif value.numel() == 1:
            s += f" value={value.item()}"
        return s
    if isinstance(value, np.ndarray):
        return f"ndarray shape={value.shape} dtype={value.dtype}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} len={len(value)} {value!r:.120}"
    return f"{type(value).__name__} {value!r:.120}"


class SanityError(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise SanityError(msg)


def sanity_checks_meta(m, n_items):
    """Things LeRobot 0.6.1 does not validate but relies on (it indexes by row position)."""
    cols = m.episodes.column_names
    ep_idx = list(m.episodes["episode_index"])
    check(ep_idx == list(range(m.total_episodes)),
          f"meta/episodes rows must be episode_index 0..{m.total_episodes - 1} in order "
          f"(LeRobot looks episodes up by row position); got {ep_idx[:20]}")
    if "length" in cols:
        check(sum(m.episodes["length"]) == m.total_frames,
              f"sum(meta/episodes length)={sum(m.episodes['length'])} != info.total_frames={m.total_frames}")
    check(n_items == m.total_frames, f"len(dataset)={n_items} != info.total_frames={m.total_frames}")
    if m.tasks is not None:
        check(all(isinstance(t, str) for t in m.tasks.index),
              "meta/tasks.parquet: the task string must be the DataFrame index (pandas metadata "
              "index_columns=['task'], i.e. written with df.set_index('task').to_parquet); "
              f"got index {list(m.tasks.index)[:5]!r} -> item['task'] would not be the task text")
        check(list(m.tasks["task_index"]) == list(range(len(m.tasks))),
              "meta/tasks.parquet rows must be task_index 0..n-1 in order (LeRobot uses tasks.iloc[task_index])")
        check(len(m.tasks) == m.total_tasks, f"{len(m.tasks)} tasks != info.total_tasks={m.total_tasks}")
    for vk in m.video_keys:
        for c in (f"videos/{vk}/chunk_index", f"videos/{vk}/file_index",
                  f"videos/{vk}/from_timestamp", f"videos/{vk}/to_timestamp"):
            check(c in cols, f"meta/episodes lacks column {c!r}")
    for c in ("dataset_from_index", "dataset_to_index"):
        check(c in cols, f"meta/episodes lacks column {c!r} (needed for delta_timestamps)")


def sanity_checks_item(m, idx, item):
    fps = m.fps
    check(isinstance(item.get("task"), str), f"item {idx}: 'task' is {item.get('task')!r}, not a str")
    check(int(item["index"]) == idx, f"item {idx}: index field is {int(item['index'])}")
    e = int(item["episode_index"])
    ep = m.episodes[e]
    check(ep["episode_index"] == e, f"item {idx}: meta/episodes row {e} has episode_index {ep['episode_index']}")
    fr, to = ep["dataset_from_index"], ep["dataset_to_index"]
    check(fr <= idx < to, f"item {idx}: not within its episode's [dataset_from_index, dataset_to_index)=[{fr},{to})")
    check(idx - fr == int(item["frame_index"]),
          f"item {idx}: frame_index {int(item['frame_index'])} != index - dataset_from_index = {idx - fr}")
    ts = float(item["timestamp"])
    check(abs(ts - int(item["frame_index"]) / fps) < 1e-3,
          f"item {idx}: timestamp {ts} != frame_index/fps = {int(item['frame_index']) / fps}")
    for vk in m.video_keys:
        f0, f1 = ep[f"videos/{vk}/from_timestamp"], ep[f"videos/{vk}/to_timestamp"]
        check(f0 + ts <= f1 + 1e-4, f"item {idx}: {vk} from_timestamp+timestamp={f0 + ts} > to_timestamp={f1}")
    for k in m.camera_keys:
        v = item[k]
        shp = tuple(m.features[k]["shape"])
        check(v.ndim == 3 and v.shape[0] == 3 and sorted(v.shape) == sorted(shp),
              f"item {idx}: {k} shape {tuple(v.shape)} does not match feature shape {shp} (CHW expected)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--video-backend", default="pyav", help="pyav (default; works here) or torchcodec")
    ap.add_argument("--repo-id", default="local/check", help="any string; only used as a label")
    ap.add_argument("--no-delta", action="store_true", help="skip the delta_timestamps pass")
    args = ap.parse_args()

    root = args.root.resolve()
    if not (root / "meta" / "info.json").is_file():
        raise FileNotFoundError(f"{root}/meta/info.json not found (pass the dataset root folder)")

    import lerobot
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    _install_hub_fallback_guards()

    print(f"lerobot {lerobot.__version__}; dataset root {root}; video_backend={args.video_backend}")
    ds = LeRobotDataset(args.repo_id, root=root, video_backend=args.video_backend)
    m = ds.meta

    print("\n== meta")
    print(f"codebase_version: {m.info.codebase_version}")
    print(f"fps: {m.fps}")
    print(f"robot_type: {m.robot_type}")
    print(f"total_episodes: {m.total_episodes}  total_frames: {m.total_frames}  total_tasks: {m.total_tasks}")
    print(f"len(dataset): {len(ds)}  num_episodes (loaded): {ds.num_episodes}  num_frames: {ds.num_frames}")
    print(f"video_keys: {m.video_keys}  image_keys: {m.image_keys}  camera_keys: {m.camera_keys}")
    print("features:")
    for k, ft in m.features.items():
        extra = {kk: vv for kk, vv in ft.items() if kk not in ("dtype", "shape", "names", "info")}
        print(f"  {k}: dtype={ft['dtype']} shape={tuple(ft['shape'])} names={ft.get('names')}"
              + (f" {extra}" if extra else ""))
    if m.tasks is not None:
        print("tasks:", {str(t): int(r.task_index) for t, r in m.tasks.iterrows()})
    print("episodes columns:", list(m.episodes.column_names))
    print("stats keys:", sorted(m.stats) if m.stats is not None else None)

    sanity_checks_meta(m, len(ds))

    n = len(ds)
    idxs = sorted({0, n // 2, n - 1})
    for idx in idxs:
        item = ds[idx]
        print(f"\n== item {idx}")
        for k, v in item.items():
            print(f"  {k}: {describe(v)}")
        sanity_checks_item(m, idx, item)

    if not args.no_delta:
        skip = {"timestamp", "frame_index", "episode_index", "index", "task_index"}
        dt = [-1 / m.fps, 0.0, 1 / m.fps]
        delta = {k: dt for k, ft in m.features.items() if k not in skip and ft["dtype"] not in ("string",)}
        print(f"\n== delta_timestamps pass: {list(delta)} -> {dt}")
        dsd = LeRobotDataset(args.repo_id, root=root, video_backend=args.video_backend, delta_timestamps=delta)
        for idx in idxs:
            item = dsd[idx]
            print(f"-- item {idx}: " + ", ".join(
                f"{k}{tuple(v.shape)}" + (f"={v.tolist()}" if k.endswith('_is_pad') else "")
                for k, v in item.items() if k in delta or k.endswith("_is_pad")))
            for k in delta:
                check(item[k].shape[0] == len(dt), f"delta item {idx}: {k} has leading dim {item[k].shape[0]}")

    print(f"\nOK: read items {idxs} of {n}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
        print("\nFAILED", file=sys.stderr)
        sys.exit(1)
