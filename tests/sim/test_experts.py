import numpy as np
import pytest

from a2g_core.sim import MODES, TASKS, make_env
from a2g_core.sim.expert import ALIGN_SPEED, SAFE_Z
from a2g_core.sim.rollout import GRIP_CLOSED, grasp_steps, run_expert


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("task", list(TASKS))
def test_expert_succeeds(task, mode):
    env = make_env(task, mode, 64)
    for seed in (11, 12):
        ep = run_expert(env, seed)
        assert ep.success, f"expert failed on {task}/{mode} seed {seed}"
        assert len(ep) < env.max_steps
        # the goal is the final frame, and the episode ends at rest on it
        assert (ep.goal["head"] == ep.frames["head"][-1]).all()
    env.close()


@pytest.mark.parametrize("task", list(TASKS))
def test_scores_tell_how_near_the_scene_is_to_success(task):
    env = make_env(task, "easy", 64)
    env.reset(seed=11)
    start = env.task.scores(env)
    assert run_expert(env, 11).success
    end = env.task.scores(env)
    env.close()
    assert start and set(start) == set(end)
    for name in start:
        if name.endswith("_off_cm"):                    # every object starts far from its place and ends on it
            assert start[name] > 8 and end[name] < 2.5, name
        elif name.endswith("_deg"):
            assert end[name] < 15, name
        elif name == "peg_depth_cm":
            assert end[name] > 2.5
        else:                                           # writing: no ink, then the word
            assert start[name] == 0 and end[name] >= 0.9, name


def test_expert_noise_perturbs_execution_but_records_the_expert_command():
    env = make_env("place_empty_cup", "easy", 64)
    clean = run_expert(env, 3)
    noisy = run_expert(env, 3, noise=0.015)
    again = run_expert(env, 3, noise=0.015)
    env.close()
    assert np.array_equal(noisy.states, again.states)              # seeded: the same perturbation
    # the first move's set-points do not depend on the arm: the recorded actions are the expert's own
    # commands (equal to the clean run's), while the arm was pushed off that path
    assert np.allclose(noisy.actions[:10], clean.actions[:10])
    assert np.abs(noisy.states[1:11, :3] - clean.states[1:11, :3]).max() > 0.005
    assert noisy.info["expert_noise"] == 0.015 and "expert_noise" not in clean.info


def test_writing_expert_noise_keeps_the_pen_on_the_board():
    """Writing bounds DART noise to the board's plane and to 4 mm (Task.dart_dims, dart_max): the
    make-file's 0.015 m on every axis lifted the pen and smeared the strokes, and no episode succeeded."""
    env = make_env("writing", "easy", 64)
    clean = run_expert(env, 1000)
    noisy = run_expert(env, 1000, noise=0.015)
    env.close()
    assert noisy.success and noisy.info["expert_noise"] == 0.004
    # heights follow the clean run's where the set-points agree (the first move), positions do not
    assert np.allclose(noisy.actions[:5], clean.actions[:5])
    assert np.abs(noisy.states[1:6, 2] - clean.states[1:6, 2]).max() < 1e-3
    assert np.abs(noisy.states[1:11, :2] - clean.states[1:11, :2]).max() > 0.001


@pytest.mark.parametrize("task, seed, cap", [("plug_in", 1002, 0.006), ("plating", 1000, 0.005)])
def test_expert_noise_is_capped_where_the_expert_still_succeeds(monkeypatch, task, seed, cap):
    """plug_in and plating cap DART noise (Task.dart_max): at the make-file's 0.015 m the arm knocked
    plug_in's peg off the table (5 of 30 runs succeeded), and 9 of 30 plating runs succeeded."""
    env = make_env(task, "easy", 64)
    capped = run_expert(env, seed, noise=0.015)
    monkeypatch.setattr(env.task, "dart_max", float("inf"))
    free = run_expert(env, seed, noise=0.015)
    env.close()
    assert capped.success and capped.info["expert_noise"] == cap
    assert not free.success and free.info["expert_noise"] == 0.015


