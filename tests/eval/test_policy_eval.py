"""Closed-loop episodes: one scene per seed, or one scenario with the policy's noise drawn per episode."""
import numpy as np

from a2g_core.eval.policy_eval import (at_workspace_edge, by_scene, evaluate, grasp_at_place, grasp_turn_deg,
                                      load_policy, run_episode)
from a2g_core.sim import make_env
from a2g_core.sim.rollout import expert_goal, expert_grasp, first_grasp, run_expert


def test_a_scenario_keeps_the_scene_and_draws_the_noise(tiny_policy_dir):
    policy, env = load_policy(tiny_policy_dir), make_env("place_empty_cup", "hard", 64)
    goal, _ = expert_goal("place_empty_cup", "hard", 7, 64)
    play = lambda noise: run_episode(policy, env, 7, goal, max_steps=12, record=True, noise_seed=noise)["episode"]
    a, b, again = play(1), play(2), play(1)
    for view, frames in a.frames.items():                 # the same scene (hard mode: colours, camera, pixel noise)
        np.testing.assert_array_equal(frames[0], b.frames[view][0])
    assert not np.allclose(a.actions, b.actions)          # other noise, other actions
    np.testing.assert_array_equal(a.actions, again.actions)

    rep = evaluate(tiny_policy_dir, task="place_empty_cup", mode="hard", episodes=2, scenario=7, max_steps=6)
    assert [(r["seed"], r["noise_seed"]) for r in rep["results"]] == [(7, 10_000), (7, 10_001)]
    rep = evaluate(tiny_policy_dir, task="place_empty_cup", mode="hard", episodes=2, max_steps=6)
    assert [(r["seed"], r["noise_seed"]) for r in rep["results"]] == [(10_000, 10_000), (10_001, 10_001)]
    offs = sorted(r["scores"]["cup_off_cm"] for r in rep["results"])     # 6 steps: both cups still where they started
    assert offs[0] > 8 and rep["scores"] == rep["failed_scores"] == {"cup_off_cm": (offs[0] + offs[1]) / 2}


def test_first_grasp_is_where_the_gripper_first_shuts_after_being_open():
    states = np.arange(6 * 5, dtype=np.float32).reshape(6, 5)
    grip = lambda *g: np.array([[0, 0, 0, 0, x] for x in g], np.float32)
    np.testing.assert_array_equal(first_grasp(states, grip(0, 0, 1, 1, 0)), states[2, :4])   # x, y, z, yaw
    assert first_grasp(states, grip(0, 0, 0, 0, 0)) is None          # never shut
    assert first_grasp(states, grip(1, 1, 1, 1, 1)) is None          # holding a tool from the start (writing)
    np.testing.assert_array_equal(first_grasp(states, grip(1, 0, 0, 1, 1)), states[3, :4])


def test_a_grasp_turn_is_the_wrist_yaw_off_the_expert_s_modulo_a_half_turn():
    at = lambda yaw: np.array([0.0, 0.0, 0.04, yaw])
    assert grasp_turn_deg(at(0.1), at(0.1 + np.pi)) < 1e-9             # the fingers are alike: the same grip
    assert abs(grasp_turn_deg(at(0.0), at(np.pi / 2)) - 90) < 1e-9      # across against along
    assert abs(grasp_turn_deg(at(-1.5), at(1.5)) - np.degrees(np.pi - 3.0)) < 1e-9   # the near way round
    assert abs(grasp_turn_deg(at(0.2), at(-0.2)) - np.degrees(0.4)) < 1e-9


def test_a_grasp_at_the_place_is_near_where_the_expert_lets_go():
    taken, let_go = np.array([0.0, 0.0, 0.04]), np.array([0.2, 0.0, 0.04])
    assert grasp_at_place(np.array([0.19, 0.01, 0.02]), taken, let_go)
    assert not grasp_at_place(np.array([0.01, 0.0, 0.04]), taken, let_go)       # at the object
    assert not grasp_at_place(np.array([0.1, 0.1, 0.02]), taken, let_go)        # nowhere near either
    assert not grasp_at_place(np.array([0.015, 0.0, 0.02]), taken, np.array([0.04, 0.0, 0.0]))   # nearer the object


