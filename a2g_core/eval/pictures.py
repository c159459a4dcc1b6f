"""Pictures for the README and the lab: a strip of head/wrist frames along expert runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def _save(img: np.ndarray, out: str | Path) -> Path:
    """Write an (H, W, 3) uint8 picture as PNG, making its folder."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(out)
    return out


def _psnr(sq_errors: dict[str, list[float]]) -> dict[str, float]:
    """PSNR (dB, 8-bit frames) per name from its mean squared errors."""
    return {name: float(10 * np.log10(255.0 ** 2 / np.mean(e))) for name, e in sq_errors.items()}


def scale_up(img: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling of an (H, W, ...) picture by a whole factor, so small frames stay crisp."""
    return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


def sim_strip(out: str | Path, *, mode: str = "easy", seed: int = 0, resolution: int = 96, frames: int = 4) -> Path:
    """One row per task: ``frames`` head|wrist pairs along the expert run, the last being the goal."""
    from a2g_core.sim import TASKS, make_env
    from a2g_core.sim.rollout import run_expert
    label_w, gap = 130, 4
    rows = []
    for task in TASKS:
        env = make_env(task, mode, resolution)
        ep = run_expert(env, seed)
        env.close()
        idx = np.linspace(0, len(ep), frames).astype(int)
        tiles = [np.concatenate([ep.frames["head"][i], ep.frames["wrist"][i]], axis=1) for i in idx]
        sep = np.full((resolution, gap, 3), 255, np.uint8)
        row = np.concatenate(sum(([t, sep] for t in tiles), [])[:-1], axis=1)
        label = Image.new("RGB", (label_w, resolution), "white")
        d = ImageDraw.Draw(label)
        d.text((6, resolution // 2 - 14), task, fill="black")
        d.text((6, resolution // 2 + 2), f"{mode}, seed {seed}" + ("" if ep.success else " (FAIL)"), fill="gray")
        rows.append(np.concatenate([np.asarray(label), row], axis=1))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    return _save(np.concatenate(rows[:-1], axis=0), out)


def plot_losses(logs: dict[str, str | Path], out: str | Path, width: int = 900, height: int = 300) -> Path:
    """Loss curves from ``log.jsonl`` files, one panel per run (a smoothed line per loss key)."""
    import json
    colors = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]
    panels = []
    for title, path in logs.items():
        rows = [json.loads(s) for s in Path(path).read_text().splitlines() if s.strip()]
        keys = [k for k in rows[0] if k.startswith("loss")]
        img = Image.new("RGB", (width, height), "white")
        d = ImageDraw.Draw(img)
        x0, y0, x1, y1 = 60, 30, width - 20, height - 30
        steps = np.array([r["step"] for r in rows], float)
        series = {k: np.array([r[k] for r in rows], float) for k in keys}
        hi = max(float(np.nanmax(v)) for v in series.values()) * 1.05
        d.rectangle([x0, y0, x1, y1], outline="black")
        d.text((x0, 8), f"{title}: loss vs step (last {rows[-1]['step']})", fill="black")
        for frac in (0, 0.5, 1):
            y = y1 - frac * (y1 - y0)
            d.text((6, y - 6), f"{frac * hi:.2f}", fill="gray")
        d.text((x1 - 40, y1 + 8), f"{int(steps[-1])}", fill="gray")
        for i, (k, v) in enumerate(series.items()):
            smooth = np.convolve(v, np.ones(5) / 5, mode="valid") if len(v) > 5 else v
            xs = x0 + (steps[len(steps) - len(smooth):] / steps[-1]) * (x1 - x0)
            ys = y1 - smooth / hi * (y1 - y0)
            d.line(list(zip(xs, ys)), fill=colors[i % 4], width=2)
            d.text((x1 - 150, y0 + 6 + 14 * i), k, fill=colors[i % 4])
        panels.append(np.asarray(img))
    return _save(np.concatenate(panels, axis=0), out)


def vae_strip(vae_dirs: dict[str, str | Path], data: str | Path, out: str | Path, *, tasks=None,
              scale: int = 3) -> tuple[Path, dict[str, float]]:
    """Frames of a dataset beside their VAE reconstructions: one row per task (first episode, its
    first, middle and last head frames (the last is the goal the policy reads) and its middle wrist
    frame), one column group per VAE, each run at the dataset's resolution (the VAE is
    convolutional). Returns the picture and each VAE's PSNR (dB) over the frames shown."""
    import torch

    from a2g_core.data.episodes import EpisodeStore
    from a2g_core.models.io import load_network
    from a2g_core.models.vae import VideoVAE
    store = EpisodeStore(data, tasks=tasks, modes=["easy"], per_task=1)
    res = store.resolution
    vaes = {name: load_network(VideoVAE, d).eval().at_resolution(res) for name, d in vae_dirs.items()}
    rows, sq_err = [], {name: [] for name in vaes}
    for ep in store:
        mid = ep.length // 2
        head = ep.frames("head")
        x = torch.from_numpy(np.stack([head[0], head[mid], head[-1], ep.frames("wrist")[mid]]))
        cols = [x.numpy()]
        with torch.no_grad():
            cols += [np.asarray(vae.decode(vae.encode(x))) for vae in vaes.values()]
        for name, rec in zip(vaes, cols[1:]):
            sq_err[name].append(((rec.astype(np.float64) - cols[0]) ** 2).mean())
        rows.append(np.concatenate([np.concatenate(list(c), axis=1) for c in cols], axis=1))
    return _save(scale_up(np.concatenate(rows, axis=0), scale), out), _psnr(sq_err)


