"""Closed-loop episodes: one scene per seed, or one scenario with the policy's noise drawn per episode."""
import numpy as np

from a2g_core.eval.policy_eval import evaluate, load_policy, run_episode
from a2g_core.sim import make_env
from a2g_core.sim.rollout import expert_goal


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
