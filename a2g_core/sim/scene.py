"""MJCF for the tabletop: a table, a Cartesian arm with a yaw wrist and a parallel gripper, two cameras.

The arm is four actuated joints (x, y, z slides and a yaw hinge) whose positions *are* the
end-effector pose, so end-effector control needs no inverse kinematics; the gripper is two coupled
finger slides under one position actuator with a force limit, so grasps hold by friction.
Render settings follow DESIGN.md (no shadows, coarse tessellation, offscreen buffer = largest view).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONTROL_HZ = 20
PHYSICS_DT = 0.002
SUBSTEPS = int(round(1 / (CONTROL_HZ * PHYSICS_DT)))   # 25 physics steps per control step

FINGER_MAX = 0.045      # opening of one finger (m); the gap is twice this
HOME = np.array([0.0, 0.17, 0.22, 0.0, 0.0])   # x, y, z, yaw, grip (0 open, 1 closed)
WORKSPACE_LOW = np.array([-0.30, -0.22, 0.005, -np.pi, 0.0])
WORKSPACE_HIGH = np.array([0.30, 0.22, 0.30, np.pi, 1.0])

HEAD_CAM_POS = np.array([0.0, -0.38, 0.68])
HEAD_CAM_TARGET = np.array([0.0, 0.03, 0.0])
WRIST_CAM_POS = np.array([0.0, -0.04, 0.05])   # in the wrist frame, looking past the fingers


def look_at_xyaxes(pos: np.ndarray, target: np.ndarray) -> np.ndarray:
    """MuJoCo ``xyaxes`` for a camera at ``pos`` looking at ``target`` with world z up."""
    fwd = (target - pos) / np.linalg.norm(target - pos)
    x = np.cross(fwd, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(x, fwd)
    return np.concatenate([x, y])


def fmt(v) -> str:
    return " ".join(f"{float(a):.5g}" for a in np.atleast_1d(v))


@dataclass
class Geom:
    """One geom of a body. ``size`` as MuJoCo's; ``collide`` False makes it visual only."""
    type: str
    size: tuple
    rgba: tuple = (0.8, 0.8, 0.8, 1.0)
    pos: tuple = (0.0, 0.0, 0.0)
    euler: tuple = (0.0, 0.0, 0.0)
    name: str | None = None
    collide: bool = True
    mass: float | None = None

    def xml(self) -> str:
        name = f' name="{self.name}"' if self.name else ""
        col = "" if self.collide else ' contype="0" conaffinity="0"'
        mass = f' mass="{self.mass:.4g}"' if self.mass is not None else ""
        return (f'<geom{name} type="{self.type}" size="{fmt(self.size)}" pos="{fmt(self.pos)}" '
                f'euler="{fmt(self.euler)}" rgba="{fmt(self.rgba)}"{col}{mass}/>')


@dataclass
class Body:
    """A body placed by the task at reset: free (a freejoint, physics moves it) or static."""
    name: str
    geoms: list[Geom]
    free: bool = True

    def xml(self) -> str:
        joint = f'<freejoint name="{self.name}"/>' if self.free else ""
        inner = "".join(g.xml() for g in self.geoms)
        return f'<body name="{self.name}" pos="0 0 -1">{joint}{inner}</body>'


