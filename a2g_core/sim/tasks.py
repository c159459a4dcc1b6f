"""The seven tasks of the paper on the tabletop: layout sampling, success checks, scripted experts.

``easy`` uses the seen object variants in a clean scene; ``hard`` uses unseen variants (other sizes
and shapes, random colours), static clutter around the work area, and (in the env) random lighting,
table colour, camera pose and pixel noise: RoboTwin 2.0's clean vs randomized split.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np

from a2g_core.sim import font
from a2g_core.sim import scene as S
from a2g_core.sim.expert import SAFE_Z, Actions, Motion, wrap
from a2g_core.sim.scene import Body, Geom

MODES = ("easy", "hard")
UPRIGHT_TOL = np.deg2rad(15)


def _cm(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a)[:2] - np.asarray(b)[:2]) * 100)


@dataclass
class Scene:
    """What a reset sampled: bodies (structure), their poses, colours and the task's parameters."""
    bodies: list[Body]
    poses: dict[str, tuple]                 # body -> (x, y, z, yaw)
    params: dict[str, Any]
    colors: dict[str, tuple] = field(default_factory=dict)
    public: dict[str, Any] = field(default_factory=dict)   # copied into info (e.g. the word)


def _rand_color(rng) -> tuple:
    return (*rng.uniform(0.1, 0.95, 3), 1.0)


def _place_apart(rng, n: int, low, high, min_dist: float, clear_of=(), tries: int = 2000) -> list[np.ndarray]:
    """``n`` points in the box [low, high], ``min_dist`` apart and outside the discs ``clear_of``
    (a list of (centre, radius))."""
    pts: list[np.ndarray] = []
    out = []
    for _ in range(tries):
        p = rng.uniform(low, high)
        if all(np.linalg.norm(p - q) >= min_dist for q in pts) and \
                all(np.linalg.norm(p - np.asarray(c)) >= r for c, r in clear_of):
            pts.append(p)
            out.append(p)
            if len(out) == n:
                return out
    raise RuntimeError("Could not lay out the scene; the sampling region is too small.")


def _clutter(rng) -> tuple[list[Body], dict, dict]:
    """Four static distractors on the table's rim, outside the arm's workspace but in view."""
    bodies, poses, colors = [], {}, {}
    spots = [(-0.37, rng.uniform(-0.2, 0.25)), (0.37, rng.uniform(-0.2, 0.25)),
             (rng.uniform(-0.3, -0.05), 0.31), (rng.uniform(0.05, 0.3), 0.31)]
    shapes = [Geom("box", (0.02, 0.03, 0.025)), Geom("cylinder", (0.022, 0.03)),
              Geom("sphere", (0.025,)), Geom("box", (0.035, 0.015, 0.012))]
    for i, ((x, y), g) in enumerate(zip(spots, shapes)):
        g.name = f"clutter{i}"
        bodies.append(Body(f"clutter{i}", [g], free=False))
        poses[f"clutter{i}"] = (x, y, 0.03 if g.type != "box" else g.size[2], rng.uniform(-np.pi, np.pi))
        colors[g.name] = _rand_color(rng)
    return bodies, poses, colors


