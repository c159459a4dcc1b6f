"""Self-improvement rounds with a toy policy in the real simulator, store and peft."""
import dataclasses
import hashlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from a2g_core.data.latents import encode_frames
from a2g_core.data.replay import HindsightReplay
from a2g_core.data.rollouts import goal_images
from a2g_core.models.act2goal import Act2GoalPolicy
from a2g_core.models.lora import wrap_with_lora
from a2g_core.store import crud, open_db
from a2g_core.train.improve import (ImproveConfig, baseline_success, expert_windows, improvement_round, policy_probe,
                                   mixed_sampler, probe_loss, reached_goal, round_zero)
from a2g_core.train.loop import TrainConfig, train

CFG = ImproveConfig(task="place_empty_cup", mode="easy", buffer_threshold=5, max_rollouts=1, epochs=2, rank=4,
                    batch_size=4, eval_episodes=1)


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _predict(policy, seed=0):
    from tests.models.conftest import make_obs
    obs, goal = make_obs(policy.config, seed)
    policy.reset(seed=1)
    return policy.predict_action_chunk(obs, goal)


@pytest.fixture(scope="module")
def rounds(tiny_policy_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("improve")
    before = _digest(tiny_policy_dir)
    engine = open_db(root / "lab.db")
    r1 = improvement_round(engine, tiny_policy_dir, root / "run", CFG)
    r2 = improvement_round(engine, tiny_policy_dir, root / "run", CFG)
    return engine, root, before, r1, r2


def test_rounds_are_recorded(rounds):
    engine, root, _, r1, r2 = rounds
    assert (r1.status, r1.number, r2.number) == ("done", 1, 2)
    assert r2.parent_adapter == r1.adapter                      # each round continues the previous one
    assert set(r1.timings) == {"rollout", "relabel", "optimise", "evaluate"}
    assert r1.metrics["transitions"] >= 5 and 0 <= r1.metrics["success"] <= 1
    assert crud.buffer(engine) == []                            # the round cleared the buffer
    (ro,) = crud.list_rollouts(engine, round_id=r1.id)
    assert os.path.isdir(ro.episode_dir) and ro.sim_success is not None
    assert [e.round_id for e in crud.list_evaluations(engine)] == [r1.id, r2.id]
    assert {c.path for c in crud.list_checkpoints(engine, kind="adapter")} == {r1.adapter, r2.adapter}


def test_base_untouched_and_adapter_loads_with_plain_peft(rounds, tiny_policy_dir):
    from peft import PeftModel
    engine, root, before, r1, _ = rounds
    assert _digest(tiny_policy_dir) == before                   # the base checkpoint is byte-identical
    base = _predict(Act2GoalPolicy.from_pretrained(tiny_policy_dir))
    peft_policy = PeftModel.from_pretrained(Act2GoalPolicy.from_pretrained(tiny_policy_dir), r1.adapter).eval()
    with_adapter = _predict(peft_policy)
    merged = _predict(Act2GoalPolicy.from_pretrained(tiny_policy_dir, adapter=r1.adapter))
    assert not torch.allclose(base, with_adapter)               # the adapter changes predictions
    torch.testing.assert_close(with_adapter, merged, rtol=1e-4, atol=1e-4)


def test_only_lora_parameters_train(tiny_policy_dir, tmp_path):
    policy = Act2GoalPolicy.from_pretrained(tiny_policy_dir)
    base = {k: v.clone() for k, v in policy.state_dict().items()}
    model = wrap_with_lora(policy, rank=4)
    policy.stage = 2
    replay = HindsightReplay(policy.config.msth)
    rng = np.random.default_rng(0)
    lat = [rng.normal(size=(13, 4, 8, 8)).astype(np.float32) for _ in policy.config.views]
    replay.add_rollout(lat, rng.normal(size=(13, 5)).astype(np.float32), rng.normal(size=(12, 5)).astype(np.float32),
                       chunks=[(0, 6), (6, 12)])
    lora_before = {k: v.clone() for k, v in model.named_parameters() if v.requires_grad}
    assert lora_before and all("lora_" in k for k in lora_before)
    train(model, replay.sample, TrainConfig(steps=3, batch_size=2, warmup=1, ckpt_every=3), tmp_path,
          save_fn=lambda f: None)
    after = dict(model.named_parameters())
    assert any(not torch.equal(lora_before[k], after[k]) for k in lora_before)
    for k, v in model.base_model.model.state_dict().items():
        if "lora_" not in k:
            torch.testing.assert_close(v, base[k.replace(".base_layer", "")], rtol=0, atol=0)


def test_source_selection_with_an_empty_buffer(tiny_policy_dir, tmp_path):
    engine = open_db(tmp_path / "lab.db")
    cfg = ImproveConfig(task="place_empty_cup", mode="easy", source="success", collect=False, eval_episodes=0)
    with pytest.raises(ValueError, match="success buffer for place_empty_cup is empty"):
        improvement_round(engine, tiny_policy_dir, tmp_path / "run", cfg)
    (r,) = crud.list_rounds(engine)
    assert r.status == "failed" and "empty" in r.error
    with pytest.raises(ValueError, match="Unknown source"):
        ImproveConfig(task="place_empty_cup", source="best")


def test_mixed_batches_take_the_anchors_share():
    ones = lambda rng, n: {"x": torch.ones(n, 2)}
    zeros = lambda rng, n: {"x": torch.zeros(n, 2)}
    batch = mixed_sampler(zeros, ones, 3)(np.random.default_rng(0), 8)["x"]
    assert batch.shape == (8, 2) and batch[:, 0].tolist() == [0] * 5 + [1] * 3
    assert ImproveConfig(task="place_empty_cup", batch_size=8).anchor_samples == 0


def test_round_with_an_expert_anchor(tiny_policy_dir, tmp_path):
    from a2g_core.data.generate import generate
    generate(tmp_path / "expert", tasks=["place_empty_cup"], modes=["easy"], episodes=1, resolution=64)
    engine = open_db(tmp_path / "lab.db")
    cfg = dataclasses.replace(CFG, eval_episodes=0, max_steps=40, anchor=str(tmp_path / "expert"), anchor_fraction=0.25,
                              probe=str(tmp_path / "expert"))
    r = improvement_round(engine, tiny_policy_dir, tmp_path / "run", cfg)
    assert r.status == "done" and r.metrics["anchor_episodes"] == 1 and r.config["anchor"] == cfg.anchor
    # the probe: the same fixed windows and noise every time, and the round's adapter moved it
    base = policy_probe(tiny_policy_dir, cfg)
    policy = Act2GoalPolicy.from_pretrained(tiny_policy_dir)
    windows = expert_windows(policy, tiny_policy_dir / "vae", cfg.probe, cfg, "probe")
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    assert probe_loss(policy, windows) == base > 0 and torch.equal(torch.rand(1), before)   # global RNG untouched
    assert r.metrics["probe_loss"] > 0 and r.metrics["probe_loss"] != base
    # the buffer still gets its epochs: one of the four samples of each batch is the expert's
    assert r.metrics["optimise_steps"] == -(-cfg.epochs * r.metrics["transitions"] // 3)
    assert any((tmp_path / "expert" / "latents").iterdir())          # the expert's frames were encoded once
    with pytest.raises(ValueError, match="no place in a batch of 4"):
        dataclasses.replace(cfg, anchor_fraction=0.1)
    with pytest.raises(ValueError, match="not a dataset folder"):
        dataclasses.replace(cfg, anchor=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="The probe .* is not a dataset folder"):
        dataclasses.replace(cfg, probe=str(tmp_path / "nowhere"))


def test_a_round_in_one_scenario(tiny_policy_dir, tmp_path):
    engine = open_db(tmp_path / "lab.db")
    cfg = dataclasses.replace(CFG, buffer_threshold=100, max_rollouts=2, eval_episodes=2, max_steps=12, scenario=7)
    baseline_success(engine, tiny_policy_dir, tmp_path / "run", cfg)
    r = improvement_round(engine, tiny_policy_dir, tmp_path / "run", cfg)
    rollouts = crud.list_rollouts(engine, round_id=r.id)
    assert [ro.seed for ro in rollouts] == [7, 7]                           # the scene; the noise differs
    (goal_id,) = {ro.goal_id for ro in rollouts}                            # and the goal, recorded once
    assert crud.get_goal(engine, goal_id=goal_id).seed == 7
    assert [e.scenario for e in crud.list_evaluations(engine)] == [7, 7]
    # round 0 of a scenario is not round 0 of the unseen seeds, nor of another scenario
    assert round_zero(engine, base=tiny_policy_dir, task=cfg.task, mode=cfg.mode, episodes=2, scenario=7)
    assert round_zero(engine, base=tiny_policy_dir, task=cfg.task, mode=cfg.mode, episodes=2) is None
    assert round_zero(engine, base=tiny_policy_dir, task=cfg.task, mode=cfg.mode, episodes=2, scenario=8) is None
    # --keep-goal: a rollout that reached its goal (here by the operator's label) hands it to the replay
    policy = Act2GoalPolicy.from_pretrained(tiny_policy_dir)
    keep = dataclasses.replace(cfg, keep_goal=0.5)
    ro = crud.label_rollout(engine, rollout_id=rollouts[0].id, label="success")
    goal = reached_goal(engine, policy, ro, keep)
    images = goal_images(crud.get_goal(engine, goal_id=goal_id))
    assert len(goal) == len(policy.config.views)
    np.testing.assert_allclose(goal[0], encode_frames(policy.vae, images[policy.config.views[0]][None])[0])
    assert reached_goal(engine, policy, ro, cfg) is None                    # keep_goal 0: the paper's, all relabelled
    ro = crud.label_rollout(engine, rollout_id=rollouts[0].id, label="failure")
    assert reached_goal(engine, policy, ro, keep) is None


def test_a_labelled_success_keeps_its_goal_in_a_round(tiny_policy_dir, tmp_path):
    """A recorded rollout (the lab's, a robot's) labelled success by the operator hands its goal to the round."""
    from a2g_core.data.rollouts import record_goal, record_rollout
    from a2g_core.eval.policy_eval import run_episode
    from a2g_core.sim import make_env
    from a2g_core.sim.rollout import expert_goal
    engine = open_db(tmp_path / "lab.db")
    policy = Act2GoalPolicy.from_pretrained(tiny_policy_dir)
    goal, _ = expert_goal("place_empty_cup", "easy", 3, policy.config.resolution)
    big = {v: img.repeat(2, 0).repeat(2, 1) for v, img in goal.items()}    # stored at another resolution
    goal_id = record_goal(engine, tmp_path / "lab", big, source="expert", task="place_empty_cup", seed=3).id
    out = run_episode(policy, make_env("place_empty_cup", "easy", policy.config.resolution), 3, goal,
                      max_steps=12, record=True)
    ro = record_rollout(engine, tmp_path / "lab" / "rollouts", out["episode"], out["chunks"], goal_id=goal_id)
    crud.label_rollout(engine, rollout_id=ro.id, label="success")
    cfg = dataclasses.replace(CFG, collect=False, eval_episodes=0, keep_goal=0.5)
    r = improvement_round(engine, tiny_policy_dir, tmp_path / "run", cfg)
    assert (r.status, r.metrics["goals_kept"], r.metrics["rollouts"]) == ("done", 1, 1)
    with pytest.raises(ValueError, match="Only successful rollouts keep their goal"):
        dataclasses.replace(cfg, source="failure")


def test_kill_mid_round_leaves_a_consistent_store(tiny_policy_dir, tmp_path):
    before = _digest(tiny_policy_dir)
    db, run = tmp_path / "lab.db", tmp_path / "run"
    cmd = [sys.executable, "-m", "a2g_core", "improve", "--policy", str(tiny_policy_dir), "--task", "place_empty_cup",
           "--mode", "easy", "--run", str(run), "--db", str(db), "--max-rollouts", "50", "--buffer", "1000",
           "--eval-episodes", "0", "--rank", "4"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        engine = None
        deadline = time.time() + 300
        while time.time() < deadline:            # wait until the round has recorded a rollout
            if db.exists():
                engine = engine or open_db(db)
                if any(r.status == "done" for r in crud.list_rollouts(engine)):
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the improve command recorded no rollout within 300 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (r,) = crud.list_rounds(engine)
    assert r.status == "running"                               # as the kill left it
    assert crud.fail_stale_rounds(engine) == 1
    assert crud.get_round(engine, round_id=r.id).status == "failed"
    assert not (run / "adapters").exists() or not any((run / "adapters").iterdir())
    kept = len(crud.buffer(engine))
    assert kept > 0                                            # its rollouts stay in the buffer
    assert _digest(tiny_policy_dir) == before
    again = improvement_round(engine, tiny_policy_dir, run, ImproveConfig(
        task="place_empty_cup", mode="easy", collect=False, epochs=1, rank=4, eval_episodes=0))
    assert again.status == "done" and again.number == 1 and again.metrics["transitions"] == kept