def test_plug_in_expert_noise_is_full_on_the_approach(monkeypatch):
    """Above SAFE_Z (Task.dart_free_z) the arm is clear of the peg, so plug_in's cap is lifted there: the
    data shows the way back from the 2-5 cm drifts its policies made on the approach."""
    env = make_env("plug_in", "easy", 64)
    clean = run_expert(env, 1002)
    approach = run_expert(env, 1002, noise=0.015)
    monkeypatch.setattr(env.task, "dart_free_z", float("inf"))
    capped = run_expert(env, 1002, noise=0.015)
    env.close()
    assert clean.actions[:8, 2].min() >= SAFE_Z                     # the first steps are all approach
    off = [np.abs(e.states[1:9, :2] - clean.states[1:9, :2]).max() for e in (approach, capped)]
    assert off[0] > 2 * off[1] > 0                                   # the same draw, 2.5 times larger
    assert approach.success


def test_plug_in_expert_turns_to_a_square_peg_and_to_its_hole_only_over_them():
    """The wrist keeps its heading on the way over and turns as the descent starts, where the wrist camera sees
    the peg's (at 64 px the head camera shows it as a pixel or two); it carries the peg at that heading and turns
    it to the hole's once over the hole, slowly, where the wrist camera sees the fixture."""
    env = make_env("plug_in", "hard", 64)
    seed = next(s for s in range(10000, 10020) if env.reset(seed=s) and env.scene.params["box_peg"]
                and abs(env.scene.params["hole_yaw"] - env.body_yaw("peg")) > np.radians(10))
    peg, peg_yaw, hole = env.body_pos("peg"), env.body_yaw("peg"), env.scene.params["hole"]
    ep = run_expert(env, seed)
    env.close()
    yaw = ep.actions[:, 3]
    turn = int(np.argmax(np.abs(yaw) > 1e-3))
    assert ep.success and abs(peg_yaw) > np.radians(5)
    assert turn > 5 and (yaw[:turn] == 0).all()
    assert np.linalg.norm(ep.states[turn, :2] - peg[:2]) < 0.01 and ep.actions[turn, 2] < SAFE_Z
    assert ep.actions[turn + 5, 4] < GRIP_CLOSED                      # turned before the fingers close
    carried = np.flatnonzero(ep.actions[:, 4] > GRIP_CLOSED)
    second = carried[0] + int(np.argmax(np.abs(np.diff(yaw[carried])) > 1e-3)) + 1
    assert second > carried[0] + 10 and np.allclose(yaw[carried[0]:second], yaw[carried[0]])
    assert np.linalg.norm(ep.actions[second, :2] - hole) < 0.02 and ep.actions[second, 2] >= SAFE_Z
    assert (np.abs(np.diff(yaw[carried])) > 1e-3).sum() >= 4          # slowly: a chunk's share shows in its frames


def test_plug_in_expert_turns_to_the_holes_heading_and_centres_the_peg_over_the_hole():
    """A square peg fits every quarter turn: the expert turns the wrist to the one within 45° of home, the hole's
    own heading, even where that is more than 45° from the grasp's (the nearest turn from the grasp flips its way
    round near 45°, and policies trained on it missed those). Over the hole it stops just above the fixture,
    still, and goes in slowly."""
    env = make_env("plug_in", "hard", 64)
    seed = next(s for s in range(10000, 10100) if env.reset(seed=s) and env.scene.params["box_peg"]
                and abs(env.scene.params["hole_yaw"] - env.body_yaw("peg")) > np.radians(45))
    hole_yaw, grasp_yaw = env.scene.params["hole_yaw"], env.body_yaw("peg")
    ep = run_expert(env, seed)
    env.close()
    carried = np.flatnonzero(ep.actions[:, 4] > GRIP_CLOSED)
    yaw, z = ep.actions[carried, 3], ep.actions[carried, 2]
    assert ep.success and abs(np.degrees(yaw[-1] - hole_yaw)) < 3 and abs(yaw[-1] - grasp_yaw) > np.radians(45)
    down = -np.diff(z)
    fast, slow = np.flatnonzero(np.isclose(down, 0.01)), np.flatnonzero(np.isclose(down, ALIGN_SPEED))
    assert len(fast) and len(slow) >= 5 and fast[-1] < slow[0]
    between = down[fast[-1] + 1:slow[0]]
    assert (between < 0.01).all() and np.isclose(between, 0).any()                    # it stops to centre