class Task:
    name = ""
    max_steps = 300
    marker = False
    # What DART noise (``run_expert``) the expert still succeeds under: the perturbed axes of the
    # end-effector position, a cap on the std in metres, and the commanded height at and above which
    # the arm is clear of every object, so the cap is lifted there (the approach keeps the full noise);
    # and the std in radians of the wrist's yaw while the gripper is open or the arm is at least that
    # high (0: never perturbed).
    dart_dims: tuple[int, ...] = (0, 1, 2)
    dart_max = float("inf")
    dart_free_z = float("inf")
    dart_yaw = 0.0

    def workspace(self) -> tuple[np.ndarray, np.ndarray]:
        return S.WORKSPACE_LOW.copy(), S.WORKSPACE_HIGH.copy()

    def home(self) -> np.ndarray:
        return S.HOME.copy()

    def validate_words(self, words):
        if words is not None:
            raise ValueError(f"Only the writing task takes words; {self.name!r} does not.")
        return None

    def sample(self, rng, mode: str, words, options: dict) -> Scene:
        scene = self.layout(rng, mode == "hard", options)
        if mode == "hard":
            b, p, c = _clutter(rng)
            scene.bodies += b
            scene.poses.update(p)
            scene.colors.update(c)
        return scene

    def layout(self, rng, hard: bool, options: dict) -> Scene:
        raise NotImplementedError

    def on_reset(self, env) -> None: ...
    def on_step(self, env) -> None: ...
    def decorate(self, env, scn) -> None: ...

    def success(self, env) -> bool:
        raise NotImplementedError

    def scores(self, env) -> dict[str, float]:
        """Where the scene stands against the success check, as the figures the check compares with its
        tolerances (cm in x-y, degrees, fractions): how near a failed episode came (eval reports them)."""
        raise NotImplementedError

    def expert(self, env) -> Actions:
        raise NotImplementedError

    # The one object the expert carries, where it can take over mid-episode (``recover``); such a task gives
    # ``deliver``, the expert from the object lifted in hand on.
    carried: str | None = None

    def recover(self, env, command=None) -> Actions | None:
        """The expert from the scene as it is now, mid-episode (a policy's rollout handed over to it:
        ``gen-data --handover-from``; how it goes on: ``_recover``). None where the task has no such expert, or
        the object has fallen over (the experts pick upright objects only).
        ``command`` is the last action the arm was given, its set-point, where the expert's moves start (as its
        own episodes' do: the arm lags its commands); default, the arm's pose."""
        if self.carried is None or env.body_tilt(self.carried) > UPRIGHT_TOL:
            return None
        return self._recover(env, env.proprio() if command is None else np.asarray(command, dtype=np.float64))

    def _recover(self, env, command) -> Actions:
        """Where the scene is on the expert's own path, the expert's next actions from it, so the labels agree
        with its episodes': over the object with open fingers, the descent goes on; held near its place, it is
        set down from the height it is at (lifted only to clear what it goes on); held elsewhere, lifted straight
        up and carried. Off the path: shut fingers with nothing held open, the arm rises clear and picks the object
        up from wherever it stands (the table, the target, clutter)."""
        body, prm = self.carried, env.scene.params
        ee, p, bottom = env.proprio(), env.body_pos(body), env.body_bottom(body)
        shut_on = 1.0 - env.model.geom(body).size[0] / S.FINGER_MAX      # where the fingers stop on it
        held = (abs(ee[4] - shut_on) < 0.1 and _cm(p, ee) < 2 and bottom < ee[2] < bottom + prm["height"])
        mo = Motion(env, np.append(command[:4], 1.0 if held else 0.0))
        safe = self.safe_z(prm)
        if held:
            xy, top = self.place_at(prm)
            lift = top + 0.005 - bottom                     # to clear what it goes on; none once it is in there
            if _cm(p, xy) < 3:
                yield from self.deliver(env, mo, carry_z=mo.sp[2] + (lift if 0 < lift < 0.008 else 0.0))
                return
            if mo.sp[2] < safe - 0.01:                      # lifted straight up first, as after the grasp
                yield from mo.move((*mo.sp[:2], safe), speed=0.012)
            yield from self.deliver(env, mo)
            return
        grasp = bottom + self.grasp_z(prm["height"])
        yaw = mo.sp[3] + self.grasp_turn(env, mo.sp[3])
        if ee[4] > 0.1:                                     # shut on nothing, or on the object badly
            yield from mo.grip(0.0)
        elif _cm(p, mo.sp) < 1.5 and mo.sp[2] > grasp:      # on the way down to it
            yield from mo.move((p[0], p[1], grasp), yaw, speed=0.012)
            yield from mo.grip(1.0)
            yield from mo.move((p[0], p[1], safe), speed=0.012)
            yield from self.deliver(env, mo)
            return
        if mo.sp[2] < safe - 0.02:                          # rise clear of the scene before crossing it
            yield from mo.move((*mo.sp[:2], safe))
        yield from mo.pick(body, grasp, yaw, lift_z=safe, turn_over=True)
        yield from self.deliver(env, mo)

    def safe_z(self, prm) -> float:
        """The height the expert carries its object at."""
        return SAFE_Z

    def grasp_turn(self, env, yaw: float) -> float:
        """How far to turn the wrist from ``yaw`` to grip the carried object the way it lies."""
        return 0.0

    def place_at(self, prm) -> tuple[np.ndarray, float]:
        """Where the carried object goes (x, y) and the height of what it is set on or into there."""
        raise NotImplementedError

    def deliver(self, env, mo: Motion, carry_z: float | None = None) -> Actions:
        """The expert from the object lifted in hand on (carried at ``carry_z`` instead of ``safe_z`` where given)."""
        raise NotImplementedError

    @staticmethod
    def grasp_z(height: float) -> float:
        """Finger centre height that keeps the fingertips off the table and the palm off the object."""
        return max(height - 0.03, 0.018)