def build_xml(bodies: list[Body], resolution: int, *, hard: bool, marker: bool = False) -> str:
    """The whole scene. ``hard`` adds a textured table (colours are randomised at reset).
    ``marker`` puts a pen in the gripper for the writing task (visual only: ink is kinematic)."""
    cam = look_at_xyaxes(HEAD_CAM_POS, HEAD_CAM_TARGET)
    table_mat = 'material="table"' if hard else 'rgba="0.55 0.45 0.35 1"'
    marker_xml = (
        '<geom name="marker" type="capsule" size="0.007 0.03" pos="0 0 -0.005" rgba="0.1 0.1 0.6 1" '
        'contype="0" conaffinity="0"/><site name="pen_tip" pos="0 0 -0.042" size="0.003"/>'
        if marker else "")
    return f"""
<mujoco model="a2g_tabletop">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{PHYSICS_DT}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual>
    <quality offsamples="0" numslices="12" numstacks="6" shadowsize="0"/>
    <global offwidth="{resolution}" offheight="{resolution}"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.4 0.4 0.4" specular="0 0 0"/>
  </visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" width="64" height="64" rgb1="0.3 0.32 0.35" rgb2="0.25 0.27 0.3"/>
    <material name="floor" texture="grid" texrepeat="4 4"/>
    <texture name="tabletex" type="2d" builtin="checker" width="64" height="64" rgb1="1 1 1" rgb2="0.75 0.75 0.75"/>
    <material name="table" texture="tabletex" texrepeat="6 6"/>
  </asset>
  <default>
    <geom friction="1.2 0.01 0.001" condim="4" solref="0.01 1"/>
  </default>
  <worldbody>
    <light name="key" pos="0.3 -0.3 1.2" dir="-0.25 0.25 -1" directional="true" castshadow="false" diffuse="0.6 0.6 0.6"/>
    <geom name="floor" type="plane" size="2 2 0.1" pos="0 0 -0.75" material="floor"/>
    <geom name="table" type="box" size="0.42 0.36 0.02" pos="0 0.02 -0.02" {table_mat}/>
    <camera name="head" pos="{fmt(HEAD_CAM_POS)}" xyaxes="{fmt(cam)}" fovy="46"/>
    <body name="carriage" gravcomp="1">
      <inertial pos="0 0 0" mass="1" diaginertia="0.01 0.01 0.01"/>
      <joint name="x" type="slide" axis="1 0 0" range="-0.32 0.32" armature="0.5" damping="5"/>
      <body name="boom" gravcomp="1">
        <inertial pos="0 0 0" mass="1" diaginertia="0.01 0.01 0.01"/>
        <joint name="y" type="slide" axis="0 1 0" range="-0.24 0.24" armature="0.5" damping="5"/>
        <body name="lift" gravcomp="1">
          <inertial pos="0 0 0" mass="1" diaginertia="0.01 0.01 0.01"/>
          <joint name="z" type="slide" axis="0 0 1" range="-0.01 0.32" armature="0.5" damping="5"/>
          <geom type="cylinder" size="0.018 0.2" pos="0 0 0.26" rgba="0.85 0.85 0.88 1" contype="0" conaffinity="0"/>
          <geom type="box" size="0.02 0.3 0.02" pos="0 0.3 0.46" rgba="0.85 0.85 0.88 1" contype="0" conaffinity="0"/>
          <body name="wrist" gravcomp="1">
            <inertial pos="0 0 0.04" mass="0.3" diaginertia="0.001 0.001 0.001"/>
            <joint name="yaw" type="hinge" axis="0 0 1" range="-3.1416 3.1416" armature="0.01" damping="0.2"/>
            <geom name="palm" type="box" size="0.058 0.022 0.012" pos="0 0 0.047" rgba="0.25 0.25 0.28 1"/>
            <geom type="cylinder" size="0.022 0.015" pos="0 0 0.072" rgba="0.35 0.35 0.4 1" contype="0" conaffinity="0"/>
            <site name="ee" pos="0 0 0" size="0.004" rgba="1 0 0 0"/>
            <camera name="wrist" pos="{fmt(WRIST_CAM_POS)}" xyaxes="{fmt(look_at_xyaxes(WRIST_CAM_POS, np.array([0.0, 0.02, -0.06])))}" fovy="75"/>
            {marker_xml}
            <body name="finger_l" gravcomp="1">
              <inertial pos="0 0 0" mass="0.05" diaginertia="1e-5 1e-5 1e-5"/>
              <joint name="finger_l" type="slide" axis="1 0 0" range="0 {FINGER_MAX}" armature="0.01" damping="1"/>
              <geom name="finger_l" type="box" size="0.005 0.012 0.024" pos="0.005 0 0.011" rgba="0.9 0.55 0.1 1" friction="2 0.02 0.001"/>
            </body>
            <body name="finger_r" gravcomp="1">
              <inertial pos="0 0 0" mass="0.05" diaginertia="1e-5 1e-5 1e-5"/>
              <joint name="finger_r" type="slide" axis="-1 0 0" range="0 {FINGER_MAX}" armature="0.01" damping="1"/>
              <geom name="finger_r" type="box" size="0.005 0.012 0.024" pos="-0.005 0 0.011" rgba="0.9 0.55 0.1 1" friction="2 0.02 0.001"/>
            </body>
          </body>
        </body>
      </body>
    </body>
    {"".join(b.xml() for b in bodies)}
  </worldbody>
  <equality>
    <joint joint1="finger_l" joint2="finger_r" polycoef="0 1 0 0 0" solref="0.005 1"/>
  </equality>
  <contact>
    <exclude body1="finger_l" body2="finger_r"/>
  </contact>
  <actuator>
    <position name="x" joint="x" kp="3000" dampratio="1" ctrlrange="-0.32 0.32"/>
    <position name="y" joint="y" kp="3000" dampratio="1" ctrlrange="-0.24 0.24"/>
    <position name="z" joint="z" kp="3000" dampratio="1" ctrlrange="-0.01 0.32"/>
    <position name="yaw" joint="yaw" kp="30" dampratio="1" ctrlrange="-3.1416 3.1416"/>
    <position name="grip" joint="finger_l" kp="400" dampratio="1" ctrlrange="0 {FINGER_MAX}" forcerange="-25 25"/>
  </actuator>
</mujoco>
"""
