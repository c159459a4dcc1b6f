import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from a2g_core.sim import ENV_IDS, TASKS, make_env
from a2g_core.sim.rollout import run_expert


@pytest.mark.parametrize("task", list(TASKS))
def test_check_env(task):
    env = gym.make(ENV_IDS[task], mode="hard", resolution=64)
    check_env(env.unwrapped, skip_render_check=False)
    env.close()


def test_observation_layout():
    env = make_env("place_empty_cup", "easy", 64)
    obs, info = env.reset(seed=1)
    assert set(obs["images"]) == {"head", "wrist"}
    assert obs["images"]["head"].shape == (64, 64, 3) and obs["images"]["head"].dtype == np.uint8
    assert obs["state"].shape == (5,) and obs["state"].dtype == np.float32
    assert info["is_success"] is False
    env.close()


@pytest.mark.parametrize("task,mode", [("plating", "hard"), ("writing", "easy")])
def test_same_seed_same_frames_states_and_goal(task, mode):
    a = run_expert(make_env(task, mode, 64), seed=5)
    b = run_expert(make_env(task, mode, 64), seed=5)
    assert len(a) == len(b)
    for v in a.frames:
        np.testing.assert_array_equal(a.frames[v], b.frames[v])
        np.testing.assert_array_equal(a.goal[v], b.goal[v])
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.actions, b.actions)
    c = run_expert(make_env(task, mode, 64), seed=6)
    assert not np.array_equal(a.goal["head"], c.goal["head"])


def test_out_of_workspace_action_is_clipped_and_reported():
    env = make_env("place_shoe", "easy", 64)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([5.0, -5.0, 1.0, 0.5, 2.0]))
    low, high = env.action_space.low, env.action_space.high
    np.testing.assert_allclose(info["action"], [high[0], low[1], high[2], 0.5, 1.0], rtol=1e-6)
    env.close()


def test_an_object_pushed_off_the_table_lands_on_the_floor():
    # A knocked-over bottle rolls without loss (MuJoCo has no rolling friction at condim 4); off the
    # table's edge it used to fall forever, hundreds of metres below the scene.
    env = make_env("pick_dual_bottles", "easy", 64)
    env.reset(seed=0)
    bottle = env.data.body("bottle0")
    qadr = env.model.jnt_qposadr[env.model.body_jntadr[bottle.id]]
    env.data.qpos[qadr:qadr + 3] = (0.0, -0.45, 0.2)        # beyond the table's edge at y = -0.34
    for _ in range(100):
        env.step(env.task.home())
    assert -0.76 < bottle.xpos[2] < -0.6
    env.close()


@pytest.mark.parametrize("action,message", [
    (np.zeros(4), "shape"), (np.zeros((1, 5)), "shape"),
    (np.array([0, 0, 0.1, 0, np.nan]), "NaN"), (np.array([0, np.inf, 0.1, 0, 0]), "infinite"),
])
def test_bad_actions_get_one_sentence(action, message):
    env = make_env("plug_in", "easy", 64)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)
    env.close()


@pytest.mark.parametrize("kwargs,message", [
    ({"task": "juggling"}, "Unknown task 'juggling'"),
    ({"task": "plating", "mode": "medium"}, "Unknown mode 'medium'"),
    ({"task": "plating", "resolution": 100}, "Resolution 100"),
    ({"task": "writing", "words": ["HELLO!"]}, "no letter"),
    ({"task": "writing", "words": "ABCDEFGHIJK"}, "at most"),
    ({"task": "plating", "words": "CAT"}, "Only the writing task"),
])
def test_bad_construction_gets_one_sentence(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_env(**{"mode": "easy", **kwargs})


def test_any_word_can_be_written():
    env = make_env("writing", "hard", 64, words=["zebra"])
    ep = run_expert(env, seed=2)
    assert ep.info["word"] == "ZEBRA" and ep.success
    scores = env.task.scores(env)
    assert scores["coverage"] >= 0.9 and scores["precision"] >= 0.9
    env.close()


def test_ink_only_where_the_pen_touches():
    env = make_env("writing", "easy", 64)
    env.reset(seed=0, options={"word": "HI"})
    home = env.task.home()
    for _ in range(5):                      # pen in the air: no ink
        env.step(home)
    assert len(env.ink) == 0
    low = env.action_space.low
    for x in np.linspace(-0.05, 0.05, 8):   # pen on the board: a line
        env.step(np.array([x, 0.02, low[2], 0.0, 0.8]))
    assert len(env.ink) >= 1
    assert env.task.scores(env)["precision"] < 0.9    # a straight line is not the word HI
    env.close()