# --------------------------------------------------------------------------- RoboTwin analogs
class PlaceEmptyCup(Task):
    name = "place_empty_cup"
    max_steps = 200

    def layout(self, rng, hard, options):
        r, h = (0.028, 0.07) if not hard else (rng.choice([0.022, 0.033]), rng.choice([0.06, 0.085]))
        cup_c = (0.95, 0.95, 0.97, 1) if not hard else _rand_color(rng)
        cup, coaster = _place_apart(rng, 2, (-0.2, -0.15), (0.2, 0.15), 0.14)
        bodies = [Body("cup", [Geom("cylinder", (r, h / 2), cup_c, name="cup", mass=0.08),
                               Geom("cylinder", (r * 0.7, 0.002), (0.2, 0.2, 0.2, 1), pos=(0, 0, h / 2), collide=False)]),
                  Body("coaster", [Geom("cylinder", (0.045, 0.002), (0.35, 0.2, 0.1, 1), name="coaster")], free=False)]
        poses = {"cup": (*cup, h / 2, 0.0), "coaster": (*coaster, 0.002, 0.0)}
        return Scene(bodies, poses, {"height": h, "coaster": coaster})

    def scores(self, env):
        return {"cup_off_cm": _cm(env.body_pos("cup"), env.scene.params["coaster"])}

    def success(self, env):
        return (self.scores(env)["cup_off_cm"] < 2.5 and env.body_tilt("cup") < UPRIGHT_TOL
                and abs(env.body_bottom("cup") - 0.004) < 0.01 and env.gripper_open())

    carried = "cup"

    def expert(self, env):
        mo = Motion(env, env.task.home())
        yield from mo.pick("cup", self.grasp_z(env.scene.params["height"]))
        yield from self.deliver(env, mo)

    def place_at(self, prm):
        return prm["coaster"], 0.004

    def deliver(self, env, mo, carry_z=None):
        yield from mo.place("cup", *self.place_at(env.scene.params), carry_z=carry_z)
        yield from mo.move(S.HOME[:3])


class MoveCanPot(Task):
    name = "move_can_pot"
    max_steps = 200

    def layout(self, rng, hard, options):
        r, h = (0.025, 0.09) if not hard else (rng.choice([0.021, 0.03]), rng.choice([0.075, 0.11]))
        side = float(rng.choice([-1.0, 1.0]))
        pot = np.array([rng.uniform(-0.06, 0.06), rng.uniform(0.0, 0.1)])
        can = np.array([pot[0] - side * rng.uniform(0.14, 0.2), rng.uniform(-0.16, -0.05)])
        can_c = (0.8, 0.1, 0.1, 1) if not hard else _rand_color(rng)
        pot_c = (0.3, 0.3, 0.32, 1) if not hard else _rand_color(rng)
        bodies = [Body("can", [Geom("cylinder", (r, h / 2), can_c, name="can", mass=0.1)]),
                  Body("pot", [Geom("cylinder", (0.07, 0.04), pot_c, name="pot"),
                               Geom("box", (0.1, 0.012, 0.006), pot_c, pos=(0, 0, 0.03), name="pot_handles")], free=False)]
        poses = {"can": (*can, h / 2, 0.0), "pot": (*pot, 0.04, 0.0)}
        target = pot + np.array([side * 0.135, 0.0])
        return Scene(bodies, poses, {"height": h, "pot": pot, "side": side, "target": target},
                     public={"goal_side": "right" if side > 0 else "left"})

    def scores(self, env):
        return {"can_off_cm": _cm(env.body_pos("can"), env.scene.params["target"])}

    def success(self, env):
        prm = env.scene.params
        d = env.body_pos("can")[:2] - prm["pot"]
        return (np.sign(d[0]) == prm["side"] and 0.09 < np.linalg.norm(d) < 0.2
                and self.scores(env)["can_off_cm"] < 5 and env.body_tilt("can") < UPRIGHT_TOL
                and env.body_bottom("can") < 0.01 and env.gripper_open())

    carried = "can"

    def safe_z(self, prm):
        return max(SAFE_Z, 0.08 + self.grasp_z(prm["height"]) + 0.04)          # carry the can's bottom over the pot

    def expert(self, env):
        mo = Motion(env, env.task.home())
        prm = env.scene.params
        yield from mo.pick("can", self.grasp_z(prm["height"]), lift_z=self.safe_z(prm))
        yield from self.deliver(env, mo)

    def place_at(self, prm):
        return prm["target"], 0.0

    def deliver(self, env, mo, carry_z=None):
        prm = env.scene.params
        yield from mo.place("can", *self.place_at(prm), safe_z=self.safe_z(prm), carry_z=carry_z)
        yield from mo.move(S.HOME[:3])