def test_replaying_the_expert_grasps_where_the_expert_did():
    class Replay:                                        # the policy contract's two closed-loop calls
        def reset(self, seed):
            self.i = 0

        def select_action(self, obs, goal):
            self.i += 1
            return ep.actions[min(self.i, len(ep.actions)) - 1]

    env = make_env("place_empty_cup", "easy", 64)
    ep = run_expert(env, 3)
    want, let_go = expert_grasp("place_empty_cup", "easy", 3, 64)
    assert want[2] < 0.1                                   # the expert shuts low, at the cup
    assert np.linalg.norm(let_go[:2] - want[:2]) > 0.1     # and lets go on the coaster, apart
    out = run_episode(Replay(), env, 3, expert_goal("place_empty_cup", "easy", 3, 64)[0])
    assert out["success"] and out["scores"]["cup_off_cm"] < 2.5 and not out["at_edge"]
    np.testing.assert_allclose(out["grasp"], want, atol=1e-4)


def test_an_arm_that_keeps_pushing_ends_pinned_at_the_workspace_edge():
    low, high = np.array([-0.3, -0.2, 0.0]), np.array([0.3, 0.2, 0.3])
    assert at_workspace_edge([0.299, 0.0, 0.1], low, high) and at_workspace_edge([0.0, -0.2, 0.1], low, high)
    assert not at_workspace_edge([0.29, 0.19, 0.0], low, high)          # near, not at; z is not x-y

    class Push:                                           # a target far past the +x bound, every step
        def reset(self, seed):
            pass

        def select_action(self, obs, goal):
            return np.array([1.0, 0.0, 0.2, 0.0, 0.0])

    env = make_env("place_empty_cup", "easy", 64)
    out = run_episode(Push(), env, 3, expert_goal("place_empty_cup", "easy", 3, 64)[0], max_steps=60)
    assert out["at_edge"] and not out["success"]


def test_fewer_actions_per_chunk_replan_more_often(tiny_policy_dir):
    import pytest
    policy, env = load_policy(tiny_policy_dir, execute=2), make_env("place_empty_cup", "easy", 64)
    goal, _ = expert_goal("place_empty_cup", "easy", 7, 64)
    out = run_episode(policy, env, 7, goal, max_steps=7, record=True)
    assert out["chunks"] == [(0, 2), (2, 4), (4, 6), (6, 7)]
    calls = []
    predict = policy.predict_action_chunk
    policy.predict_action_chunk = lambda *a: calls.append(1) or predict(*a)
    run_episode(policy, env, 7, goal, max_steps=7)
    assert len(calls) == 4                                # a new chunk every 2 steps, not every E=6
    with pytest.raises(ValueError, match="must be 1..8"):
        load_policy(tiny_policy_dir, execute=9)
    rep = evaluate(tiny_policy_dir, task="place_empty_cup", mode="easy", episodes=1, max_steps=4, execute=3)
    assert rep["execute"] == 3
    assert evaluate(tiny_policy_dir, task="place_empty_cup", mode="easy", episodes=1, max_steps=4)["execute"] == 6


def test_successes_split_by_the_kind_of_scene():
    env = make_env("plug_in", "hard", 64)
    pegs = set()
    for seed in range(8):
        env.reset(seed=seed)
        pegs.add(env.scene.public["peg"])
    assert pegs == {"box", "cylinder"}                  # hard plug_in draws both; the split names them
    rs = [{"success": ok, "info": {"peg": peg, "word": w}}
          for ok, peg, w in [(1, "box", "A"), (0, "box", "B"), (0, "box", "C"), (1, "cylinder", "D"),
                             (1, "cylinder", "E"), (0, "cylinder", "F"), (1, "cylinder", "G")]]
    assert by_scene(rs) == {"peg=box": [1, 3], "peg=cylinder": [3, 4]}     # seven words: too many kinds to split
    assert by_scene(rs, most=7)["word=A"] == [1, 1]
    assert by_scene([{"success": 1, "info": {"peg": "box"}}] * 2) == {}    # one kind: nothing to split