def test_place_shoe_expert_noise_turns_the_open_and_the_lifted_wrist(monkeypatch):
    """place_shoe perturbs the wrist's yaw too (Task.dart_yaw) while the gripper is open and while it carries
    the shoe clear of the table (Task.dart_free_z): its policies went to the shoe but neither gripped it the
    way it lies nor turned it to the mat's heading, and yaw-free DART data never shows the way back to either.
    The expert turns the shoe from where the wrist really is, so it still succeeds. The position's draw is
    its own, so it is the same with or without the yaw's."""
    env = make_env("place_shoe", "easy", 64)
    clean = run_expert(env, 3000)
    turned = run_expert(env, 3000, noise=0.015)
    monkeypatch.setattr(env.task, "dart_yaw", 0.0)
    straight = run_expert(env, 3000, noise=0.015)
    env.close()
    assert turned.success and turned.info["expert_yaw_noise"] == 0.3 and "expert_yaw_noise" not in straight.info
    assert np.allclose(turned.actions[:10], clean.actions[:10])        # the expert's own commands are recorded
    assert np.allclose(turned.states[1:11, :3], straight.states[1:11, :3], atol=1e-4)

    def yaw_off(e, phase):                                             # degrees, over the steps of a phase
        return np.degrees(np.abs(e.states[1:, 3] - e.actions[:, 3])[phase(e.actions)]).max()
    opened = lambda a: a[:, 4] <= GRIP_CLOSED
    carried = lambda a: (a[:, 4] > GRIP_CLOSED) & (a[:, 2] >= SAFE_Z)
    assert carried(clean.actions).sum() > 10
    for phase in (opened, carried):
        assert np.isclose(yaw_off(straight, phase), yaw_off(clean, phase), atol=0.5)   # only the servo's lag
        assert yaw_off(turned, phase) > 3 * yaw_off(straight, phase)    # measured 27 and 35 against 5


def test_yaw_noise_turns_the_open_wrist_on_any_task():
    """gen-data --yaw-noise sets the wrist's DART share where a task has none of its own (plug_in's square peg
    lies turned; yaw-free data never shows the wrist turning back to it). The position's draw stays the same."""
    env = make_env("plug_in", "hard", 64)
    straight = run_expert(env, 1005, noise=0.015)
    turned = run_expert(env, 1005, noise=0.015, yaw_noise=0.3)
    env.close()
    assert "expert_yaw_noise" not in straight.info and turned.info["expert_yaw_noise"] == 0.3
    assert np.abs(turned.states[1:11, 3] - straight.states[1:11, 3]).max() > 0.02     # the open wrist turned
    assert np.allclose(turned.states[1:4, :3], straight.states[1:4, :3], atol=2e-3)  # the same path's start


@pytest.mark.parametrize("task", ["plug_in", "place_empty_cup", "move_can_pot"])
@pytest.mark.parametrize("phase,drop", [("over", False), ("held", False), ("held", True), ("placing", False)])
def test_recover_takes_over_from_wherever_the_object_is(task, phase, drop):
    """Stopped on the way over, with the object held (or let go of there, so it falls back to the table) and while
    setting it down, the expert carries on from the scene as it is and succeeds (plug_in: a square peg)."""
    env = make_env(task, "hard", 64)
    seed = next(s for s in range(10000, 10020) if env.reset(seed=s) and env.scene.params.get("box_peg", True))
    shut, release = grasp_steps(run_expert(env, seed).actions)
    steps = {"over": shut - 12, "held": shut + 15, "placing": release - 3}[phase]
    env.reset(seed=seed)
    for _, a in zip(range(steps), env.task.expert(env)):
        env.step(a)
    if drop:
        for _ in range(25):
            env.step(np.append(env.proprio()[:4], 0.0))
        assert env.body_bottom(env.task.carried) < 0.002                 # back on the table
    assert not env.task.success(env)
    plan = env.task.recover(env)
    first = next(plan)
    assert (first[4] > GRIP_CLOSED) == (phase != "over" and not drop)       # a held object is kept hold of
    env.step(first)
    for a in plan:                                  # the plan reads the scene between steps
        env.step(a)
    ok = env.task.success(env)
    env.close()
    assert ok


def test_plug_in_recover_gives_up_on_a_fallen_peg():
    import mujoco
    env = make_env("plug_in", "easy", 64)
    env.reset(seed=0)
    adr = env.model.joint(env.model.body("peg").jntadr[0]).qposadr[0]
    env.data.qpos[adr + 2] = 0.02
    env.data.qpos[adr + 3:adr + 7] = (np.cos(np.pi / 4), np.sin(np.pi / 4), 0, 0)     # lying on its side
    mujoco.mj_forward(env.model, env.data)
    assert env.task.recover(env) is None
    assert TASKS["plating"].recover(env) is None                                    # plating has no such expert
    env.close()
