"""Start the Act2Goal Lab in the browser: ``python app.py`` (http://127.0.0.1:7860)."""
from __future__ import annotations

import argparse
import os
import sys

from a2g_core import DEFAULT_POLICY


def _auth_from_env() -> tuple[str, str] | None:
    """``A2G_LAB_AUTH=user:password``, or ``A2G_LAB_AUTH_FILE`` naming a file holding that line."""
    raw = os.environ.get("A2G_LAB_AUTH")
    if not raw and os.environ.get("A2G_LAB_AUTH_FILE"):
        with open(os.environ["A2G_LAB_AUTH_FILE"]) as f:
            raw = f.read().strip()
    if not raw:
        return None
    user, sep, password = raw.partition(":")
    if not sep or not user or not password:
        raise SystemExit("A2G_LAB_AUTH must look like user:password.")
    return user, password


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Act2Goal Lab in the browser.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=int(os.environ.get("A2G_LAB_PORT", 7860)))
    p.add_argument("--share", action="store_true", help="ask Gradio for a public share link (needs auth)")
    p.add_argument("--policy", default=str(DEFAULT_POLICY),
                   help=f"policy checkpoint (default {DEFAULT_POLICY}, the shipped one that succeeds most)")
    p.add_argument("--root", default="sessions/lab", help="lab data: database, goals, rollouts, adapters")
    args = p.parse_args(argv)
    from a2g_core.robot import is_loopback
    os.environ.setdefault("GRADIO_TEMP_DIR", os.path.abspath(".cache/gradio"))
    auth = _auth_from_env()
    if (args.share or not is_loopback(args.host)) and auth is None:
        sys.exit(f"Refusing to serve on {'a share link' if args.share else args.host} without a password: "
                 "set A2G_LAB_AUTH=user:password (or A2G_LAB_AUTH_FILE) first, since this lab moves robots.")
    from app.controller import LabController
    from app.ui import build_app, serve
    ctrl = LabController(args.policy, args.root)
    demo = build_app(ctrl).queue(default_concurrency_limit=4)
    serve(demo, args.host, args.port, share=args.share, auth=auth, show_error=False)
    demo.block_thread()


if __name__ == "__main__":
    main()