class PickDualBottles(Task):
    name = "pick_dual_bottles"
    max_steps = 360
    SHELF_TOP = 0.05

    def layout(self, rng, hard, options):
        hs = [0.1, 0.1] if not hard else list(rng.choice([0.085, 0.115], 2))
        rs = [0.02, 0.02] if not hard else list(rng.choice([0.017, 0.024], 2))
        shelf_y = rng.uniform(0.13, 0.17)
        tx = np.sort(rng.uniform(-0.2, 0.2, 2))
        while tx[1] - tx[0] < 0.12:
            tx = np.sort(rng.uniform(-0.2, 0.2, 2))
        starts = _place_apart(rng, 2, (-0.22, -0.17), (0.22, 0.0), 0.1)
        colors = [(0.1, 0.5, 0.9, 1), (0.1, 0.75, 0.3, 1)] if not hard else [_rand_color(rng), _rand_color(rng)]
        bodies = [Body(f"bottle{i}", [Geom("cylinder", (rs[i], hs[i] / 2), colors[i], name=f"bottle{i}", mass=0.08),
                                      Geom("cylinder", (rs[i] * 0.5, 0.008), (0.9, 0.9, 0.9, 1), pos=(0, 0, hs[i] / 2 + 0.008),
                                           collide=False)]) for i in range(2)]
        bodies.append(Body("shelf", [Geom("box", (0.26, 0.055, self.SHELF_TOP / 2), (0.6, 0.55, 0.45, 1), name="shelf")], free=False))
        poses = {f"bottle{i}": (*starts[i], hs[i] / 2, 0.0) for i in range(2)}
        poses["shelf"] = (0.0, shelf_y, self.SHELF_TOP / 2, 0.0)
        targets = [np.array([tx[i], shelf_y]) for i in range(2)]
        return Scene(bodies, poses, {"heights": hs, "targets": targets})

    def scores(self, env):
        return {f"bottle{i}_off_cm": _cm(env.body_pos(f"bottle{i}"), t) for i, t in enumerate(env.scene.params["targets"])}

    def success(self, env):
        off = self.scores(env)
        return all(off[f"bottle{i}_off_cm"] < 3.5 and env.body_bottom(f"bottle{i}") > self.SHELF_TOP - 0.008
                   and env.body_tilt(f"bottle{i}") < UPRIGHT_TOL for i in range(2))

    def expert(self, env):
        mo = Motion(env, env.task.home())
        prm = env.scene.params
        for i in range(2):
            yield from mo.pick(f"bottle{i}", self.grasp_z(prm["heights"][i]), lift_z=0.22)
            yield from mo.place(f"bottle{i}", prm["targets"][i], self.SHELF_TOP, safe_z=0.22)
        yield from mo.move(S.HOME[:3])


