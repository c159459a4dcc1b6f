"""Screenshots of every tab for the README: launches the lab (shipped checkpoint, a throwaway
database) and walks the whole loop in headless Chromium.

    .venv/bin/python scripts/screenshots.py [--out assets/screenshots] [--policy DIR (default: the lab's)]
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from a2g_core import DEFAULT_POLICY  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="assets/screenshots")
    p.add_argument("--policy", default=str(DEFAULT_POLICY), help=f"default {DEFAULT_POLICY}, the lab's")
    p.add_argument("--seed", type=int, default=10_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GRADIO_TEMP_DIR"] = str(Path(tmp) / "gradio")
        from app.controller import LabController
        from app.tour import run_tour
        from app.ui import build_app, serve
        ctrl = LabController(args.policy, Path(tmp) / "lab")
        demo = build_app(ctrl).queue()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = serve(demo, "127.0.0.1", port, quiet=True)
        try:
            shots = run_tour(url, args.out, seed=args.seed,
                             improve={"buffer (transitions)": 20, "evaluation episodes": 2, "max rollouts per round": 2})
        finally:
            demo.close()
            ctrl.close()
    for s in shots:
        print(f"wrote {s}")


if __name__ == "__main__":
    main()
