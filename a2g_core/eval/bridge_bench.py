"""Bridge benchmark: what the WebSocket bridge adds on top of the model, on loopback.

- genie01: three 480×640 RGB images + 16 joints per request through the official openpi client;
  overhead = median round trip − median in-process time of the same work (resize + chunk).
- tabletop: requests per second, one client and two concurrent clients.
Weights are random (speed does not depend on them); medians of ``repeats`` requests.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import torch

from a2g_core.eval.model_bench import _interleaved_medians_ms, _median_ms, _policy


def _server_for(preset: str, goal_fn, **kw):
    """A server on a random-weight ``preset`` policy (``kw`` overrides its config) and a goal from ``goal_fn(cfg)``."""
    from a2g_core.robot.server import PolicyServer
    policy = _policy(preset, **kw)
    return PolicyServer(policy, goal=goal_fn(policy.config), port=0, armed=True).start(), policy


def run_bridge_bench(repeats: int = 30, log=print) -> dict:
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    from a2g_core.models.act2goal.configuration_act2goal import GENIE01
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    report = {"threads": torch.get_num_threads(), "repeats": repeats}

    # genie01: big frames, the official client
    big = lambda: rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    server, _ = _server_for("tiny", lambda cfg: {v: big() for v in cfg.views}, **GENIE01)
    try:
        obs = {k: big() for k in server.profile.cameras}
        obs["observation.state"] = np.zeros(16, np.float32)
        client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
        round_trip, in_process = _interleaved_medians_ms([lambda: client.infer(obs), lambda: server.infer(-1, obs)],
                                                         repeats)
        report["genie01"] = {"round_trip_ms": round_trip, "in_process_ms": in_process,
                             "overhead_ms": round_trip - in_process,
                             "request_bytes": sum(v.nbytes for v in obs.values())}
        log(f"genie01 (3 × 480×640): round trip {round_trip:.1f} ms, in-process {in_process:.1f} ms, "
            f"bridge overhead {round_trip - in_process:.1f} ms")
    finally:
        server.close()

    # tabletop: requests per second
    small = lambda: rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    server, _ = _server_for("tiny", lambda cfg: {v: small() for v in cfg.views})
    try:
        obs = {k: small() for k in server.profile.cameras}
        obs["observation.state"] = np.zeros(5, np.float32)
        rates = {}
        for n_clients in (1, 2):
            clients = [WebsocketClientPolicy(host="127.0.0.1", port=server.port) for _ in range(n_clients)]
            for c in clients:
                c.infer(obs)
            per = max(10, repeats)

            def work(c):
                for _ in range(per):
                    c.infer(obs)
            t = time.perf_counter()
            threads = [threading.Thread(target=work, args=(c,)) for c in clients]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            rates[n_clients] = n_clients * per / (time.perf_counter() - t)
        report["tabletop"] = {"requests_per_s_1_client": rates[1], "requests_per_s_2_clients": rates[2],
                              "in_process_ms": _median_ms(lambda: server.infer(-1, obs), repeats)}
        log(f"tabletop (2 × 64×64): {rates[1]:.1f} requests/s with one client, {rates[2]:.1f} with two "
            f"(in-process chunk {report['tabletop']['in_process_ms']:.1f} ms)")
    finally:
        server.close()
    return report


def bridge_success(policy_dir, *, task: str, mode: str, episodes: int, seed_start: int = 10_000,
                   progress=None) -> dict:
    """The same seeds twice: the simulator robot driven through the bridge (server + runner on
    loopback), and in-process evaluation. Success should agree within noise."""
    from a2g_core.eval.policy_eval import evaluate
    from a2g_core.eval.sim_bench import wilson
    from a2g_core.models.act2goal import Act2GoalPolicy
    from a2g_core.robot.robot import SimRobot
    from a2g_core.robot.runner import run_robot
    from a2g_core.robot.server import PolicyServer
    policy = Act2GoalPolicy.from_pretrained(policy_dir)
    server = PolicyServer(policy, policy_id=str(policy_dir), port=0, armed=True).start()
    wins = 0
    try:
        for i, seed in enumerate(range(seed_start, seed_start + episodes)):
            robot = SimRobot(task, mode, seed, policy.config.resolution)
            server._pool.submit(server.set_goal, robot.goal(policy.config.goal_frame)).result()
            with robot:
                out = run_robot(robot, f"ws://127.0.0.1:{server.port}", realtime=False, max_steps=10_000,
                                log=lambda m: None)
            wins += out["success"]
            if progress:
                progress(i + 1, episodes)
    finally:
        server.close()
    direct = evaluate(policy_dir, task=task, mode=mode, episodes=episodes, seed_start=seed_start)
    return {"task": task, "mode": mode, "episodes": episodes,
            "bridge": {"success": wins / episodes, "ci95": list(wilson(wins, episodes))},
            "in_process": {"success": direct["success"], "ci95": direct["ci95"]}}