class PlaceShoe(Task):
    name = "place_shoe"
    max_steps = 240
    dart_yaw = 0.3              # its policies went to the shoe but not to the heading it lies at,
    dart_free_z = SAFE_Z        # nor turned it to the mat's on the carry (lifted clear: the yaw too)

    def layout(self, rng, hard, options):
        L, W, H = (0.06, 0.024, 0.018) if not hard else (rng.choice([0.052, 0.068]), rng.choice([0.021, 0.028]), 0.02)
        shoe_c = (0.55, 0.3, 0.15, 1) if not hard else _rand_color(rng)
        yaw0 = rng.uniform(-np.pi, np.pi)
        goal_yaw = wrap(yaw0 + rng.uniform(-1.2, 1.2))
        start, target = _place_apart(rng, 2, (-0.2, -0.15), (0.2, 0.14), 0.17)
        bodies = [Body("shoe", [Geom("box", (L, W, H), shoe_c, name="shoe", mass=0.1),
                                Geom("box", (0.018, W * 0.9, 0.004), (0.95, 0.95, 0.95, 1), pos=(L - 0.018, 0, H), collide=False),
                                Geom("box", (0.012, W * 0.7, 0.004), (0.1, 0.1, 0.1, 1), pos=(-L + 0.012, 0, H), collide=False)]),
                  Body("mat", [Geom("box", (L + 0.015, W + 0.012, 0.001), (0.2, 0.45, 0.7, 1), name="mat", collide=False),
                               Geom("box", (0.012, W * 0.8, 0.0012), (0.95, 0.95, 0.95, 1), pos=(L - 0.005, 0, 0.0), collide=False)],
                       free=False)]
        poses = {"shoe": (*start, H, yaw0), "mat": (*target, 0.001, goal_yaw)}
        return Scene(bodies, poses, {"height": 2 * H, "target": target, "goal_yaw": goal_yaw})

    def scores(self, env):
        prm = env.scene.params
        return {"shoe_off_cm": _cm(env.body_pos("shoe"), prm["target"]),
                "shoe_turn_off_deg": float(np.degrees(abs(wrap(env.body_yaw("shoe") - prm["goal_yaw"]))))}

    def success(self, env):
        s = self.scores(env)
        return (s["shoe_off_cm"] < 3 and s["shoe_turn_off_deg"] < 15
                and env.body_tilt("shoe") < UPRIGHT_TOL and env.gripper_open())

    def expert(self, env):
        mo = Motion(env, env.task.home())
        prm = env.scene.params
        yaw = env.body_yaw("shoe")
        grip_yaw = wrap(yaw + np.pi / 2, np.pi)          # close the fingers across the shoe's width
        yield from mo.pick("shoe", self.grasp_z(prm["height"]), grip_yaw)
        turn = wrap(prm["goal_yaw"] - env.body_yaw("shoe"))      # from where the wrist is (DART may turn it)
        yield from mo.place("shoe", prm["target"], 0.0, yaw=float(env.proprio()[3]) + turn)
        yield from mo.move(S.HOME[:3], yaw=0.0)


# --------------------------------------------------------------------------- the real-robot tasks
class PlugIn(Task):
    name = "plug_in"
    max_steps = 260
    dart_max = 0.006            # at 1.5 cm the arm knocked the peg off the table in most runs,
    dart_free_z = SAFE_Z        # but not on the way there, where the policy drifts off the path
    DEPTH = 0.025           # the peg's bottom must be this far below the fixture top
    ALIGN_ABOVE = 0.015     # the expert stops with the peg's bottom this far above the fixture to centre it

    def layout(self, rng, hard, options):
        r, h = (0.011, 0.09) if not hard else (rng.choice([0.009, 0.013]), rng.choice([0.085, 0.1]))
        box_peg = bool(hard and rng.random() < 0.5)
        clear = 0.0035
        hw, t, fh = r + clear, 0.018, 0.05
        peg_c = (0.75, 0.75, 0.8, 1) if not hard else _rand_color(rng)
        fix_c = (0.15, 0.35, 0.2, 1) if not hard else _rand_color(rng)
        peg_geom = Geom("box", (r, r, h / 2), peg_c, name="peg", mass=0.05) if box_peg else \
            Geom("cylinder", (r, h / 2), peg_c, name="peg", mass=0.05)
        walls = [Geom("box", (t, hw + 2 * t, fh / 2), fix_c, pos=(s * (hw + t), 0, 0)) for s in (-1, 1)] + \
                [Geom("box", (hw, t, fh / 2), fix_c, pos=(0, s * (hw + t), 0)) for s in (-1, 1)]
        walls[0].name = "fixture"
        peg, hole = _place_apart(rng, 2, (-0.2, -0.15), (0.2, 0.13), 0.15)
        hole_yaw = rng.uniform(-0.6, 0.6) if box_peg else 0.0
        bodies = [Body("peg", [peg_geom]), Body("fixture", walls, free=False)]
        poses = {"peg": (*peg, h / 2, rng.uniform(-0.6, 0.6) if box_peg else 0.0), "fixture": (*hole, fh / 2, hole_yaw)}
        return Scene(bodies, poses, {"height": h, "hole": hole, "hole_half": hw, "fixture_top": fh,
                                     "box_peg": box_peg, "hole_yaw": hole_yaw},
                     public={"peg": "box" if box_peg else "cylinder"})

    def scores(self, env):
        prm = env.scene.params
        return {"peg_off_cm": _cm(env.body_pos("peg"), prm["hole"]),
                "peg_depth_cm": float((prm["fixture_top"] - env.body_bottom("peg")) * 100)}

    def success(self, env):
        s = self.scores(env)
        return s["peg_off_cm"] < env.scene.params["hole_half"] * 100 and s["peg_depth_cm"] > self.DEPTH * 100

    carried = "peg"

    def safe_z(self, prm):
        return max(SAFE_Z, prm["fixture_top"] + self.grasp_z(prm["height"]) + 0.03)

    def grasp_turn(self, env, yaw):
        return wrap(env.body_yaw("peg") - yaw, np.pi / 2) if env.scene.params["box_peg"] else 0.0

    def expert(self, env):
        mo = Motion(env, env.task.home())
        prm = env.scene.params
        yaw = env.body_yaw("peg") if prm["box_peg"] else 0.0
        yield from mo.pick("peg", self.grasp_z(prm["height"]), wrap(yaw), lift_z=self.safe_z(prm), turn_over=True)
        yield from self.deliver(env, mo)

    def place_at(self, prm):
        return prm["hole"], prm["fixture_top"]

    def deliver(self, env, mo, carry_z=None):
        prm = env.scene.params
        # A square peg fits every quarter turn: the wrist goes to the one within 45° of home, which is the hole's
        # own heading (never more than 34° off), not to the nearest from where the peg was gripped, whose way
        # round flips where the turn nears 45°.
        yaw = wrap(mo.sp[3] + prm["hole_yaw"] - env.body_yaw("peg"), np.pi / 2) if prm["box_peg"] else mo.sp[3]
        hole, top = self.place_at(prm)
        yield from mo.place("peg", hole, top - self.DEPTH - 0.01, yaw=yaw, safe_z=self.safe_z(prm),
                            carry_z=carry_z, turn_over=True, align_z=top + self.ALIGN_ABOVE)
        yield from mo.move(S.HOME[:3])


