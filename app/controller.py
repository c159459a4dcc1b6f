"""The lab's thin controller: UI callbacks call these methods, these call ``a2g_core``.

Each browser session has its own simulator (keyed by a small id kept in ``gr.State``). All of a
simulator's work runs on one thread of its own: MuJoCo's EGL context stays current on the thread
that created it (another thread gets EGL_BAD_ACCESS), and one thread also serialises two clicks.
The policy is shared by all sessions and guarded by a lock; long work (improvement rounds) runs as
the same CLI command a user would type, in a child process whose status row lives in SQLite.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from a2g_core import DEFAULT_POLICY, msth
from a2g_core.data.episodes import square_resize
from a2g_core.data.rollouts import expert_goal_name, goal_images, load_imagined, record_goal, record_rollout
from a2g_core.eval.pictures import scale_up
from a2g_core.sim import MODES, TASKS, make_env
from a2g_core.sim.rollout import Episode, expert_goal
from a2g_core.sim.scene import HOME, WORKSPACE_HIGH, WORKSPACE_LOW
from a2g_core.store import crud, open_db

SHIPPED_BENCHMARK = Path("assets/benchmark/paper")         # `benchmark --suite paper` on the shipped checkpoints
DEFAULT_ROOT = Path("sessions/lab")
UPLOAD_LIMIT = 10 * 2**20                       # bytes per goal image
UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "BMP")
JOG = {"x": 0.02, "y": 0.02, "z": 0.02, "yaw": 0.2}   # metres / radians per teleop click
RUN_LIMIT = 1000                                 # steps per "Run" at most
MAX_SESSIONS = 16                                # browser sessions with a simulator; the oldest idle one goes


def upscale(img: np.ndarray, size: int = 256) -> np.ndarray:
    """Nearest-neighbour upscaling so small sim frames stay crisp in the browser."""
    return scale_up(img, max(1, size // img.shape[0]))


class LabError(Exception):
    """An error meant for the operator: one readable sentence."""


@dataclass
class Recording:
    """The rollout being executed in a session: what the policy saw, did and imagined."""
    goal_id: int | None
    frames: dict
    states: list
    policy: str = ""                                     # the base checkpoint the chunks came from
    adapter: str | None = None                           # and its adapter
    actions: list = field(default_factory=list)
    chunks: list = field(default_factory=list)
    imagined: list = field(default_factory=list)
    predictions: list = field(default_factory=list)      # per chunk: proximal, distal, offsets


@dataclass
class SimSession:
    env: object = None
    seed: int = 0
    obs: dict | None = None
    info: dict = field(default_factory=dict)
    plan: object = None
    goal_id: int | None = None
    rec: Recording | None = None
    demo: Recording | None = None
    busy: bool = False
    stop: bool = False
    thread: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="sim"))

    def run(self, fn, *args):
        """Run ``fn`` on this session's simulator thread and wait for it."""
        return self.thread.submit(fn, *args).result()


