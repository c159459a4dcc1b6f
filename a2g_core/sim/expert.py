"""Motion primitives the scripted experts are written in.

An expert is a generator of actions that reads simulator state between steps (privileged, as
RoboTwin's experts are), so grasps and placements correct for where things really are.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

Actions = Iterator[np.ndarray]

SAFE_Z = 0.16
SPEED = 0.016          # m per control step (0.32 m/s)
YAW_SPEED = 0.2        # rad per control step
TURN_OVER_SPEED = 0.05  # rad per control step for a turn over the place: each chunk's share is read from frames
                        # that show the turn so far, not the whole turn from the frame before it starts
ALIGN_SPEED = 0.006     # m per control step for the last way down after ``place(align_z=...)`` stopped to centre


def wrap(a: float, period: float = 2 * np.pi) -> float:
    """``a`` moved by whole periods into [-period/2, period/2): an angle's nearest way round (a half
    turn's period for a two-finger grip, a quarter's for a square peg)."""
    return float((a + period / 2) % period - period / 2)


class Motion:
    """Keeps the commanded set-point and walks it towards targets at a bounded speed."""

    def __init__(self, env, start: np.ndarray):
        self.env = env
        self.sp = np.asarray(start, dtype=np.float64).copy()

    def move(self, xyz=None, yaw=None, speed=SPEED, tol=0.004, max_wait=15, yaw_speed=YAW_SPEED) -> Actions:
        target = self.sp.copy()
        if xyz is not None:
            target[:3] = xyz
        if yaw is not None:
            target[3] = yaw
        while True:
            d = target[:3] - self.sp[:3]
            n = np.linalg.norm(d)
            self.sp[:3] = target[:3] if n <= speed else self.sp[:3] + d / n * speed
            dy = target[3] - self.sp[3]
            self.sp[3] = target[3] if abs(dy) <= yaw_speed else self.sp[3] + np.sign(dy) * yaw_speed
            yield self.sp.copy()
            if n <= speed and abs(dy) <= yaw_speed:
                break
        for _ in range(max_wait):      # let the arm catch up with the set-point
            if np.linalg.norm(self.env.proprio()[:3] - target[:3]) < tol:
                break
            yield self.sp.copy()

    def grip(self, value: float, steps: int = 7) -> Actions:
        self.sp[4] = value
        for _ in range(steps):
            yield self.sp.copy()

    def hold(self, steps: int) -> Actions:
        for _ in range(steps):
            yield self.sp.copy()

    def pick(self, body: str, grasp_z: float, yaw: float = 0.0, lift_z: float = SAFE_Z, open_to: float = 0.0,
             turn_over: bool = False) -> Actions:
        """Grasp ``body`` with the finger centre at height ``grasp_z`` and lift it to ``lift_z``.
        ``open_to`` is the gripper command on approach (0 = wide open; more keeps the fingers narrow).
        The wrist turns to ``yaw`` on the way over, or with ``turn_over`` only once it is over the object, as the
        descent starts, where the wrist camera sees what it turns to (a small object's heading is a pixel or two in
        the head camera's view at 64 px)."""
        p = self.env.body_pos(body)
        yield from self.grip(open_to, steps=1)
        yield from self.move((p[0], p[1], SAFE_Z), None if turn_over else yaw)
        p = self.env.body_pos(body)                           # correct for anything that moved
        yield from self.move((p[0], p[1], grasp_z), yaw if turn_over else None, speed=0.012)
        yield from self.grip(1.0)
        yield from self.move((p[0], p[1], lift_z), speed=0.012)

    def place(self, body: str, xy, bottom_z: float, yaw: float | None = None, safe_z: float = SAFE_Z,
              release: float = 0.0, carry_z: float | None = None, turn_over: bool = False,
              align_z: float | None = None) -> Actions:
        """Carry the held ``body`` so that its frame lands over ``xy`` with its bottom at ``bottom_z``, release.
        It is carried at ``safe_z``, or at ``carry_z`` where given (an expert taking over near the place). The wrist
        turns to ``yaw`` on the way, or with ``turn_over`` only once over the place, slowly, where the wrist camera
        sees what it turns to (as ``pick``'s). With ``align_z`` it stops on the way down with the object's bottom at
        that height, centres it over ``xy`` again from where it hangs in the fingers, and goes on down slowly."""
        def over_xy():              # the hand's x-y that puts the object over ``xy``, from where it sits in the hand
            return tuple(np.asarray(xy[:2]) - (self.env.body_pos(body)[:2] - self.env.proprio()[:2]))

        yield from self.move((*over_xy(), safe_z if carry_z is None else carry_z), None if turn_over else yaw)
        if turn_over and yaw is not None and yaw != self.sp[3]:          # no turn (a round peg) adds no step
            yield from self.move(yaw=yaw, max_wait=3, yaw_speed=TURN_OVER_SPEED)
        below = self.env.proprio()[2] - self.env.body_bottom(body)      # finger centre above the object's bottom
        target = over_xy()
        if align_z is not None:
            yield from self.move((*target, align_z + below), speed=0.01)
            target = over_xy()
            yield from self.move((*target, align_z + below), tol=0.002, max_wait=4)
        yield from self.move((*target, bottom_z + below + 0.004), speed=0.01 if align_z is None else ALIGN_SPEED)
        yield from self.grip(release, steps=6)
        yield from self.move((*target, safe_z), speed=0.012)