def imagine_strip(policies: dict[str, str | Path], data: str | Path, out: str | Path, *, tasks=None, episodes: int = 2,
                  at: float = 0.25, scale: int = 3) -> tuple[Path, dict[str, float]]:
    """What each policy's world model imagines beside what happened. For the first ``episodes`` easy episodes of
    each task in ``data``, from the frame ``at`` of the way in: a row of real head frames (now, then at the MSTH
    frame offsets, past the end the last frame, then the goal the policy reads) and a row per policy of its
    ``imagine`` at those offsets. Returns the picture and each policy's PSNR (dB) of imagined against real
    frames, over every view and offset."""
    import torch

    from a2g_core.data.episodes import EpisodeStore
    from a2g_core.models.act2goal import Act2GoalPolicy
    if episodes < 1 or not 0 <= at < 1:
        raise ValueError(f"Show at least one episode per task, from a point in [0, 1) of it; got {episodes} from {at}.")
    store = EpisodeStore(data, tasks=tasks, modes=["easy"], per_task=episodes)
    if not len(store):
        raise ValueError(f"The dataset {data} has no successful easy episodes" + (f" of {', '.join(tasks)}" if tasks else "") + ".")
    loaded = {name: Act2GoalPolicy.from_pretrained(d).eval() for name, d in policies.items()}
    for name, policy in loaded.items():
        if not policy.config.use_world_model:
            raise ValueError(f"The policy {name} ({policies[name]}) has no world model (DP-GC), so it cannot imagine.")
        if policy.config.resolution != store.resolution:
            raise ValueError(f"The policy {name} takes {policy.config.resolution} px frames but {data} has "
                             f"{store.resolution} px.")
    rows, sq_err = [], {name: [] for name in loaded}
    for ep in store:
        t = int(at * ep.length)
        states, _ = ep.lowdim()
        frames = {v: ep.frames(v) for v in store.views}
        obs = {"images": {v: f[t] for v, f in frames.items()}, "state": states[t]}
        for i, (name, policy) in enumerate(loaded.items()):
            goal = ep.goal(policy.config.goal_frame)
            policy.reset(0)
            with torch.no_grad():
                im = policy.imagine(obs, goal)
            at_offsets = [min(t + int(o), ep.length) for o in im["offsets"]]
            for v in policy.config.views:
                sq_err[name].append(((im["frames"][v].astype(np.float64) - frames[v][at_offsets]) ** 2).mean())
            head = policy.config.views[0]
            if i == 0:
                real = np.concatenate([frames[head][t], *frames[head][at_offsets], goal[head]], axis=1)
                rows.append((f"{ep.path.name.rsplit('-', 1)[-1]}: real", real))
            blank = np.full_like(frames[head][t], 255)
            rows.append((f"{name}: imagined", np.concatenate([blank, *im["frames"][head], blank], axis=1)))
    label_w = 150
    tiles = []
    for text, row in rows:
        row = scale_up(row, scale)
        label = Image.new("RGB", (label_w, row.shape[0]), "white")
        ImageDraw.Draw(label).text((6, row.shape[0] // 2 - 6), text, fill="black")
        tiles.append(np.concatenate([np.asarray(label), row], axis=1))
    return _save(np.concatenate(tiles, axis=0), out), _psnr(sq_err)