class Plating(Task):
    name = "plating"
    max_steps = 520
    dart_dims = (0, 1)          # a perturbed height presses the desserts into the plate or drops them
    dart_max = 0.005            # at 1.5 cm across, 9 of 30 runs succeeded; at 5 mm 26 of 30
    PLATE_TOP = 0.012

    def layout(self, rng, hard, options):
        n = int(rng.integers(2, 5))
        plate = np.array([rng.uniform(-0.08, 0.08), rng.uniform(0.04, 0.1)])
        plate_c = (0.96, 0.96, 0.96, 1) if not hard else _rand_color(rng)
        bodies = [Body("plate", [Geom("cylinder", (0.11, self.PLATE_TOP / 2), plate_c, name="plate"),
                                 Geom("cylinder", (0.08, 0.0005), (0.85, 0.85, 0.88, 1), pos=(0, 0, self.PLATE_TOP / 2),
                                      collide=False)], free=False)]
        seen = [("cylinder", (0.018, 0.015)), ("box", (0.017, 0.017, 0.015)), ("cylinder", (0.016, 0.018)),
                ("box", (0.02, 0.014, 0.013))]
        unseen = [("cylinder", (0.021, 0.012)), ("box", (0.014, 0.022, 0.016)), ("box", (0.019, 0.019, 0.011)),
                  ("cylinder", (0.014, 0.02))]
        palette = [(0.95, 0.6, 0.7, 1), (0.55, 0.35, 0.2, 1), (0.98, 0.85, 0.4, 1), (0.6, 0.85, 0.6, 1)]
        kinds = [seen[i] for i in range(n)] if not hard else [unseen[i] for i in rng.choice(4, n, replace=False)]
        starts = _place_apart(rng, n, (-0.25, -0.2), (0.25, -0.02), 0.075, clear_of=[(plate, 0.15)])
        angle0 = rng.uniform(0, 2 * np.pi)
        slots = [plate + 0.065 * np.array([np.cos(a), np.sin(a)]) for a in angle0 + 2 * np.pi * np.arange(n) / n]
        order = rng.permutation(n)
        poses = {"plate": (*plate, self.PLATE_TOP / 2, 0.0)}
        heights, widths = [], []
        for i, (t, size) in enumerate(kinds):
            color = palette[i] if not hard else _rand_color(rng)
            bodies.append(Body(f"dessert{i}", [Geom(t, size, color, name=f"dessert{i}", mass=0.04)]))
            half = size[0] if t == "sphere" else size[-1]
            heights.append(2 * half)
            widths.append(2 * max(size[:2]))
            poses[f"dessert{i}"] = (*starts[i], half, rng.uniform(-np.pi, np.pi))
        return Scene(bodies, poses, {"n": n, "plate": plate, "slots": [slots[j] for j in order], "heights": heights,
                                     "widths": widths},
                     public={"n_desserts": n})

    def scores(self, env):
        return {"worst_dessert_off_cm": max(_cm(env.body_pos(f"dessert{i}"), s)
                                            for i, s in enumerate(env.scene.params["slots"]))}

    def success(self, env):
        return env.gripper_open() and self.scores(env)["worst_dessert_off_cm"] < 2.5 and all(
            env.body_bottom(f"dessert{i}") > self.PLATE_TOP - 0.004 for i in range(env.scene.params["n"]))

    def expert(self, env):
        mo = Motion(env, env.task.home())
        prm = env.scene.params
        for i in range(prm["n"]):
            yaw = wrap(env.body_yaw(f"dessert{i}"))
            yaw = wrap(yaw, np.pi / 2)       # boxes: grip across a face
            # keep the fingers narrow, and radial to the plate when placing, to miss placed neighbours
            narrow = 1.0 - (prm["widths"][i] + 0.03) / (2 * S.FINGER_MAX)
            d = prm["slots"][i] - prm["plate"]
            radial = wrap(np.arctan2(d[1], d[0]), np.pi)
            turn = wrap(radial - yaw, np.pi)
            yield from mo.pick(f"dessert{i}", self.grasp_z(prm["heights"][i]), yaw, open_to=narrow)
            yield from mo.place(f"dessert{i}", prm["slots"][i], self.PLATE_TOP, yaw=yaw + turn, safe_z=0.12,
                                release=narrow)
        yield from mo.move(S.HOME[:3], yaw=0.0)


