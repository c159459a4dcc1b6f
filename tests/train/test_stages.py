"""The real pipeline at toy size: expert data → VAE → latent cache → stage 1 → stage 2 → control in the sim."""
import json

import numpy as np
import pytest
import torch

from a2g_core.data.episodes import EpisodeStore
from a2g_core.data.generate import generate
from a2g_core.data.windows import MSTHWindows
from a2g_core.models.act2goal import Act2GoalConfig, Act2GoalPolicy
from a2g_core.models.vae import VAEConfig
from a2g_core.sim import make_env
from a2g_core.train.loop import TrainConfig
from a2g_core.train.stages import train_policy, train_vae

VAE = VAEConfig(resolution=64, block_out_channels=(8, 16, 16, 16), norm_num_groups=8, latent_channels=4)
POLICY = Act2GoalConfig(msth_P=8, msth_r=4, msth_M=2, msth_E=6, wm_dim=32, wm_heads=2, layers=2, expert_dim=16,
                        expert_heads=2, imagine_steps=2, action_steps=2)
STEPS = TrainConfig(steps=3, batch_size=4, warmup=1, log_every=1, ckpt_every=2)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    generate(root / "data", tasks=["place_empty_cup"], modes=["easy"], episodes=2, resolution=64)
    train_vae(root / "data", root / "vae", STEPS, vae_config=VAE)
    train_policy(root / "data", root / "s1", STEPS, stage=1, preset=POLICY, vae_dir=root / "vae" / "vae")
    train_policy(root / "data", root / "s2", STEPS, stage=2, init=root / "s1" / "final", execute=4,
                 retrain={"early_windows": 0.5, "goal_frame": "success"})
    return root


