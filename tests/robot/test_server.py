"""The bridge end to end on loopback: our server, the official openpi client, the sim robot."""
import json
import time
import urllib.request

import msgpack
import numpy as np
import pytest
import torch
from openpi_client.websocket_client_policy import WebsocketClientPolicy
from websockets.sync.client import connect

from a2g_core.models.act2goal import Act2GoalConfig, Act2GoalPolicy
from a2g_core.models.act2goal.configuration_act2goal import GENIE01
from a2g_core.models.vae import VAEConfig, VideoVAE
from a2g_core.robot import wire
from a2g_core.robot.profiles import get_profile
from a2g_core.robot.robot import SimRobot
from a2g_core.robot.runner import run_robot
from a2g_core.robot.server import PolicyServer
from a2g_core.store import crud, open_db


@pytest.fixture(scope="module")
def sim_goal():
    robot = SimRobot("place_empty_cup", "easy", seed=10_000, resolution=64)
    return robot.goal()


@pytest.fixture
def server(tiny_policy_dir, tmp_path, sim_goal):
    engine = open_db(tmp_path / "lab.db")
    s = PolicyServer(Act2GoalPolicy.from_pretrained(tiny_policy_dir), policy_id="tiny", goal=sim_goal, engine=engine,
                     record_root=tmp_path / "robot", port=0, armed=True, watchdog_s=30).start()
    yield s
    s.close()


def _sim_obs():
    with SimRobot("place_empty_cup", "easy", seed=10_000, resolution=64) as robot:
        return robot.get_observation()


def _get(server, path, key=None, headers=None):
    h = {"Authorization": f"Api-Key {key}"} if key else {"X-A2G-Control": "1"}
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", headers={**h, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_official_client_gets_a_tabletop_chunk(server):
    client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
    meta = client.get_server_metadata()
    assert meta["profile"] == "tabletop" and meta["cameras"] == ["observation.images.head", "observation.images.wrist"]
    obs = _sim_obs()
    out = client.infer(obs)
    prof = get_profile("tabletop")
    assert out["actions"].shape == (meta["action_horizon"], 5) and out["actions"].dtype == np.float32
    assert (out["actions"] >= np.array(prof.low) - 1e-6).all() and (out["actions"] <= np.array(prof.high) + 1e-6).all()
    steps = np.diff(np.concatenate([obs["observation.state"][None], out["actions"]]), axis=0)
    assert (np.abs(steps) <= np.array(prof.max_step) + 1e-5).all()         # the rate limit holds
    assert _get(server, "/healthz") == (200, {"status": "ok", "gate": "armed"})


def test_official_client_gets_a_genie01_chunk(tmp_path):
    torch.manual_seed(0)
    vae = VideoVAE(VAEConfig(resolution=64, block_out_channels=(8, 16, 16, 16), norm_num_groups=8, latent_channels=4))
    cfg = Act2GoalConfig(**GENIE01, latent_channels=4, msth_P=8, msth_r=4, msth_M=2, msth_E=6, wm_dim=32, wm_heads=2,
                         layers=2, expert_dim=16, expert_heads=2, action_steps=2)
    rng = np.random.default_rng(0)
    img = lambda: rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    goal = {v: img() for v in cfg.views}
    s = PolicyServer(Act2GoalPolicy(cfg, vae=vae).eval(), goal=goal, port=0, armed=True).start()
    try:
        client = WebsocketClientPolicy(host="127.0.0.1", port=s.port)
        meta = client.get_server_metadata()
        assert meta["profile"] == "genie01" and len(meta["state_names"]) == 16
        obs = {k: img() for k in meta["cameras"]}
        obs["observation.state"] = np.zeros(16, np.float32)
        out = client.infer(obs)
        assert out["actions"].shape == (6, 16) and np.isfinite(out["actions"]).all()
        del obs["observation.images.hand_right"]
        with pytest.raises(RuntimeError, match="lacks 'observation.images.hand_right'"):
            client.infer(obs)
    finally:
        s.close()


def test_malformed_requests_then_a_valid_one(server):
    obs = _sim_obs()
    bad_array = {b"__ndarray__": True, b"data": b"\x00" * 8, b"dtype": "|O", b"shape": [1]}
    short_array = {b"__ndarray__": True, b"data": b"\x00" * 3, b"dtype": "<f4", b"shape": [5]}
    cases = {
        b"\xc1\xff not msgpack": "not valid msgpack",
        msgpack.packb([1, 2, 3]): "must be a map",
        wire.packb({"observation.state": obs["observation.state"]}): "lacks 'observation.images.head'",
        wire.packb({**obs, "observation.images.head": obs["observation.images.head"][..., 0]}): "HWC RGB",
        wire.packb({**obs, "observation.images.wrist": obs["observation.images.wrist"].astype(np.float32)}): "uint8",
        wire.packb({**obs, "observation.images.head": "a picture"}): "image array",
        wire.packb({**obs, "observation.state": np.zeros(7, np.float32)}): "shape (5,)",
        wire.packb({**obs, "observation.state": np.full(5, np.nan, np.float32)}): "NaN",
        msgpack.packb({"observation.state": bad_array}): "not accepted",
        msgpack.packb({"observation.state": short_array}): "bytes",
    }
    with connect(f"ws://127.0.0.1:{server.port}", max_size=None) as ws:
        wire.unpackb(ws.recv(10))
        for message, expected in cases.items():
            ws.send(message)
            reply = ws.recv(10)
            assert isinstance(reply, str) and expected in reply, (expected, reply)
        ws.send("hello")
        assert "binary" in ws.recv(10)
        ws.send(wire.packb(obs))
        assert wire.unpackb(ws.recv(10))["actions"].shape == (6, 5)


