"""The robot-side loop: observe → request a chunk → execute its actions at the control rate →
repeat, obeying the operator's gate (paused: wait; stopped: end) and a local e-stop.

It executes every action of a chunk (the server's ``action_horizon``); the server records
transitions assuming exactly that, so a client that executes fewer per request would give the
hindsight replay wrong (o, a, o') triples."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from a2g_core.robot.client import PolicyClient, ServerError


def run_robot(robot, uri: str, *, api_key: str | None = None, max_steps: int = 400, realtime: bool = True,
              estop_file: str | Path | None = None, task: str | None = None, wait_s: float = 0.5,
              log: Callable[[str], None] = print) -> dict:
    """Drive ``robot`` (connected by the caller) with the server's chunks. Ends at ``max_steps``,
    when the robot reports ``done`` (the sim: success or its step limit), on a stop from the
    operator, or when ``estop_file`` exists. Returns steps, chunks, why it ended, and success when known."""
    period = 1.0 / robot.profile.fps
    steps = chunks = 0
    why = "step limit"
    with PolicyClient(uri, api_key=api_key) as client:
        if client.metadata.get("profile") != robot.profile.name:
            raise ValueError(f"The server serves the {client.metadata.get('profile')!r} profile but this robot is "
                             f"{robot.profile.name!r}.")
        while steps < max_steps:
            if estop_file and Path(estop_file).exists():
                why = "local e-stop"
                break
            obs = robot.get_observation()
            if task:
                obs["task"] = task
            try:
                reply = client.infer(obs)
            except ServerError as e:
                msg = str(e)
                if "paused" in msg:
                    time.sleep(wait_s)
                    continue
                if "stopped" in msg:
                    why = "stopped by the operator"
                    break
                raise
            chunks += 1
            for a in reply["actions"]:
                t = time.perf_counter()
                robot.send_action(a)
                steps += 1
                if getattr(robot, "done", False) or steps >= max_steps or (estop_file and Path(estop_file).exists()):
                    break
                if realtime:
                    time.sleep(max(0.0, period - (time.perf_counter() - t)))
            if getattr(robot, "done", False):
                why = "done"
                break
    out = {"steps": steps, "chunks": chunks, "ended": why}
    if hasattr(robot, "success"):
        out["success"] = bool(robot.success)
    log(f"robot run ended ({why}) after {steps} steps, {chunks} chunks" +
        (f", success {out['success']}" if "success" in out else ""))
    return out