def test_each_stage_logs_and_saves(run):
    for stage in ("vae", "s1", "s2"):
        logs = [json.loads(s) for s in (run / stage / "log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in logs] == [1, 2, 3] and all(np.isfinite(r["loss"]) for r in logs)
    s1 = json.loads((run / "s1" / "log.jsonl").read_text().splitlines()[-1])
    assert {"loss_video", "loss_action"} <= set(s1)
    assert len(list((run / "data" / "latents").iterdir())) == 1               # one cache, built once
    vae_stats = torch.load(run / "vae" / "checkpoints" / "step_0000003" / "trainer.pt", weights_only=True)
    assert "model" in vae_stats


def test_stage_two_changes_the_policy_and_keeps_normalisation(run):
    a = Act2GoalPolicy.from_pretrained(run / "s1" / "final")
    b = Act2GoalPolicy.from_pretrained(run / "s2" / "final")
    torch.testing.assert_close(a.expert.action_mean, b.expert.action_mean)
    store = EpisodeStore(run / "data")
    states = np.concatenate([e.lowdim()[0] for e in store])
    np.testing.assert_allclose(a.expert.state_mean.numpy(), states.mean(0), rtol=1e-5, atol=1e-6)
    # action statistics are those of state-relative chunks: pose offsets from "here" are small
    chunks = MSTHWindows(store, next((run / "data" / "latents").iterdir()), a.config.msth, a.config.views).sample(
        np.random.default_rng(0), 4096)
    rel = (chunks["actions"] - chunks["state"][:, None] * torch.tensor([1.0, 1, 1, 1, 0])).reshape(-1, 5)
    torch.testing.assert_close(a.expert.action_mean, rel.mean(0))
    assert not torch.equal(a.world_model.blocks[0].attn1.to_q.weight, b.world_model.blocks[0].attn1.to_q.weight)
    assert a.trained_on == b.trained_on == [("place_empty_cup", "easy")]   # recorded in policy.json, kept by stage 2
    assert (a.config.msth_E, b.config.msth_E) == (6, 4)                    # stage 2's execute=4, saved with it
    assert (a.config.early_windows, b.config.early_windows) == (0.0, 0.5)  # and its retrain, in both networks
    assert (a.config.goal_frame, b.config.goal_frame) == ("final", "success")
    assert b.world_model.config is b.expert.config is b.config


def test_init_refuses_data_beyond_its_statistics_unless_renormalized(run, tmp_path):
    narrow = Act2GoalPolicy.from_pretrained(run / "s1" / "final")
    narrow.expert.state_std[0] /= 100                   # as if x had been (nearly) constant in its training data
    narrow.trained_on = [("move_can_pot", "easy")]       # and as if it came from another task
    narrow.save_pretrained(tmp_path / "narrow")
    with pytest.raises(ValueError, match=r"The state 'ee_x' varies \d+× more in .* --renormalize"):
        train_policy(run / "data", tmp_path / "a", STEPS, stage=2, init=tmp_path / "narrow")
    train_policy(run / "data", tmp_path / "b", STEPS, stage=2, init=tmp_path / "narrow", renormalize=True)
    refit, s1 = (Act2GoalPolicy.from_pretrained(p) for p in (tmp_path / "b" / "final", run / "s1" / "final"))
    torch.testing.assert_close(refit.expert.state_std, s1.expert.state_std)          # the data's own again
    torch.testing.assert_close(refit.expert.action_mean, s1.expert.action_mean)
    assert refit.trained_on == [("place_empty_cup", "easy"), ("move_can_pot", "easy")]  # newest first: the lab opens there


def test_init_changes_its_relative_dims_only_with_renormalized_actions(run, tmp_path):
    absolute_y = {"relative_dims": (0, 2, 3)}          # (place_empty_cup's yaw never turns: y shows the change)
    with pytest.raises(ValueError, match="actions' form .*; changing it needs --renormalize"):
        train_policy(run / "data", tmp_path / "a", STEPS, stage=2, init=run / "s1" / "final", retrain=absolute_y)
    train_policy(run / "data", tmp_path / "b", STEPS, stage=2, init=run / "s1" / "final", retrain=absolute_y,
                 renormalize=True)
    s1, refit = (Act2GoalPolicy.from_pretrained(p) for p in (run / "s1" / "final", tmp_path / "b" / "final"))
    assert refit.config.relative_dims == (0, 2, 3)                           # saved with it
    ys = np.concatenate([e.lowdim()[1][:, 1] for e in EpisodeStore(run / "data")])
    assert refit.expert.action_std[1].item() == pytest.approx(ys.std(), rel=0.1)        # y's spread: the actions' own
    assert s1.expert.action_std[1].item() < 0.7 * ys.std()                              # where it was the offsets'
    state = torch.zeros(1, 5)
    state[0, 1] = 1.0                                                        # and the env action is no longer offset by it
    assert refit._from_model(torch.zeros(1, 1, 5), state)[0, 0, 1] == refit.expert.action_mean[1]


def test_init_takes_half_turn_actions_only_with_renormalized_actions(run, tmp_path):
    axis = {"relative_dims": (0, 1, 2), "half_turn_actions": True}
    with pytest.raises(ValueError, match=r"form \(relative dims, half-turn actions\); changing it needs --renormalize"):
        train_policy(run / "data", tmp_path / "a", STEPS, stage=2, init=run / "s1" / "final", retrain=axis)
    train_policy(run / "data", tmp_path / "b", STEPS, stage=2, init=run / "s1" / "final", retrain=axis,
                 renormalize=True)
    refit = Act2GoalPolicy.from_pretrained(tmp_path / "b" / "final")
    assert refit.config.half_turn_actions and refit.expert.action_std.shape == (6,)
    assert refit.expert.action_std[-2:].min() > 0                      # the cos, sin of the data's yaws


def test_eval_notes_a_task_the_policy_was_not_trained_on_and_a_shortened_episode(run, capsys):
    from a2g_core.cli import main
    args = ["eval", "--policy", str(run / "s2" / "final"), "--task", "place_empty_cup,plug_in", "--mode", "easy",
            "--episodes", "1", "--workers", "1", "--db", ""]
    assert main(args + ["--max-steps", "5"]) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    assert notes == [f"note: {run / 's2' / 'final'} was trained on place_empty_cup (easy), not on plug_in/easy.",
                     "note: every episode ended by step 5 (--max-steps), not at its task's own limit."]
    assert "| place_empty_cup | easy | 0.00 |" in out and "cup_off_cm " in out   # where each failure ended
    assert "peg_off_cm " in out and "peg_depth_cm " in out
    assert main(args + ["--max-steps", "0"]) == 2
    assert "--max-steps must be at least 1" in capsys.readouterr().err


def test_trained_policy_drives_the_sim(run):
    policy = Act2GoalPolicy.from_pretrained(run / "s2" / "final")
    env = make_env("place_empty_cup", "easy", 64)
    obs, _ = env.reset(seed=0)
    goal = {v: np.asarray(img) for v, img in EpisodeStore(run / "data")[0].goal().items()}
    policy.reset()
    for _ in range(POLICY.msth_E + 1):
        obs, _, _, _, info = env.step(policy.select_action(obs, goal))
    assert info["action"].shape == (5,) and np.isfinite(info["action"]).all()
    env.close()


def test_bad_training_inputs(tmp_path, run):
    with pytest.raises(ValueError, match="not a dataset folder"):
        train_policy(tmp_path, tmp_path / "x", STEPS, stage=1, preset=POLICY, vae_dir=run / "vae" / "vae")
    with pytest.raises(ValueError, match="--init"):
        train_policy(run / "data", tmp_path / "x", STEPS, stage=2)
    with pytest.raises(ValueError, match=r"Actions per chunk must be 1\.\.8"):
        train_policy(run / "data", tmp_path / "x", STEPS, stage=2, init=run / "s1" / "final", execute=9)
    with pytest.raises(ValueError, match="needs a trained VAE"):
        train_policy(run / "data", tmp_path / "x", STEPS, stage=1)
    with pytest.raises(ValueError, match="has no successful episodes of plating"):
        train_policy(run / "data", tmp_path / "x", STEPS, stage=1, preset=POLICY, vae_dir=run / "vae" / "vae",
                     tasks=["plating"])
    with pytest.raises(ValueError, match=r"early_windows is a fraction in \[0, 1\]"):
        POLICY.with_(early_windows=1.5)
    with pytest.raises(ValueError, match=r"early_windows is a fraction in \[0, 1\]"):
        train_policy(run / "data", tmp_path / "x", STEPS, stage=2, init=run / "s1" / "final", retrain={"early_windows": 2})
    with pytest.raises(ValueError, match="reads keypoints"):     # the pose loss reads keypoints, which s1 lacks
        train_policy(run / "data", tmp_path / "x", STEPS, stage=2, init=run / "s1" / "final",
                     retrain={"pose_loss_weight": 1.0})
    with pytest.raises(ValueError, match="state_noise is a standard deviation"):
        POLICY.with_(state_noise=-0.5)
    with pytest.raises(ValueError, match="VAE takes 32 px"):
        train_vae(run / "data", tmp_path / "v", STEPS, vae_config=VAEConfig(resolution=32, block_out_channels=(8, 16, 16, 16), norm_num_groups=8))


def test_eval_reports_success_with_an_interval(run):
    from a2g_core.eval.policy_eval import evaluate
    rep = evaluate(run / "s2" / "final", task="place_empty_cup", mode="easy", episodes=2, seed_start=50, workers=2)
    assert rep["episodes"] == 2 and 0 <= rep["ci95"][0] <= rep["success"] <= rep["ci95"][1] <= 1
    assert [r["seed"] for r in rep["results"]] == [50, 51] and all(r["expert_success"] for r in rep["results"])
    with pytest.raises(ValueError, match="Unknown task"):
        evaluate(run / "s2" / "final", task="juggling", mode="easy", episodes=1)
    with pytest.raises(ValueError, match="No checkpoint"):
        evaluate(run / "nowhere", task="plating", mode="easy", episodes=1)


def test_a_vae_trained_on_64_px_frames_reads_96_px_data(run, tmp_path):
    """The VAE is convolutional: stage 1 on 96 px frames takes a 64 px VAE's weights as they are,
    with 1.5× the latents and the preset's token grid kept (bigger patches)."""
    generate(tmp_path / "data96", tasks=["place_empty_cup"], modes=["easy"], episodes=1, resolution=96)
    one = TrainConfig(steps=1, batch_size=2, warmup=1, log_every=1, ckpt_every=1)
    train_policy(tmp_path / "data96", tmp_path / "s1", one, stage=1, preset=POLICY, vae_dir=run / "vae" / "vae")
    policy = Act2GoalPolicy.from_pretrained(tmp_path / "s1" / "final")
    small = Act2GoalPolicy.from_pretrained(run / "s1" / "final")
    assert (policy.config.resolution, policy.vae.config.resolution) == (96, 96)
    assert policy.config.latent_size == small.config.latent_size * 3 // 2
    assert policy.config.latent_size // policy.config.patch_size == small.config.latent_size // small.config.patch_size
    torch.testing.assert_close(policy.vae.ae.encoder.conv_in.weight, small.vae.ae.encoder.conv_in.weight)
    env = make_env("place_empty_cup", "easy", 96)
    obs, _ = env.reset(seed=0)
    goal = {v: np.asarray(img) for v, img in EpisodeStore(tmp_path / "data96")[0].goal().items()}
    assert policy.predict_action_chunk(obs, goal).shape == (1, POLICY.msth_P, 5)
    env.close()


def test_init_carried_to_another_frame_size(run, tmp_path):
    """``carry_resolution`` (``train --carry-resolution``): a policy trained on 64 px frames, trained on 96 px ones
    with the same tokens per frame in larger patches of latents; without it such data is refused in one sentence."""
    generate(tmp_path / "d96", tasks=["place_empty_cup"], modes=["easy"], episodes=1, resolution=96)
    with pytest.raises(ValueError, match=r"frames are 96 px but the policy takes 64 px \(--carry-resolution resizes"):
        train_policy(tmp_path / "d96", tmp_path / "a", STEPS, stage=2, init=run / "s1" / "final")
    train_policy(tmp_path / "d96", tmp_path / "b", STEPS, stage=2, init=run / "s1" / "final", carry_resolution=True)
    s1, big = (Act2GoalPolicy.from_pretrained(p) for p in (run / "s1" / "final", tmp_path / "b" / "final"))
    assert (big.config.resolution, big.vae.config.resolution) == (96, 96)
    assert big.config.latent_size // big.config.patch_size == s1.config.latent_size // s1.config.patch_size
    torch.testing.assert_close(big.expert.action_mean, s1.expert.action_mean)       # its proprio statistics kept
    standardized = Act2GoalPolicy(s1.config.with_(latent_standardize=True), vae=s1.vae)
    standardized.load_state_dict(s1.state_dict(), strict=False)
    standardized.save_pretrained(tmp_path / "std")
    train_policy(tmp_path / "d96", tmp_path / "c", STEPS, stage=2, init=tmp_path / "std", carry_resolution=True)
    mean = Act2GoalPolicy.from_pretrained(tmp_path / "c" / "final").world_model.latent_mean
    assert mean.shape[-2:] == (big.config.latent_size,) * 2 and mean.abs().sum() > 0  # refitted on 96 px latents
    # a latent field that is smooth across a patch embeds as it did in the smaller patch
    carried = s1.at_resolution(96)
    c, p0, p1 = s1.config.latent_channels, s1.config.patch_size, carried.config.patch_size
    field = torch.randn(1, 1, c, 1, 1)
    before = s1.world_model.patch_in(s1.world_model.patchify(field.expand(1, 1, c, p0, p0)))
    after = carried.world_model.patch_in(carried.world_model.patchify(field.expand(1, 1, c, p1, p1)))
    torch.testing.assert_close(after, before, rtol=0.05, atol=0.05)
    env = make_env("place_empty_cup", "easy", 96)
    obs, _ = env.reset(seed=0)
    goal = {v: np.asarray(img) for v, img in EpisodeStore(tmp_path / "d96")[0].goal().items()}
    assert np.isfinite(big.predict_action_chunk(obs, goal).numpy()).all()
    env.close()