class Writing(Task):
    """A marker in the gripper draws on a whiteboard. Ink is kinematic: wherever the pen tip is
    within 3 mm of the board surface, a segment is laid down (the pen itself does not collide)."""
    name = "writing"
    max_steps = 900
    marker = True
    dart_dims = (0, 1)          # a perturbed height lifts the pen off the board: gaps in the strokes
    dart_max = 0.004            # the ink must stay within TOL of the strokes
    BOARD_TOP = 0.006
    TIP = 0.042                 # pen tip below the finger centre
    INK_R = 0.0035
    PEN_UP = 0.012

    def workspace(self):
        low, high = super().workspace()
        low[2] = self.BOARD_TOP + self.TIP - 0.004
        low[4] = high[4] = 0.8                   # the marker stays clamped
        return low, high

    def home(self):
        h = super().home()
        h[4] = 0.8
        return h

    def validate_words(self, words):
        if words is None:
            return None
        words = [words] if isinstance(words, str) else list(words)
        if not words:
            raise ValueError("The list of words to write is empty.")
        return [font.validate_word(w) for w in words]

    def layout(self, rng, hard, options):
        if "word" in options:
            word = font.validate_word(options["word"])
        else:
            pool = options.get("words") or None
            if pool is None:
                split = font.WORDS["unseen" if hard else "seen"]
                length = options.get("length") or rng.choice(["short", "medium", "long"])
                if length not in split:
                    raise ValueError(f"Unknown word length {length!r}; choose short, medium or long.")
                pool = split[length]
            word = str(rng.choice(pool))
        board_c = (0.97, 0.97, 0.97, 1) if not hard else (*rng.uniform(0.85, 1.0, 3), 1)
        center = np.array([rng.uniform(-0.03, 0.03), rng.uniform(-0.01, 0.05)])
        bodies = [Body("board", [Geom("box", (0.26, 0.075, self.BOARD_TOP / 2), board_c, name="board")], free=False)]
        poses = {"board": (*center, self.BOARD_TOP / 2, 0.0)}
        strokes = font.word_strokes(word, tuple(center))
        target = np.concatenate([font.sample_polyline(s, 0.004) for s in strokes])
        return Scene(bodies, poses, {"word": word, "strokes": strokes, "target_pts": target, "center": center},
                     public={"word": word, "length": font.length_class(word)})

    def sample(self, rng, mode, words, options):
        if words and "word" not in options:
            options = {**options, "words": words}
        return super().sample(rng, mode, words, options)

    # Success is checked every step, so ink is scored incrementally on a 2 mm raster of the board.
    CELL = 0.002
    TOL = 0.008

    def _cells(self, env, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ij = np.floor((pts - env.scene.params["center"] + (0.28, 0.09)) / self.CELL).astype(int)
        return np.clip(ij[:, 0], 0, 279), np.clip(ij[:, 1], 0, 89)

    @functools.cached_property
    def _disk(self) -> np.ndarray:
        r = int(np.ceil(self.TOL / self.CELL))
        o = np.arange(-r, r + 1)
        return np.argwhere(np.hypot(*np.meshgrid(o, o, indexing="ij")) * self.CELL < self.TOL) - r

    def _stamp(self, grid: np.ndarray, i: np.ndarray, j: np.ndarray) -> None:
        d = self._disk
        grid[np.clip(i[:, None] + d[None, :, 0], 0, 279), np.clip(j[:, None] + d[None, :, 1], 0, 89)] = True

    def on_reset(self, env):
        env.ink = np.zeros((0, 4))              # segments x0, y0, x1, y1
        env._pen_prev = None
        env._near_ink = np.zeros((280, 90), bool)      # cells within TOL of some ink
        near_target = np.zeros((280, 90), bool)
        self._stamp(near_target, *self._cells(env, env.scene.params["target_pts"]))
        env._near_target = near_target
        env._ink_counts = [0, 0]                # ink samples near the target, all ink samples

    def on_step(self, env):
        tip = env.data.site("pen_tip").xpos
        if tip[2] > self.BOARD_TOP + 0.003:
            env._pen_prev = None
            return
        xy = tip[:2].copy()
        prev = env._pen_prev if env._pen_prev is not None else xy
        env._pen_prev = xy
        if len(env.ink) and np.allclose(env.ink[-1, 2:], prev) and self._collinear(env.ink[-1], xy):
            env.ink[-1, 2:] = xy                 # extend a straight run: fewer geoms to draw
        else:
            env.ink = np.vstack([env.ink, [*prev, *xy]])
        pts = font.sample_polyline(np.array([prev, xy]), 0.004)[(0 if len(env.ink) == 1 else 1):]
        i, j = self._cells(env, pts)
        self._stamp(env._near_ink, i, j)
        env._ink_counts[0] += int(env._near_target[i, j].sum())
        env._ink_counts[1] += len(pts)

    @staticmethod
    def _collinear(seg: np.ndarray, xy: np.ndarray) -> bool:
        a, b = seg[2:] - seg[:2], xy - seg[2:]
        na, nb = np.linalg.norm(a), np.linalg.norm(b)
        return na > 1e-6 and nb > 1e-6 and abs(a[0] * b[1] - a[1] * b[0]) < 0.02 * na * nb and a @ b > 0

    def decorate(self, env, scn):
        z = self.BOARD_TOP + 0.0006
        zero, eye, ink = np.zeros(3), np.eye(3).ravel(), np.array([0.08, 0.1, 0.45, 1], np.float32)
        for x0, y0, x1, y1 in env.ink:
            if scn.ngeom >= scn.maxgeom:
                break
            g = scn.geoms[scn.ngeom]
            mujoco.mjv_initGeom(g, mujoco.mjtGeom.mjGEOM_CAPSULE, zero, zero, eye, ink)
            mujoco.mjv_connector(g, mujoco.mjtGeom.mjGEOM_CAPSULE, self.INK_R, np.array([x0, y0, z]),
                                 np.array([x1 + 1e-6, y1, z]))
            scn.ngeom += 1

    def scores(self, env):
        """The fraction of the goal word's strokes that ink covers, and of the ink that lies on them, within 8 mm."""
        if env._ink_counts[1] == 0:
            return {"coverage": 0.0, "precision": 0.0}
        coverage = env._near_ink[self._cells(env, env.scene.params["target_pts"])].mean()
        return {"coverage": float(coverage), "precision": env._ink_counts[0] / env._ink_counts[1]}

    def success(self, env):
        s = self.scores(env)
        return s["coverage"] >= 0.9 and s["precision"] >= 0.9

    def expert(self, env):
        mo = Motion(env, env.task.home())
        down = self.BOARD_TOP + self.TIP
        for stroke in env.scene.params["strokes"]:
            yield from mo.move((*stroke[0], down + self.PEN_UP), speed=0.02, tol=0.006, max_wait=4)
            yield from mo.move((*stroke[0], down - 0.001), tol=0.002, max_wait=4)
            for p in stroke[1:]:
                yield from mo.move((*p, down - 0.001), speed=0.01, tol=0.003, max_wait=3)
            yield from mo.move((*stroke[-1], down + self.PEN_UP), tol=0.006, max_wait=3)
        yield from mo.move(S.HOME[:3])


TASKS: dict[str, Task] = {t.name: t for t in (Writing(), Plating(), PlugIn(), MoveCanPot(), PickDualBottles(),
                                                PlaceEmptyCup(), PlaceShoe())}