class LabController:
    def __init__(self, policy_dir: str | Path = DEFAULT_POLICY, root: str | Path = DEFAULT_ROOT,
                 db: str | Path | None = None, benchmark_dir: str | Path = SHIPPED_BENCHMARK,
                 checkpoints_dir: str | Path = DEFAULT_POLICY.parent):
        from a2g_core.models.act2goal import Act2GoalPolicy
        self.policy_dir, self.root, self.benchmark_dir = Path(policy_dir), Path(root), Path(benchmark_dir)
        self.checkpoints_dir = Path(checkpoints_dir)         # the shipped checkpoints, each with its eval.json
        if not (self.policy_dir / "policy.json").exists():
            raise LabError(f"No policy checkpoint at {self.policy_dir}; train one (make checkpoint) or pass --policy.")
        self.root.mkdir(parents=True, exist_ok=True)
        self.engine = open_db(db or self.root / "lab.db")
        crud.fail_stale_rounds(self.engine)
        self._register(self.policy_dir)
        self.adapter: str | None = None
        self.policy = Act2GoalPolicy.from_pretrained(self.policy_dir)
        self.resolution = self.policy.config.resolution     # of every session's simulator, whichever policy runs
        self._policy_lock = threading.Lock()
        self._sessions: dict[str, SimSession] = {}
        self._guard = threading.Lock()
        self._improve: subprocess.Popen | None = None
        self._improve_log: Path | None = None
        self.bridge = None

    # ------------------------------------------------------------------ sessions
    def new_session(self) -> str:
        sid = uuid.uuid4().hex[:12]
        with self._guard:
            self._sessions[sid] = SimSession()
            idle = [k for k, v in self._sessions.items() if not v.busy and k != sid]
            evict = idle[: max(0, len(self._sessions) - MAX_SESSIONS)]
        for k in evict:
            self.close_session(k)
        return sid

    def close_session(self, sid: str | None) -> None:
        """A browser tab went away: record its open rollout and free its simulator."""
        with self._guard:
            s = self._sessions.pop(sid, None) if sid else None
        if s is None:
            return

        def shut():
            self._end_rollout(s, "page closed")
            if s.env is not None:
                s.env.close()
        try:
            s.run(shut)
        finally:
            s.thread.shutdown(wait=False)

    def _session(self, sid: str | None) -> SimSession:
        with self._guard:
            if not sid or sid not in self._sessions:
                raise LabError("This browser session is not known to the lab; reload the page.")
            return self._sessions[sid]

    def _exclusive(self, s: SimSession, fn, *args, rollout: bool = False):
        """One rollout at a time per simulator: any request while one runs is told so. Other work
        (reset, teleop, the expert) queues on the simulator's thread."""
        with self._guard:
            if s.busy:
                raise LabError("This simulator is busy with a rollout; press Stop or wait for it to finish.")
            if rollout:
                s.busy, s.stop = True, False
        try:
            return s.run(fn, *args)
        finally:
            if rollout:
                s.busy = False

    # ------------------------------------------------------------------ policy and adapters
    def policies(self) -> list[str]:
        """The base checkpoints the lab can switch to: the shipped ones and every one its store knows."""
        shipped = [str(p.parent) for p in sorted(self.checkpoints_dir.glob("*/policy.json"))]
        known = [c.path for c in crud.list_checkpoints(self.engine, kind="base")]
        return [p for p in dict.fromkeys([str(self.policy_dir), *shipped, *known]) if (Path(p) / "policy.json").exists()]

    def use_policy(self, policy_dir: str | Path | None, adapter: str | None = None) -> str:
        """Use the base checkpoint ``policy_dir`` (default: the current one) with ``adapter`` (a LoRA
        folder from one of that base's improvement rounds) or none, for every session from the next chunk."""
        from a2g_core.models.act2goal import Act2GoalPolicy
        policy_dir, adapter = Path(policy_dir or self.policy_dir), adapter or None
        if not (policy_dir / "policy.json").exists():
            raise LabError(f"{policy_dir} is not a policy checkpoint (it has no policy.json).")
        bases = {r.base for r in crud.list_rounds(self.engine) if adapter and r.adapter == adapter}
        if bases and str(policy_dir) not in bases:
            raise LabError(f"That adapter was trained on {bases.pop()}, not on {policy_dir}.")
        try:                                          # the loader's own check of the adapter folder
            policy = Act2GoalPolicy.from_pretrained(policy_dir, adapter=adapter)
        except ValueError as e:
            raise LabError(str(e)) from None
        if policy.config.resolution != self.resolution:
            raise LabError(f"{policy_dir} takes {policy.config.resolution} px frames but the lab's simulators run at "
                           f"{self.resolution} px; start the lab with --policy {policy_dir} instead.")
        self._register(policy_dir)
        with self._policy_lock:
            self.policy, self.policy_dir, self.adapter = policy, policy_dir, adapter
        return f"The lab's policy is now {self.describe_policy()}."

    def describe_policy(self) -> str:
        """The policy in use, its adapter and what it was trained on, for the operator."""
        from a2g_core.models.act2goal import describe_cells
        cells = self.policy.trained_on
        return (f"{self.policy_dir}" + (f" + {self.adapter}" if self.adapter else " (no adapter)") + ", trained on "
                + (describe_cells(cells) if cells else "tasks its checkpoint does not record"))

    @property
    def default_task(self) -> str:
        """The task the lab's pages open on: the first its starting policy was trained on."""
        return self.policy.trained_on[0][0] if self.policy.trained_on else "place_empty_cup"

    def _register(self, policy_dir: Path) -> None:
        """Record a base checkpoint the lab loaded, once."""
        if str(policy_dir) not in [c.path for c in crud.list_checkpoints(self.engine, kind="base")]:
            crud.add_checkpoint(self.engine, path=str(policy_dir), kind="base", note="loaded by the lab")

    def adapters(self, policy_dir: str | Path | None = None) -> list[tuple[str, str]]:
        """(label, path) of every finished round's adapter on ``policy_dir`` (default: the current base), newest last."""
        base = str(policy_dir or self.policy_dir)
        return [(f"round {r.number} · {Path(r.config.get('run', '')).name} · success "
                 f"{r.metrics.get('success', float('nan')):.2f}", r.adapter)
                for r in crud.list_rounds(self.engine, status="done")
                if r.base == base and r.adapter and Path(r.adapter).exists()]

    # ------------------------------------------------------------------ simulator
    def sim_reset(self, sid: str, task: str, mode: str, seed) -> dict:
        if task not in TASKS:
            raise LabError(f"Unknown task {task!r}; pick one from the list.")
        if mode not in MODES:
            raise LabError(f"Unknown mode {mode!r}; pick easy or hard.")
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            raise LabError(f"The seed must be a whole number, not {seed!r}.") from None
        if seed < 0:
            raise LabError("The seed must be zero or positive.")
        s = self._session(sid)

        def reset():
            self._end_rollout(s, "reset")
            if s.env is None or s.env.task.name != task or s.env.mode != mode:
                if s.env is not None:
                    s.env.close()
                s.env = make_env(task, mode, self.resolution)
            s.seed = seed
            s.obs, s.info = s.env.reset(seed=seed)
            with self._policy_lock:         # the policy's noise as `eval` draws it for this seed
                self.policy.reset(seed)
            s.plan, s.demo = None, None
            return self._view(s)
        return self._exclusive(s, reset)

    def _require_env(self, s: SimSession) -> None:
        if s.env is None:
            raise LabError("Reset the simulator first.")

    def sim_step_expert(self, sid: str, steps: int = 10) -> dict:
        """Advance the scripted expert ``steps`` control steps (a demonstration, not the policy)."""
        s = self._session(sid)

        def step():
            self._require_env(s)
            self._end_rollout(s, "expert took over")
            if s.plan is None:
                s.plan = s.env.task.expert(s.env)
            for _ in range(int(steps)):
                a = next(s.plan, None)
                if a is None or s.env.steps >= s.env.max_steps:
                    break
                s.obs, _, _, _, s.info = s.env.step(a)
            return self._view(s)
        return self._exclusive(s, step)

    def _view(self, s: SimSession) -> dict:
        env = s.env
        extra = ", ".join([f"{k}: {v}" for k, v in s.info.items() if k not in ("is_success", "action")] +
                          [f"{k} {v:.2f}" for k, v in env.task.scores(env).items()])
        rec = f" · recording rollout ({len(s.rec.actions)} steps)" if s.rec else ""
        status = (f"{env.task.name} / {env.mode} / seed {s.seed} · step {env.steps}/{env.max_steps} · "
                  f"success: {'yes' if s.info.get('is_success') else 'no'}" + (f" · {extra}" if extra else "") + rec)
        return {"head": upscale(s.obs["images"]["head"]), "wrist": upscale(s.obs["images"]["wrist"]),
                "state": [round(float(v), 4) for v in s.obs["state"]], "status": status,
                "success": bool(s.info.get("is_success"))}

    # ------------------------------------------------------------------ goals
    def _save_goal(self, images: dict, *, source: str, task=None, mode=None, seed=None, name="") -> int:
        return record_goal(self.engine, self.root, images, source=source, task=task, mode=mode, seed=seed, name=name).id

    def goal_snap(self, sid: str, name: str = "") -> dict:
        """The session's current camera views become a goal in the library, and the session's goal."""
        s = self._session(sid)
        self._require_env(s)
        images = {v: np.array(f) for v, f in s.obs["images"].items()}
        gid = self._save_goal(images, source="snapped", task=s.env.task.name, mode=s.env.mode, seed=s.seed,
                              name=name or f"snapped at step {s.env.steps}")
        return self.goal_pick(sid, gid)

    def goal_expert(self, sid: str, task: str, mode: str, seed) -> dict:
        """The scripted expert's goal frame for this task/seed (the paper's goal images): its final frame,
        or its first with the task done where the policy was trained on those (its ``goal_frame``)."""
        if task not in TASKS or mode not in MODES:
            raise LabError("Pick a task and a mode from the lists.")
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            raise LabError(f"The seed must be a whole number, not {seed!r}.") from None
        frame = self.policy.config.goal_frame
        name = expert_goal_name(task, seed, frame)
        for g in crud.list_goals(self.engine, task=task, source="expert"):
            if (g.mode, g.seed, g.name) == (mode, seed, name) and all(Path(p).exists() for p in g.images.values()):
                return self.goal_pick(sid, g.id)
        goal, ok = expert_goal(task, mode, seed, self.resolution, frame=frame)
        if not ok:
            raise LabError(f"The scripted expert failed on {task}/{mode} seed {seed}; try another seed.")
        gid = self._save_goal(goal, source="expert", task=task, mode=mode, seed=seed, name=name)
        return self.goal_pick(sid, gid)

    def goal_upload(self, sid: str, head_file: str | None, wrist_file: str | None = None, name: str = "") -> dict:
        """Validate and store uploaded goal images: type, decodable, size limit; resized to the model.
        A view without an image is conditioned on its current frame at run time."""
        if not head_file:
            raise LabError("Choose an image for the head view (the wrist view is optional).")
        images = {}
        for view, f in (("head", head_file), ("wrist", wrist_file)):
            if f:
                images[view] = self._read_upload(Path(f), view)
        gid = self._save_goal(images, source="uploaded", name=name or "uploaded")
        return self.goal_pick(sid, gid)

    def _read_upload(self, path: Path, view: str) -> np.ndarray:
        if not path.exists():
            raise LabError(f"The {view} upload did not arrive; try again.")
        size = path.stat().st_size
        if size > UPLOAD_LIMIT:
            raise LabError(f"The {view} image is {size / 2**20:.1f} MB; the limit is {UPLOAD_LIMIT // 2**20} MB.")
        try:
            with Image.open(path) as im:
                fmt = im.format
                if fmt not in UPLOAD_FORMATS:
                    raise LabError(f"The {view} file is {fmt or 'not an image'}; upload PNG, JPEG, WebP or BMP.")
                im.load()
                return square_resize(im, self.resolution)
        except LabError:
            raise
        except Exception:
            raise LabError(f"The {view} file could not be decoded as an image; upload PNG, JPEG, WebP or BMP.") from None

    def goal_pick(self, sid: str, goal_id) -> dict:
        s = self._session(sid)
        try:
            gid = int(goal_id)
        except (TypeError, ValueError):
            raise LabError("Pick a goal from the library first.") from None
        try:
            g = crud.get_goal(self.engine, goal_id=gid)
        except ValueError as e:
            raise LabError(str(e)) from None
        if s.goal_id != gid:
            s.run(self._end_rollout, s, "goal changed")
        s.goal_id = gid
        return {"id": gid, "images": goal_images(g), "label": self._goal_label(g)}

    def _goal_label(self, g) -> str:
        where = f"{g.task}/{g.mode} seed {g.seed}" if g.task else "no task"
        return f"#{g.id} · {g.source} · {where} · {g.name}"

    def goal_library(self, task: str | None = None) -> list[dict]:
        return [{"id": g.id, "label": self._goal_label(g), "images": g.images}
                for g in crud.list_goals(self.engine, task=task or None)]

    def _goal_for_policy(self, s: SimSession) -> dict:
        if s.goal_id is None:
            raise LabError("Choose a goal first (Goals tab: expert goal, snap or upload).")
        images = goal_images(crud.get_goal(self.engine, goal_id=s.goal_id), self.resolution)
        # a view the goal has no image for is conditioned on its current frame ("keep it as it is")
        return {v: images.get(v, s.obs["images"][v]) for v in self.policy.config.views}

    # ------------------------------------------------------------------ imagine
    def imagine(self, sid: str) -> dict:
        """The world model's proximal and distal frames for the current observation and goal."""
        s = self._session(sid)
        self._require_env(s)
        if not self.policy.config.use_world_model:
            raise LabError("This policy (DP-GC) has no world model, so it cannot imagine.")
        goal = self._goal_for_policy(s)
        with self._policy_lock:
            out = self.policy.imagine(s.obs, goal)
        cfg = self.policy.config
        return {"frames": out["frames"], "offsets": [int(o) for o in out["offsets"]],
                "num_proximal": out["num_proximal"], "P": cfg.msth.P, "M": cfg.msth.M, "E": cfg.msth.E,
                "K": cfg.inference_horizon, "action_offsets": [int(o) for o in msth.action_offsets(cfg.msth,
                                                                                                cfg.inference_horizon)]}

    # ------------------------------------------------------------------ execute (sim)
    def exec_step(self, sid: str, imagine: bool = True, execute=None) -> dict:
        """Execute one chunk of the policy in this session's simulator: ``execute`` actions of it
        (default: the policy's E)."""
        s = self._session(sid)
        return self._exclusive(s, self._chunk, s, imagine, execute, rollout=True)

    def exec_run(self, sid: str, imagine: bool = True, max_steps: int = RUN_LIMIT, execute=None):
        """Execute chunks (``execute`` actions of each) until success, the step limit, or Stop; yields a
        view after every chunk."""
        s = self._session(sid)
        with self._guard:
            if s.busy:
                raise LabError("This simulator is busy with a rollout; press Stop or wait for it to finish.")
            s.busy, s.stop = True, False
        try:
            start = s.env.steps if s.env is not None else 0
            while True:
                view = s.run(self._chunk, s, imagine, execute)
                yield view
                if view["ended"] or s.stop or s.env.steps - start >= max_steps:
                    if not view["ended"]:
                        view = s.run(lambda: {**self._view(s), "ended": self._end_rollout(s, "stopped")})
                        yield view
                    return
        finally:
            s.busy = False

    def exec_stop(self, sid: str) -> str:
        """Ask a running rollout to stop after its current chunk (it is then recorded)."""
        s = self._session(sid)
        s.stop = True
        if not s.busy:
            rid = s.run(self._end_rollout, s, "stopped")
            return f"Rollout #{rid} recorded." if rid else "Nothing is running."
        return "Stopping after this chunk…"

    def _per_chunk(self, execute) -> int:
        """Actions to execute of each chunk: ``execute``, or the policy's E where it is empty."""
        if execute in (None, ""):
            return self.policy.config.msth_E
        try:
            return self.policy.check_execute(execute)
        except ValueError as e:
            raise LabError(str(e)) from None

    def _chunk(self, s: SimSession, imagine: bool, execute=None) -> dict:
        self._require_env(s)
        n = self._per_chunk(execute)
        goal = self._goal_for_policy(s)
        if s.rec is None or s.rec.goal_id != s.goal_id:
            self._end_rollout(s, "new rollout")
            s.rec = Recording(s.goal_id, {v: [np.array(f)] for v, f in s.obs["images"].items()}, [s.obs["state"]],
                              policy=str(self.policy_dir), adapter=self.adapter)
            s.plan = None
        if (s.rec.policy, s.rec.adapter) != (str(self.policy_dir), self.adapter):   # the policy changed: a new rollout
            self._end_rollout(s, "policy changed")
            return self._chunk(s, imagine, execute)
        with self._policy_lock:
            pred = self.policy.predict_chunk(s.obs, goal)
            im = self.policy.imagine(s.obs, goal) if imagine and self.policy.config.use_world_model else None
        rec = s.rec
        rec.imagined.append(im)
        rec.predictions.append({"proximal": pred["proximal"][0].numpy(), "distal": pred["distal"][0].numpy(),
                                "offsets": pred["offsets"], "t0": len(rec.actions)})
        t0 = len(rec.actions)
        for a in pred["proximal"][0, :n].numpy():
            s.obs, _, _, truncated, s.info = s.env.step(a)
            rec.actions.append(s.info["action"])
            rec.states.append(s.obs["state"])
            for v, f in s.obs["images"].items():
                rec.frames[v].append(np.array(f))
            if s.info["is_success"] or truncated:
                break
        rec.chunks.append((t0, len(rec.actions)))
        ended = None
        if s.info["is_success"] or s.env.steps >= s.env.max_steps:
            ended = self._end_rollout(s, "success" if s.info["is_success"] else "step limit")
        return {**self._view(s), "ended": ended}

    def _end_rollout(self, s: SimSession, why: str) -> int | None:
        """Store the session's open rollout (frames, DB row, HER transitions); returns its id."""
        rec, s.rec = s.rec, None
        if rec is None or not rec.actions:
            return None
        ep = Episode(s.env.task.name, s.env.mode, s.seed, {v: np.stack(f) for v, f in rec.frames.items()},
                     np.stack(rec.states), np.stack(rec.actions), bool(s.info.get("is_success")), {"ended": why})
        row = record_rollout(self.engine, self.root / "rollouts", ep, rec.chunks, target="sim",
                             policy=rec.policy, adapter=rec.adapter, goal_id=rec.goal_id,
                             sim_success=ep.success, imagined=rec.imagined)
        np.savez(Path(row.episode_dir) / "predictions.npz",
                 t0=np.array([p["t0"] for p in rec.predictions]),
                 proximal=np.stack([p["proximal"] for p in rec.predictions]),
                 distal=np.stack([p["distal"] for p in rec.predictions]),
                 offsets=np.stack([p["offsets"] for p in rec.predictions]))
        return row.id

    # ------------------------------------------------------------------ teleop and demonstrations
    def teleop(self, sid: str, command: str) -> dict:
        """Jog the end effector (x+/x-/y+/y-/z+/z-/yaw+/yaw-), open/close the gripper, or go home.
        While a demonstration is being recorded every step is kept."""
        s = self._session(sid)

        def go():
            self._require_env(s)
            self._end_rollout(s, "teleop took over")
            target = np.array(s.obs["state"], dtype=np.float64)
            if command == "home":
                target = HOME.copy()
            elif command in ("open", "close"):
                target[4] = 0.0 if command == "open" else 1.0
            else:
                axis, sign = command[:-1], command[-1]
                if axis not in JOG or sign not in "+-":
                    raise LabError(f"Unknown teleop command {command!r}.")
                i = ["x", "y", "z", "yaw"].index(axis)
                target[i] += JOG[axis] * (1 if sign == "+" else -1)
            target = np.clip(target, WORKSPACE_LOW, WORKSPACE_HIGH)
            for _ in range(6 if command == "home" else 2):         # a few steps to settle on the target
                s.obs, _, _, _, s.info = s.env.step(target)
                if s.demo is not None:
                    s.demo.actions.append(s.info["action"])
                    s.demo.states.append(s.obs["state"])
                    for v, f in s.obs["images"].items():
                        s.demo.frames[v].append(np.array(f))
            return self._view(s)
        return self._exclusive(s, go)

    def demo_start(self, sid: str) -> str:
        s = self._session(sid)

        def start():
            self._require_env(s)
            s.demo = Recording(None, {v: [np.array(f)] for v, f in s.obs["images"].items()}, [s.obs["state"]])
        s.run(start)
        return "Recording a demonstration: jog the arm, then press Save demo."

    def demo_save(self, sid: str) -> str:
        """Write the demonstration into the lab's demo dataset and snap its end as a goal."""
        from a2g_core.data.episodes import init_dataset, write_episode
        s = self._session(sid)

        def take():
            if s.demo is None or not s.demo.actions:
                raise LabError("Start a demonstration and move the arm before saving it.")
            d, s.demo = s.demo, None
            return d
        d = s.run(take)                        # on the simulator's thread: no jog can interleave
        ep = Episode(s.env.task.name, s.env.mode, s.seed, {v: np.stack(f) for v, f in d.frames.items()},
                     np.stack(d.states), np.stack(d.actions), bool(s.info.get("is_success")), {"source": "teleop"})
        root = self.root / "demos"
        init_dataset(root, views=tuple(ep.frames), resolution=self.resolution, fps=20)
        folder = write_episode(root, ep, name=f"demo-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}")
        gid = self.goal_snap(sid, name=f"end of {folder.name}")["id"]
        return f"Saved {len(ep)} steps to {folder} and its end as goal #{gid}."

    # ------------------------------------------------------------------ review
    def rollouts(self, task: str | None = None, label: str | None = None, round_id=None) -> list:
        rid = int(round_id) if round_id not in (None, "", "all") else None
        return crud.list_rollouts(self.engine, task=task or None, label=None if label in (None, "", "all") else label,
                                  round_id=rid)

    def review(self, rollout_id) -> dict:
        """Frames, imagined frames, states, actions and predictions of a recorded rollout."""
        from a2g_core.data.episodes import StoredEpisode
        try:
            r = crud.get_rollout(self.engine, rollout_id=int(rollout_id))
        except (TypeError, ValueError):
            raise LabError("Pick a rollout from the list.") from None
        folder = Path(r.episode_dir)
        if r.status != "done" or not (folder / "meta.json").exists():
            raise LabError(f"The files of rollout #{r.id} are missing ({folder or 'never written'}).")
        import json
        ep = StoredEpisode(folder, json.loads((folder / "meta.json").read_text()))
        states, actions = ep.lowdim()
        pred = dict(np.load(folder / "predictions.npz")) if (folder / "predictions.npz").exists() else None
        return {"row": r, "frames": {v: np.asarray(ep.frames(v)) for v in ep.meta["views"]}, "states": states,
                "actions": actions, "imagined": load_imagined(r.imagined_dir) if r.imagined_dir else {},
                "predictions": pred, "chunks": [(t.t0, t.t1) for t in crud.list_transitions(self.engine, rollout_id=r.id)]}

    def label(self, rollout_id, label: str, note: str = "") -> str:
        if label not in ("success", "failure"):
            raise LabError("Choose success or failure.")
        try:
            crud.label_rollout(self.engine, rollout_id=int(rollout_id), label=label, note=note or "")
        except (TypeError, ValueError) as e:
            raise LabError(str(e) if isinstance(e, ValueError) and "rollout" in str(e) else
                           "Pick a rollout from the list.") from None
        return f"Rollout #{int(rollout_id)} labelled {label}."

    # ------------------------------------------------------------------ improve
    def improve_start(self, *, task: str, mode: str, source: str = "all", rounds: int = 1, buffer: int = 20,
                      epochs: int = 10, rank: int = 64, eval_episodes: int = 10, max_rollouts: int = 10,
                      relabel: str = "chunk", lr: float = 3e-4, anchor: str = "", anchor_fraction: float = 0.5,
                      scenario: int | str | None = None, keep_goal: float = 0.0) -> str:
        """Start ``python -m a2g_core improve`` in the background; one run at a time. A run is named by
        its task, mode, source and (where not the defaults) relabelling, kept goals, learning rate,
        expert anchor and scenario (one scene's seed), and continues from its last finished round."""
        from a2g_core.data.replay import GOALS
        from a2g_core.train.improve import ImproveConfig
        if self._improve is not None and self._improve.poll() is None:
            raise LabError("An improvement round is already running; wait for it to finish.")
        if task not in TASKS or mode not in MODES:
            raise LabError("Pick a task and a mode.")
        if relabel not in GOALS:
            raise LabError(f"Relabel with {' or '.join(GOALS)}.")
        if lr is None or not 0 < lr <= 1:
            raise LabError(f"The learning rate must be a number above 0 and at most 1 (default {ImproveConfig.lr:g}).")
        nums = {"rounds": rounds, "buffer": buffer, "epochs": epochs, "rank": rank, "eval episodes": eval_episodes,
                "max rollouts": max_rollouts}
        for k, v in nums.items():
            if v is None or int(v) != v or v < (0 if k == "eval episodes" else 1):
                raise LabError(f"{k.capitalize()} must be a whole number of at least {0 if k == 'eval episodes' else 1}.")
        scenario = str("" if scenario is None else scenario).strip() or None
        if scenario is not None:
            if not scenario.isdigit():
                raise LabError(f"The scenario is a scene's seed, a whole number of at least 0, not {scenario!r} "
                               "(leave it empty for a new scene per rollout).")
            scenario = int(scenario)
        anchor = (anchor or "").strip()
        if anchor and anchor_fraction is None:
            raise LabError(f"Give the anchor's share of each batch (default {ImproveConfig.anchor_fraction:g}).")
        if keep_goal is None:
            raise LabError("Give the share of a successful rollout's samples that keep its goal (default 0).")
        try:                                      # the round's own checks of the anchor and the share, as the CLI gets them
            ImproveConfig(task=task, mode=mode, anchor=anchor or None, keep_goal=keep_goal,
                          anchor_fraction=anchor_fraction if anchor else ImproveConfig.anchor_fraction)
        except ValueError as e:
            raise LabError(str(e)) from None
        run = self.root / "improve" / "-".join([self.policy_dir.name, task, mode, source]
                                               + ([relabel] if relabel != "chunk" else [])
                                               + ([f"keep{keep_goal:g}"] if keep_goal else [])
                                               + ([f"lr{lr:g}"] if lr != ImproveConfig.lr else [])
                                               + ([f"anchor{anchor_fraction:g}"] if anchor else [])
                                               + ([f"scene{scenario}"] if scenario is not None else []))
        log = self.root / "logs" / f"improve-{time.strftime('%Y%m%d-%H%M%S')}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "a2g_core", "improve", "--policy", str(self.policy_dir), "--task", task,
               "--mode", mode, "--run", str(run), "--rounds", str(int(rounds)), "--source", source,
               "--buffer", str(int(buffer)), "--epochs", str(int(epochs)), "--rank", str(int(rank)),
               "--eval-episodes", str(int(eval_episodes)), "--max-rollouts", str(int(max_rollouts)),
               "--relabel", relabel, "--keep-goal", f"{keep_goal:g}", "--lr", f"{lr:g}",
               "--db", str(self.engine.url.database)]
        if anchor:
            cmd += ["--anchor", anchor, "--anchor-fraction", f"{anchor_fraction:g}"]
        if scenario is not None:
            cmd += ["--scenario", str(scenario)]
        with open(log, "w") as f:
            f.write("$ python " + " ".join(cmd[1:]) + "\n")
        self._improve_log = log
        with open(log, "a") as out:                       # the child keeps its own copy of the handle
            self._improve = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        return f"Started: {' '.join(cmd[2:5])} … (log {log})"

    def improve_status(self) -> dict:
        running = self._improve is not None and self._improve.poll() is None
        code = None if self._improve is None or running else self._improve.returncode
        log = self._improve_log.read_text()[-4000:] if self._improve_log and self._improve_log.exists() else ""
        return {"running": running, "returncode": code, "log": log, "rounds": crud.list_rounds(self.engine)}

    def improve_baselines(self, rounds: list) -> dict[str, float]:
        """run -> success of the base policy on that run's evaluation (round 0)."""
        from a2g_core.train.improve import round_zero
        out = {}
        for r in rounds:
            c = r.config
            e = round_zero(self.engine, base=r.base, task=c.get("task"), mode=c.get("mode"),
                           episodes=c.get("eval_episodes"), scenario=c.get("scenario"))
            if e is not None:
                out[c.get("run", "?")] = e.success
        return out

    # ------------------------------------------------------------------ benchmarks
    def evaluations(self) -> list:
        """The database's evaluations, then the shipped paper-suite results (``benchmark_dir/cells.jsonl``),
        then each shipped checkpoint's own (``checkpoints_dir/*/eval.json``, written by `eval --json`)."""
        import json

        from a2g_core.store.tables import Evaluation
        def shipped_row(c: dict, policy: Path, method: str, source: Path) -> Evaluation:
            return Evaluation(policy=str(policy), method=method, task=c["task"], mode=c["mode"], episodes=c["episodes"],
                              success=c["success"], ci_low=c["ci95"][0], ci_high=c["ci95"][1], suite=f"shipped {source}")

        rows = crud.list_evaluations(self.engine)
        shipped = self.benchmark_dir / "cells.jsonl"
        if shipped.exists():
            cells = [json.loads(line) for line in shipped.read_text().splitlines()]
            rows += [shipped_row(c, self.benchmark_dir, c["method"], shipped) for c in cells
                     if c["table"] == "success" and c["success"] is not None]
        for path in sorted(self.checkpoints_dir.glob("*/eval.json")):
            method = json.loads((path.parent / "policy.json").read_text())["type"]
            rows += [shipped_row(c, path.parent, method, path) for c in json.loads(path.read_text())["cells"]]
        return rows

    # ------------------------------------------------------------------ bridge (Genie-01 / any openpi client)
    def bridge_start(self, port: int = 8000, sid: str | None = None) -> dict:
        from a2g_core.models.act2goal import Act2GoalPolicy
        from a2g_core.robot.server import PolicyServer
        if self.bridge is not None:
            raise LabError(f"The bridge is already serving on port {self.bridge.port}.")
        if port is None or not 0 <= int(port) < 65536:
            raise LabError("Give the bridge a port between 1 and 65535.")
        policy = Act2GoalPolicy.from_pretrained(self.policy_dir, adapter=self.adapter)
        self.bridge = PolicyServer(policy, policy_id=str(self.policy_dir), adapter_id=self.adapter, engine=self.engine,
                                   record_root=self.root / "robot_rollouts", port=int(port), imagine=True)
        try:
            self.bridge.start()
        except ValueError:
            self.bridge = None
            raise
        if sid and self._session(sid).goal_id is not None:
            self.bridge_goal(sid)
        return self.bridge.status()

    def _require_bridge(self):
        if self.bridge is None:
            raise LabError("Start the bridge server first.")
        return self.bridge

    def bridge_control(self, action: str) -> dict:
        from a2g_core.robot.server import CONTROLS
        gate = CONTROLS.get(action)
        if gate is None:
            raise LabError(f"Unknown control {action!r}.")
        self._require_bridge().set_gate(gate)
        return self.bridge.status()

    def bridge_goal(self, sid: str) -> dict:
        """Send this session's goal to the bridge (it ends the bridge's open rollouts)."""
        b = self._require_bridge()
        gid = self._session(sid).goal_id
        if gid is None:
            raise LabError("Choose a goal first (Goals tab).")
        b._pool.submit(b.set_goal_id, gid).result()
        return b.status()

    def bridge_view(self) -> dict | None:
        b = self.bridge
        if b is None or b.last_frames is None:
            return None
        return {"frames": {v: upscale(f) for v, f in b.last_frames.items()}, "status": b.status()}

    def close(self) -> None:
        if self.bridge is not None:
            self.bridge.close()
            self.bridge = None
        if self._improve is not None and self._improve.poll() is None:
            self._improve.terminate()
        with self._guard:
            for s in self._sessions.values():
                if s.env is not None:
                    s.run(s.env.close)
                s.thread.shutdown()
            self._sessions.clear()
