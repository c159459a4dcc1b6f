from types import SimpleNamespace

import numpy as np
import pytest
import torch

from a2g_core.cli import main
from a2g_core.data.episodes import EpisodeStore
from a2g_core.data.generate import generate
from a2g_core.eval import diagnose
from a2g_core.eval.policy_eval import load_policy
from a2g_core.sim.expert import wrap
from a2g_core.sim.rollout import grasp_steps


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
    turns = [np.degrees(e.lowdim()[1][p - 1, 3] - e.lowdim()[0][0, 3]) for e in (ep, other)]
    assert np.isclose(scene["mean_turn_deg"], abs(turns[0] - turns[1]) / 2, rtol=1e-4)   # the shoe's heading
    assert scene["policy_turn_deg"] > 0 and scene["turn_gain"] is not None
    carry = diagnose.scene_reading(policy, [ep, other], after_grasp=12)        # the chunks start on the carry
    starts = [grasp_steps(e.lowdim()[1])[0] + 12 for e in (ep, other)]
    turns = [np.degrees(wrap(e.lowdim()[1][t + p - 1, 3] - e.lowdim()[0][t, 3])) for e, t in zip((ep, other), starts)]
    assert np.isclose(carry["mean_turn_deg"], abs(turns[0] - turns[1]) / 2, rtol=1e-4)
    assert carry["episodes"] == 2 and not np.isclose(carry["mean_turn_deg"], scene["mean_turn_deg"])
    with pytest.raises(ValueError, match=f"No episode has {p} more actions 1000 steps after its grasp"):
        diagnose.scene_reading(policy, [ep, other], after_grasp=1000)
    end = diagnose.scene_reading(policy, [ep, other], before_release=p)        # the carry's last P actions
    starts = [grasp_steps(e.lowdim()[1])[1] - p for e in (ep, other)]
    turns = [np.degrees(wrap(e.lowdim()[1][t + p - 1, 3] - e.lowdim()[0][t, 3])) for e, t in zip((ep, other), starts)]
    assert np.isclose(end["mean_turn_deg"], abs(turns[0] - turns[1]) / 2, rtol=1e-4) and end["episodes"] == 2
    with pytest.raises(ValueError, match="after the grasp or before the release, not both"):
        diagnose.scene_reading(policy, [ep, other], after_grasp=12, before_release=p)

    assert main(["diagnose", "--policy", str(tiny_policy_dir), "--data", str(tmp_path / "ds"), "--task", "place_shoe",
                 "--every", "20", "--no-rollout", "--after-grasp", "12", "--before-release", "16"]) == 0
    text = capsys.readouterr().out
    assert "## open loop on place_shoe-easy-000000" in text and "proprio sensitivity at t=8" in text
    assert "## scene reading over 2 episodes" in text and "mean move:" in text and "mean turn" in text
    assert "## the carry, 12 steps after the expert's grasp, over 2 episodes" in text
    assert "## the carry, 16 steps before the expert's release, over 2 episodes" in text
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
    grasp, release = diagnose._object_and_target(states, actions)
    assert grasp[0] == 3 and release[0] == 6 and grasp_steps(actions) == (3, 6)
    assert diagnose._object_and_target(states, np.zeros((9, 5))) is None
    actions[6:, 4] = 1.0                                                      # shut at 3 and never open again
    assert grasp_steps(actions) == (3, None)
    assert diagnose._object_and_target(states, actions) is None


class _Reader:
    """A policy whose chunk ends at the first grasp of the episode it is shown: by its images (a
    scene reader) or by its state (a copycat of the pose)."""

    def __init__(self, episodes, t, by_state):
        self.config = SimpleNamespace(msth=SimpleNamespace(P=4), views=("head", "wrist"), goal_frame="final")
        self.by_state, self.places = by_state, {}
        for e in episodes:
            states, actions = e.lowdim()
            self.places[np.asarray(e.frames("head")[t]).tobytes()] = self.places[states[t].tobytes()] = \
                diagnose._object_and_target(states, actions)[0]

    def reset(self, seed):
        pass

    def predict_action_chunk(self, obs, goal):
        key = obs["state"].tobytes() if self.by_state else obs["images"]["head"].tobytes()
        chunk = np.zeros((1, 4, 5), np.float32)
        chunk[0, :, :2] = self.places[key]
        return torch.from_numpy(chunk)


def test_images_or_pose_tells_a_scene_reader_from_a_copycat(tmp_path):
    generate(tmp_path, tasks=["place_shoe"], modes=["easy"], episodes=6, seed_start=20, resolution=64)
    episodes = list(EpisodeStore(tmp_path))
    reader = diagnose.images_or_pose(_Reader(episodes, 6, by_state=False), episodes, t=6)
    copycat = diagnose.images_or_pose(_Reader(episodes, 6, by_state=True), episodes, t=6)
    assert reader["episodes"] == copycat["episodes"] == 6
    assert reader["image_gain"] > 0.7 and abs(reader["pose_gain"]) < 0.4
    assert copycat["pose_gain"] > 0.7 and abs(copycat["image_gain"]) < 0.4
    assert diagnose.images_or_pose(_Reader(episodes, 6, by_state=False), episodes[:5], t=6)["image_gain"] is None
