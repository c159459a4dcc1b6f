import numpy as np

from a2g_core.cli import main
from a2g_core.data.episodes import EpisodeStore
from a2g_core.data.generate import generate
from a2g_core.eval import diagnose
from a2g_core.eval.policy_eval import load_policy


def test_diagnose_on_an_expert_episode(tiny_policy_dir, tmp_path, capsys):
    generate(tmp_path / "ds", tasks=["place_shoe"], modes=["easy"], episodes=2, resolution=64)
    ep, other = EpisodeStore(tmp_path / "ds")
    policy = load_policy(tiny_policy_dir)
    rows = diagnose.open_loop(policy, ep, every=10)
    assert [r["t"] for r in rows] == list(range(0, ep.success_step, 10))
    assert all(np.isfinite(r["err_cm"]).all() and len(r["err_cm"]) == 3 for r in rows)
    again = diagnose.open_loop(policy, ep, every=10)
    assert again == rows                                             # the sampler restarts per prediction
    sens = diagnose.proprio_sensitivity(policy, ep, 4)
    assert set(sens) == {"expert", "as recorded", *diagnose.NUDGES}
    assert sens["as recorded"] != sens["z -1.5 cm"]                  # the untrained toy reads its state
    out = diagnose.closed_loop(policy, ep, every=5)
    states, _ = ep.lowdim()
    np.testing.assert_allclose(out["trace"][0]["policy"], states[0], atol=1e-6)   # the expert's scene
    assert not out["success"] and out["trace"][-1]["t"] < out["steps"]

    scene = diagnose.scene_reading(policy, [ep, other])
    p = policy.config.msth.P
    moves = [e.lowdim()[1][p - 1, :2] - e.lowdim()[0][0, :2] for e in (ep, other)]
    # two episodes: each expert move is half their difference away from the mean move
    assert np.isclose(scene["mean_move_cm"], 50 * np.linalg.norm(moves[0] - moves[1]), rtol=1e-4)
    assert scene["episodes"] == 2 and scene["steps"] == p and scene["policy_cm"] > 0
    assert scene["object_gain"] is None and scene["target_gain"] is None          # 2 episodes: too few

    assert main(["diagnose", "--policy", str(tiny_policy_dir), "--data", str(tmp_path / "ds"), "--task", "place_shoe",
                 "--every", "20", "--no-rollout"]) == 0
    text = capsys.readouterr().out
    assert "## open loop on place_shoe-easy-000000" in text and "proprio sensitivity at t=8" in text
    assert "## scene reading over 2 episodes" in text and "mean move:" in text
    generate(tmp_path / "unseen", tasks=["place_shoe"], modes=["easy"], episodes=1, seed_start=10000, resolution=64)
    assert main(["diagnose", "--policy", str(tiny_policy_dir), "--data", str(tmp_path / "ds"), "--task", "place_shoe",
                 "--every", "20", "--no-rollout", "--scene-data", str(tmp_path / "unseen")]) == 0
    assert f"## scene reading over 1 episodes of {tmp_path / 'unseen'}" in capsys.readouterr().out
    generate(tmp_path / "other", tasks=["move_can_pot"], modes=["easy"], episodes=1, resolution=64)
    assert main(["diagnose", "--policy", str(tiny_policy_dir), "--data", str(tmp_path / "ds"), "--task", "place_shoe",
                 "--no-rollout", "--scene-data", str(tmp_path / "other")]) == 2
    assert "has no successful place_shoe/easy episodes for the scene-reading test" in capsys.readouterr().err
    assert main(["diagnose", "--policy", str(tiny_policy_dir), "--data", str(tmp_path / "ds"), "--task", "place_shoe",
                 "--seed", "7"]) == 2
    assert "has no successful episode place_shoe-easy-000007" in capsys.readouterr().err


def test_which_place_the_first_moves_follow():
    """The gain that tells a policy heading for the object from one that ignores it."""
    rng = np.random.default_rng(0)
    obj, target = rng.normal(size=(200, 2)), rng.normal(size=(200, 2))
    moves = 0.8 * obj + 0.05 * rng.normal(size=(200, 2))                    # 0.8 cm per cm the object moves
    assert abs(diagnose.gain(moves, obj) - 0.8) < 0.02 and abs(diagnose.gain(moves, target)) < 0.1
    assert abs(diagnose.gain(-moves, obj) + 0.8) < 0.02
    states = np.zeros((10, 5))
    states[:, 0] = np.arange(10)
    actions = np.zeros((9, 5))
    actions[3:6, 4] = 1.0                                                     # shut at step 3, open again at 6
    grasp, release = diagnose.grasp_and_release(states, actions)
    assert grasp[0] == 3 and release[0] == 6
    assert diagnose.grasp_and_release(states, np.zeros((9, 5))) is None
