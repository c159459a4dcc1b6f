"""Pictures for the README and the lab: a strip of head/wrist frames along expert runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


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
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows[:-1], axis=0)).save(out)
    return out