def test_oversized_message_closes_cleanly_and_server_keeps_serving(tiny_policy_dir, sim_goal):
    s = PolicyServer(Act2GoalPolicy.from_pretrained(tiny_policy_dir), goal=sim_goal, port=0, armed=True,
                     max_message=1 << 16).start()
    try:
        with connect(f"ws://127.0.0.1:{s.port}", max_size=None) as ws:
            ws.recv(10)
            ws.send(b"\x00" * (1 << 20))
            with pytest.raises(Exception):
                ws.recv(10)
        client = WebsocketClientPolicy(host="127.0.0.1", port=s.port)      # 64 px frames fit in 64 KiB
        assert client.infer(_sim_obs())["actions"].shape == (6, 5)
    finally:
        s.close()


def test_client_vanishing_mid_request(server):
    ws = connect(f"ws://127.0.0.1:{server.port}", max_size=None)
    ws.recv(10)
    ws.send(wire.packb(_sim_obs()))
    ws.close()                                                   # gone before the reply
    client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
    assert client.infer(_sim_obs())["actions"].shape == (6, 5)


def test_gating_and_recording(server):
    obs = _sim_obs()
    client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
    assert _get(server, "/control/pause")[0] == 200
    with pytest.raises(RuntimeError, match="paused"):
        client.infer(obs)
    _get(server, "/control/step")
    client.infer(obs)                                            # exactly one chunk ...
    with pytest.raises(RuntimeError, match="paused"):            # ... then paused again
        client.infer(obs)
    _get(server, "/control/arm")
    client.infer(obs)
    client.infer(obs)
    _, status = _get(server, "/control/stop")                    # a stop ends the rollout and records it
    with pytest.raises(RuntimeError, match="stopped"):
        client.infer(obs)
    (rid,) = status["rollouts"]
    r = crud.get_rollout(server.engine, rollout_id=rid)
    assert r.target == "robot" and r.steps == 2 * 6 and r.sim_success is None
    assert len(crud.buffer(server.engine)) == 2                  # request → next request: two transitions
    assert _get(server, "/control/launch")[0] == 400


def test_watchdog_ends_an_idle_rollout(server):
    server.watchdog_s = 2.0
    client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
    client.infer(_sim_obs())
    client.infer(_sim_obs())
    deadline = time.time() + 10
    while not server.rollouts and time.time() < deadline:
        time.sleep(0.1)
    (rid,) = server.rollouts
    assert crud.get_rollout(server.engine, rollout_id=rid).steps == 6


def test_api_key(tiny_policy_dir, sim_goal):
    with pytest.raises(ValueError, match="API key"):
        PolicyServer(Act2GoalPolicy.from_pretrained(tiny_policy_dir), host="0.0.0.0", port=0)
    s = PolicyServer(Act2GoalPolicy.from_pretrained(tiny_policy_dir), goal=sim_goal, port=0, api_key="s3cret",
                     armed=True).start()
    try:
        with pytest.raises(Exception):
            WebsocketClientPolicy(host="127.0.0.1", port=s.port)
        assert WebsocketClientPolicy(host="127.0.0.1", port=s.port, api_key="s3cret").infer(_sim_obs())["actions"].size
        assert _get(s, "/status")[0] == 401 and _get(s, "/status", "s3cret")[0] == 200
        assert _get(s, "/status", "wrong")[0] == 401
    finally:
        s.close()


def test_sim_robot_through_the_bridge_feeds_an_improvement_round(server, tiny_policy_dir, tmp_path):
    from a2g_core.train.improve import ImproveConfig, improvement_round
    with SimRobot("place_empty_cup", "easy", seed=10_000, resolution=64, max_steps=30) as robot:
        out = run_robot(robot, f"ws://127.0.0.1:{server.port}", realtime=False, log=lambda m: None)
    assert out["steps"] == 30 and out["ended"] == "done" and out["success"] is False
    deadline = time.time() + 10
    while not server.rollouts and time.time() < deadline:      # the disconnect ends the rollout
        time.sleep(0.1)
    (rid,) = server.rollouts
    assert crud.get_rollout(server.engine, rollout_id=rid).steps == 24   # 5 chunks; the last is unobserved
    r = improvement_round(server.engine, tiny_policy_dir, tmp_path / "run", ImproveConfig(
        task="robot", mode="easy", collect=False, epochs=1, rank=4, eval_episodes=0))
    assert r.status == "done" and r.metrics["transitions"] == 4


def test_web_pages_cannot_reach_the_robot(server):
    """A page the operator opens elsewhere must not arm the robot or talk to it (no key on loopback)."""
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}/control/arm")        # what an <img> sends
    with pytest.raises(urllib.error.HTTPError, match="401"):
        urllib.request.urlopen(req, timeout=10)
    assert _get(server, "/control/pause", headers={"Host": "evil.example:8000"})[0] == 401   # DNS rebinding
    with pytest.raises(Exception):                                                   # browsers send an Origin
        connect(f"ws://127.0.0.1:{server.port}", origin="http://evil.example")
    assert server.gate == "armed"


def test_a_stop_while_computing_sends_nothing(server):
    """The gate is checked again after inference: a chunk computed across a stop never leaves."""
    slow = server.infer

    def infer(conn_id, obs):
        out = slow(conn_id, obs)
        server.set_gate("stopped")                     # the operator presses Stop mid-computation
        return out
    server.infer = infer
    client = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
    with pytest.raises(RuntimeError, match="stopped by the operator while this chunk was computed"):
        client.infer(_sim_obs())
