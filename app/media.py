"""Browser-playable video of a rollout: real frames beside the imagined ones (H.264 through the
ffmpeg that the imageio-ffmpeg wheel ships; OpenCV's mp4v does not play in browsers)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from a2g_core.eval.pictures import scale_up


def imagined_at(imagined: dict, t: int) -> tuple[np.ndarray | None, int | None]:
    """The imagined frames (all views) whose target step is nearest ``t``, from the latest chunk
    that started at or before ``t``; returns (frames per view, target step)."""
    starts = [s for s in imagined if s <= t]
    if not starts:
        return None, None
    t0 = max(starts)
    im = imagined[t0]
    targets = t0 + np.asarray(im["offsets"])
    i = int(np.argmin(np.abs(targets - t)))
    return {v: f[i] for v, f in im["frames"].items()}, int(targets[i])


def side_by_side(frames: dict, imagined: dict, view: str, out: str | Path, fps: int = 10, scale: int = 4) -> Path:
    """``[real | imagined]`` for every step of one view, written as an H.264 mp4."""
    import imageio.v2 as imageio
    real = frames[view]
    blank = np.zeros_like(real[0])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(out, fps=fps, codec="libx264", quality=7, macro_block_size=16,
                            pixelformat="yuv420p") as w:
        for t, f in enumerate(real):
            im, _ = imagined_at(imagined, t)
            pair = np.concatenate([f, im[view] if im is not None else blank], axis=1)
            w.append_data(scale_up(pair, scale))
    return out
