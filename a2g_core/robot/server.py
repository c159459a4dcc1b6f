"""The policy server: the openpi WebSocket protocol, so AgiBot's Genie Sim client, openpi's
``openpi-client`` and our own runner can all drive the lab's policy.

Protocol: on connect the server sends a metadata map (msgpack-numpy); then every binary message
from the client is an observation map and the reply is ``{"actions": (E, A) float32, ...}``. An
error is a text frame carrying one sentence (``openpi-client`` raises it as ``RuntimeError``); the
connection stays usable. Plain HTTP on the same port: ``GET /healthz`` (open), and, with the API
key when one is set, ``GET /status``, ``GET /control/{arm,pause,step,stop}`` and ``GET /goal?id=N``.

Every served request is recorded: per connection a rollout (frames at the model's resolution,
state, the actions sent, optionally imagined frames) that ends when the client leaves, the
operator stops, the goal changes or the watchdog fires, and is then stored like a sim rollout.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
from PIL import Image

from a2g_core.robot import is_loopback, wire
from a2g_core.robot.profiles import get_profile

GATES = ("armed", "paused", "step", "stopped")
CONTROLS = {"arm": "armed", "pause": "paused", "step": "step", "stop": "stopped"}   # operator's word -> gate
MAX_MESSAGE = 32 * 2**20          # three 480×640 RGB images are 2.8 MB


@dataclass
class _Recording:
    """The requests of one rollout, written out when it ends."""
    frames: dict = field(default_factory=dict)       # view -> list of (r, r, 3)
    states: list = field(default_factory=list)
    chunks: list = field(default_factory=list)
    imagined: list = field(default_factory=list)     # per request: imagine() output or None
    last: float = field(default_factory=time.monotonic)


class PolicyServer:
    def __init__(self, policy, *, policy_id: str = "", adapter_id: str | None = None, goal: dict | None = None,
                 goal_id: int | None = None, engine=None, record_root: str | Path | None = None,
                 host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None, armed: bool = False,
                 watchdog_s: float = 10.0, max_message: int = MAX_MESSAGE, imagine: bool = False):
        if not is_loopback(host) and not api_key:
            raise ValueError(f"Serving on {host} moves a robot from the network: set an API key "
                             f"(--api-key-file or A2G_API_KEY), or bind 127.0.0.1.")
        self.policy, self.profile = policy, get_profile(policy.config.profile)
        self.policy_id, self.adapter_id = policy_id, adapter_id
        self.engine, self.record_root = engine, Path(record_root) if record_root else None
        self.host, self.port, self.api_key = host, port, api_key
        self.gate = "armed" if armed else "paused"
        self._epoch = 0                               # bumped by every operator gate change
        self.watchdog_s, self.max_message, self.imagine = watchdog_s, max_message, imagine
        self.served = 0
        self.last_frames: dict | None = None           # the latest request's views, for the lab's live view
        self.rollouts: list[int] = []                 # ids of the rollouts recorded so far
        self._recs: dict[int, _Recording] = {}        # per connection
        self.goal, self.goal_id = None, None
        if goal is not None:
            self.set_goal(goal, goal_id)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="policy")   # one inference at a time
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ operator controls
    def set_gate(self, gate: str) -> None:
        """The operator's gate. A request accepted before a pause or stop never sends its actions."""
        if gate not in GATES:
            raise ValueError(f"Unknown gate {gate!r}; use one of {', '.join(GATES)}.")
        self.gate = gate
        self._epoch += 1
        if gate == "stopped":
            self._finish_all("stopped by the operator")

    def set_goal(self, goal: dict, goal_id: int | None = None) -> None:
        views = list(self.policy.config.views)
        missing = [v for v in views if v not in goal]
        if missing:
            raise ValueError(f"The goal lacks view(s) {missing}; this policy needs {views}.")
        self._finish_all("goal changed")
        r = self.policy.config.resolution
        self.goal = {v: _resize(np.asarray(goal[v]), r, f"goal view {v!r}") for v in views}
        self.goal_id = goal_id

    def set_goal_id(self, goal_id: int) -> None:
        from a2g_core.data.rollouts import goal_images
        from a2g_core.store import crud
        if self.engine is None:
            raise ValueError("This server has no lab database, so it cannot look goals up by id.")
        self.set_goal(goal_images(crud.get_goal(self.engine, goal_id=goal_id)), goal_id)

    def status(self) -> dict:
        return {"status": "ok", "gate": self.gate, "profile": self.profile.name, "policy": self.policy_id,
                "adapter": self.adapter_id, "goal_id": self.goal_id, "has_goal": self.goal is not None,
                "clients": len(self._recs), "served": self.served, "rollouts": list(self.rollouts)}

    def metadata(self) -> dict:
        p = self.profile
        return {"server": "act2goal-lab", "protocol": "openpi-websocket", "profile": p.name,
                "cameras": list(p.cameras), "image_size": [self.policy.config.resolution] * 2,
                "state_key": p.state_key, "state_names": list(p.state_names), "action_names": list(p.action_names),
                "action_horizon": self.policy.config.msth_E, "fps": p.fps, "control": p.control,
                "policy": self.policy_id, "adapter": self.adapter_id or "", "gate": self.gate}

    # ------------------------------------------------------------------ one request
    def _parse(self, obs) -> tuple[dict, np.ndarray]:
        p, r = self.profile, self.policy.config.resolution
        if not isinstance(obs, dict):
            raise ValueError(f"An observation must be a map of named arrays, not a {type(obs).__name__}.")
        missing = [k for k in [*p.cameras, p.state_key] if k not in obs]
        if missing:
            raise ValueError(f"The observation lacks {', '.join(repr(k) for k in missing)} (profile {p.name}).")
        images = {view: _resize(obs[key], r, key) for key, view in p.cameras.items()}
        state = obs[p.state_key]
        if not isinstance(state, np.ndarray) or state.dtype.kind not in "fiu":
            raise ValueError(f"{p.state_key!r} must be a numeric array.")
        state = state.astype(np.float32).reshape(-1) if state.ndim <= 1 else state
        if state.shape != (p.state_dim,):
            raise ValueError(f"{p.state_key!r} must have shape ({p.state_dim},) for {p.name}; got {state.shape}.")
        if not np.isfinite(state).all():
            raise ValueError(f"{p.state_key!r} contains NaN or infinite values.")
        return images, state

    def _admit(self) -> int:
        """Check the gate for a new request; returns the gate epoch it was admitted in."""
        if self.gate == "stopped":
            raise ValueError("Execution is stopped by the operator.")
        if self.gate == "paused":
            raise ValueError("Execution is paused by the operator; retry when armed.")
        if self.gate == "step":
            self.gate = "paused"                          # one chunk, then wait again
        return self._epoch

    def infer(self, conn_id: int, obs) -> tuple[dict, dict]:
        """Validate and predict a safe chunk (on the single inference thread). Returns the reply and
        what ``record`` needs once the reply has been sent."""
        images, state = self._parse(obs)
        task = obs.get("task")
        if isinstance(task, str) and task.removeprefix("goal:").strip().isdigit():
            gid = int(task.removeprefix("goal:"))
            if gid != self.goal_id:
                self.set_goal_id(gid)
        if self.goal is None:
            raise ValueError("No goal is set: choose one in the lab, pass --goal-id, or send task='goal:<id>'.")
        o = {"images": images, "state": state}
        chunk = self.policy.predict_action_chunk(o, self.goal)[0, : self.policy.config.msth_E].numpy()
        actions = self.profile.make_safe(chunk, state)
        with self._lock:
            rec = self._recs.get(conn_id)
            step = len(rec.chunks) * len(actions) if rec else 0
        return {"actions": actions, "step": step}, {"obs": o, "actions": actions}

    def record(self, conn_id: int, sent: dict) -> None:
        """Add a served request to its connection's rollout (imagining, if asked, after the reply)."""
        o = sent["obs"]
        imagined = self.policy.imagine(o, self.goal) if self.imagine and self.policy.config.use_world_model else None
        with self._lock:
            rec = self._recs.setdefault(conn_id, _Recording())
            for v, f in o["images"].items():
                rec.frames.setdefault(v, []).append(f)
            rec.states.append(o["state"])
            rec.chunks.append(sent["actions"])
            rec.imagined.append(imagined)
            rec.last = time.monotonic()
            self.served += 1
            self.last_frames = o["images"]

    # ------------------------------------------------------------------ recording
    def _finish(self, conn_id: int, why: str) -> int | None:
        with self._lock:
            rec = self._recs.pop(conn_id, None)
        # a transition runs from one request to the next: one request alone observed no outcome
        if rec is None or self.engine is None or self.record_root is None or len(rec.chunks) < 2:
            return None
        from a2g_core.data.rollouts import record_rollout, robot_episode
        ep, chunks = robot_episode(rec.frames, rec.states, rec.chunks, task=self._goal_task(), info={"ended": why})
        row = record_rollout(self.engine, self.record_root, ep, chunks, target="robot", policy=self.policy_id,
                             adapter=self.adapter_id, goal_id=self.goal_id, imagined=rec.imagined,
                             fps=self.profile.fps)
        self.rollouts.append(row.id)
        return row.id

    def _finish_all(self, why: str) -> None:
        for conn_id in list(self._recs):
            self._finish(conn_id, why)

    def _goal_task(self) -> str:
        if self.goal_id is not None and self.engine is not None:
            from a2g_core.store import crud
            return crud.get_goal(self.engine, goal_id=self.goal_id).task or "robot"
        return "robot"

    # ------------------------------------------------------------------ websocket + http
    def _authorized(self, request) -> bool:
        """With a key: the ``Authorization: Api-Key`` header. Without one (loopback only): the
        ``X-A2G-Control`` header, which a web page cannot add to a cross-site request, and a
        loopback ``Host`` (no DNS rebinding)."""
        if self.api_key:
            got = request.headers.get("Authorization", "")
            return hmac.compare_digest(got.encode(), f"Api-Key {self.api_key}".encode())
        host = request.headers.get("Host", "").rsplit(":", 1)[0].strip("[]")
        return "X-A2G-Control" in request.headers and is_loopback(host)

    async def _http(self, connection, request):
        from websockets.datastructures import Headers
        from websockets.http11 import Response
        url = urlparse(request.path)
        loop = asyncio.get_running_loop()

        def reply(status: HTTPStatus, body: dict):
            data = json.dumps(body).encode()
            return Response(status.value, status.phrase, Headers({"Content-Type": "application/json",
                                                                  "Content-Length": str(len(data))}), data)
        if url.path == "/healthz":
            return reply(HTTPStatus.OK, {"status": "ok", "gate": self.gate})
        if request.headers.get("Upgrade", "").lower() == "websocket":
            if self.api_key and not self._authorized(request):
                return reply(HTTPStatus.UNAUTHORIZED, {"error": "Send 'Authorization: Api-Key <key>'."})
            return None                                       # a WebSocket handshake: go on
        if not self._authorized(request):
            need = "'Authorization: Api-Key <key>'" if self.api_key else "an 'X-A2G-Control: 1' header"
            return reply(HTTPStatus.UNAUTHORIZED, {"error": f"Control requests need {need}."})
        try:
            if url.path == "/status":
                return reply(HTTPStatus.OK, self.status())
            if url.path.startswith("/control/"):
                action = url.path.removeprefix("/control/")
                gate = CONTROLS.get(action)
                if gate is None:
                    raise ValueError(f"Unknown control {action!r}; use arm, pause, step or stop.")
                await loop.run_in_executor(self._pool, self.set_gate, gate)
                return reply(HTTPStatus.OK, self.status())
            if url.path == "/goal":
                ids = parse_qs(url.query).get("id", [""])
                if not ids[0].isdigit():
                    raise ValueError("Give the goal as /goal?id=<number>.")
                await loop.run_in_executor(self._pool, self.set_goal_id, int(ids[0]))
                return reply(HTTPStatus.OK, self.status())
        except ValueError as e:
            return reply(HTTPStatus.BAD_REQUEST, {"error": str(e)})
        return reply(HTTPStatus.NOT_FOUND, {"error": f"No such path {url.path}."})

    async def _handler(self, ws) -> None:
        conn_id = id(ws)
        loop = asyncio.get_running_loop()
        watchdog = asyncio.create_task(self._watchdog(conn_id))
        try:
            await ws.send(wire.packb(self.metadata()))
            async for message in ws:
                with self._lock:
                    if conn_id in self._recs:
                        self._recs[conn_id].last = time.monotonic()   # the client is alive, even if paused
                if isinstance(message, str):
                    await ws.send("Send observations as binary msgpack frames, not text.")
                    continue
                try:
                    obs = wire.unpackb(message)
                    if not isinstance(obs, dict):
                        raise ValueError(f"An observation must be a map of named arrays, not a {type(obs).__name__}.")
                    epoch = self._admit()
                    reply, sent = await loop.run_in_executor(self._pool, self.infer, conn_id, obs)
                    if self._epoch != epoch and self.gate != "armed":
                        raise ValueError(f"Execution was {'stopped' if self.gate == 'stopped' else 'paused'} by the "
                                         f"operator while this chunk was computed; it was not sent.")
                    await ws.send(wire.packb(reply))
                    self._pool.submit(self.record, conn_id, sent)
                except ValueError as e:
                    await ws.send(str(e))
                except Exception as e:                        # a bug must not take the server down
                    await ws.send(f"Internal error while serving the request: {type(e).__name__}: {e}")
        except Exception:
            pass                                              # the client vanished mid-request
        finally:
            watchdog.cancel()
            await loop.run_in_executor(self._pool, self._finish, conn_id, "client disconnected")

    async def _watchdog(self, conn_id: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(min(1.0, self.watchdog_s / 4))
            rec = self._recs.get(conn_id)
            if rec is not None and time.monotonic() - rec.last > self.watchdog_s:
                await loop.run_in_executor(self._pool, self._finish, conn_id,
                                           f"watchdog: no request for {self.watchdog_s:g} s")

    async def _main(self, ready: threading.Event | None = None) -> None:
        from websockets.asyncio.server import serve
        try:
            # origins=[None]: browsers always send an Origin, robots and openpi clients do not, so no
            # web page can open a connection to the robot's server
            async with serve(self._handler, self.host, self.port, process_request=self._http, origins=[None],
                             max_size=self.max_message, compression=None) as server:
                self._server = server
                self.port = server.sockets[0].getsockname()[1]
                self._loop = asyncio.get_running_loop()
                if ready is not None:
                    ready.set()
                await server.serve_forever()
        except OSError as e:
            self._start_error = ValueError(f"Cannot serve on {self.host}:{self.port}: {e.strerror or e}.")
            if ready is None:
                raise self._start_error from None
        finally:
            if ready is not None:
                ready.set()

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted; open rollouts are recorded on the way out."""
        try:
            asyncio.run(self._main())
        finally:
            self._pool.submit(self._finish_all, "server stopped").result()
            self._pool.shutdown()

    def start(self) -> "PolicyServer":
        """Serve from a background thread (the lab, tests); returns once the port is bound."""
        ready = threading.Event()
        self._start_error = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main(ready)), daemon=True)
        self._thread.start()
        ready.wait(60)
        if self._start_error is not None:
            raise self._start_error
        if self._server is None:
            raise ValueError(f"The policy server did not start on {self.host}:{self.port}.")
        return self

    def close(self) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        if self._thread is not None:
            self._thread.join(10)
        self._pool.submit(self._finish_all, "server closed").result()
        self._pool.shutdown()


def _resize(img, r: int, name: str) -> np.ndarray:
    if not isinstance(img, np.ndarray):
        raise ValueError(f"{name!r} must be an image array, not a {type(img).__name__}.")
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{name!r} must be an HWC RGB image (H, W, 3); got shape {img.shape}.")
    if img.dtype != np.uint8:
        raise ValueError(f"{name!r} must be uint8; got {img.dtype}.")
    if img.shape[0] < 8 or img.shape[1] < 8:
        raise ValueError(f"{name!r} is {img.shape[1]}×{img.shape[0]} px; send at least 8×8.")
    if img.shape[:2] == (r, r):
        return np.ascontiguousarray(img)
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((r, r), Image.BILINEAR))
