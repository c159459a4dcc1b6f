import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from a2g_core.models.act2goal import Act2GoalPolicy
from a2g_core.models.vae import VideoVAE
from tests.models.conftest import TINY, TINY_VAE, make_batch, make_obs


def test_patchify_round_trip(policy):
    z = torch.randn(2, 2, 3, TINY.latent_channels, TINY.latent_size, TINY.latent_size)
    wm = policy.world_model
    assert wm.patchify(z).shape == (2, 2, 3, TINY.tokens_per_frame, TINY.latent_channels * 4)
    torch.testing.assert_close(wm.unpatchify(wm.patchify(z)), z)


@pytest.mark.parametrize("stage", [1, 2])
def test_losses_and_shapes(policy, stage):
    policy.stage = stage
    loss, parts = policy(make_batch())
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert set(parts) == {"loss_video", "loss_action"}
    expected = parts["loss_video"] + TINY.action_loss_weight * parts["loss_action"] if stage == 1 else parts["loss_action"]
    torch.testing.assert_close(loss.detach(), expected)
    loss.backward()
    assert policy.world_model.blocks[0].attn1.to_q.weight.grad is not None      # end to end in both stages
    assert all(p.grad is None for p in policy.vae.parameters())                # the VAE stays frozen


def test_stage_2_video_loss_keeps_the_world_model_imagining():
    """``video_loss_weight``: stage 2's loss is ``L_a + w·L_v``, the video loss at drawn flow times in a second
    world-model pass, while the expert still reads the pure-noise features control gives it; without it the
    world model's video head gets no gradient in stage 2."""
    torch.manual_seed(0)
    policy = Act2GoalPolicy(TINY.with_(video_loss_weight=0.5), vae=VideoVAE(TINY_VAE))
    policy.stage = 2
    times = []
    forward = policy.world_model.forward
    policy.world_model.forward = lambda o, g, x, s, off: times.append(s) or forward(o, g, x, s, off)
    loss, parts = policy(make_batch(b=64))
    torch.testing.assert_close(loss.detach(), parts["loss_action"] + 0.5 * parts["loss_video"])
    assert len(times) == 2 and bool((times[0] == 1).all())           # the expert's pass: futures at pure noise
    assert 0.3 < float((times[1] < 1).float().mean()) < 0.7           # the video's: half drawn, as in stage 1
    loss.backward()
    assert policy.world_model.head.proj.weight.grad.abs().sum() > 0
    policy.zero_grad()
    policy.config.video_loss_weight = 0.0
    policy(make_batch(b=4))[0].backward()
    assert policy.world_model.head.proj.weight.grad is None or not policy.world_model.head.proj.weight.grad.any()


def test_action_mask_averages_only_the_targets_it_keeps(policy):
    policy.stage = 2
    torch.nn.init.normal_(policy.expert.head.proj.weight)      # the head starts at zero
    batch, h = make_batch(b=2), TINY.msth.num_actions

    def loss(mask=None):
        torch.manual_seed(0)                                   # the same noise and flow time every call
        return policy({**batch, "action_mask": mask} if mask is not None else batch)[0].detach()

    full = loss()
    torch.testing.assert_close(loss(torch.ones(2, h)), full)
    each = [loss(torch.nn.functional.one_hot(torch.full((2,), i), h).float()) for i in range(h)]
    torch.testing.assert_close(torch.stack(each).mean(), full)   # a kept target counts once, others not at all
    assert len({round(x.item(), 6) for x in each}) == h


def test_expert_block_i_reads_world_model_block_i(policy):
    """Changing world-model block 1's output changes the action velocity only through expert block 1."""
    torch.nn.init.normal_(policy.expert.head.proj.weight)      # the head starts at zero
    b = make_batch(b=2)
    wm_out, hidden = policy.world_model(b["obs_latents"], b["goal_latents"], b["future_latents"],
                                        torch.ones(2), b["frame_offsets"])
    a = torch.randn(2, TINY.msth.num_actions, 5)
    kp = policy.expert.keypoints(b["obs_latents"], b["goal_latents"])
    base = policy.expert(a, b["state"], torch.full((2,), 0.5), b["action_offsets"], hidden, kp)
    changed = policy.expert(a, b["state"], torch.full((2,), 0.5), b["action_offsets"],
                            [hidden[0], hidden[1] + 1.0], kp)
    assert len(hidden) == TINY.layers and hidden[0].shape[-1] == TINY.wm_dim
    assert not torch.allclose(base, changed)


def test_overfits_a_tiny_batch(policy):
    torch.manual_seed(0)
    batch = make_batch(b=4, seed=1)
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(150):
        loss, _ = policy(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])


def test_control_contract(policy):
    obs, goal = make_obs()
    policy.eval()
    chunk = policy.predict_action_chunk(obs, goal)
    assert chunk.shape == (1, TINY.msth.P, 5)
    full = policy.predict_chunk(obs, goal)
    assert full["distal"].shape == (1, TINY.msth.M, 5)
    np.testing.assert_array_equal(full["offsets"][TINY.msth.P:], [21, 30])      # d_m = 8 + floor(22/ln3·ln(m+1)), K = 30
    policy.reset(seed=3)
    actions = [policy.select_action(obs, goal) for _ in range(TINY.msth_E)]
    assert len(policy._queue) == 0 and all(a.shape == (5,) for a in actions)
    policy.reset(seed=3)
    np.testing.assert_array_equal(policy.select_action(obs, goal), actions[0])  # seeded: reproducible


def test_compiled_control_gives_the_eager_chunk(policy, tmp_path):
    obs, goal = make_obs()
    policy.eval()
    policy.reset(seed=5)
    eager = policy.predict_action_chunk(obs, goal)
    policy.compile_for_control()
    policy.reset(seed=5)
    torch.testing.assert_close(policy.predict_action_chunk(obs, goal), eager, atol=1e-4, rtol=1e-4)
    policy.save_pretrained(tmp_path / "p")                    # the checkpoint keeps its plain names
    assert "blocks.0.attn1.to_q.weight" in load_file(tmp_path / "p" / "world_model" / "model.safetensors")


def test_imagine(policy):
    obs, goal = make_obs()
    out = policy.imagine(obs, goal, K=30)
    assert out["frames"]["head"].shape == (TINY.msth.num_frames, 32, 32, 3)
    assert out["frames"]["wrist"].dtype == np.uint8
    np.testing.assert_array_equal(out["offsets"], [4, 8, 21, 30])
    assert out["num_proximal"] == 2


def test_imagining_does_not_change_the_actions(policy):
    """The lab imagines before every chunk it records; the chunks a seed gets must not depend on that."""
    obs, goal = make_obs()
    policy.reset(seed=3)
    plain = [policy.predict_action_chunk(obs, goal) for _ in range(2)]
    policy.reset(seed=3)
    imagined = []
    for _ in range(2):
        policy.imagine(obs, goal)
        imagined.append(policy.predict_action_chunk(obs, goal))
    for a, b in zip(plain, imagined):
        torch.testing.assert_close(a, b)
    assert not torch.equal(plain[0], plain[1])             # the noise still moves on from chunk to chunk


def test_save_load_is_exact(policy, tmp_path):
    policy.set_normalization(np.random.rand(50, 5) * 3, np.random.rand(50, 18, 5) * 2, np.random.rand(50, 5),
                             np.random.rand(50, 2, 4, 4, 4))
    policy.save_pretrained(tmp_path / "p")
    for sub in ("world_model", "action_expert", "vae"):
        assert {f.name for f in (tmp_path / "p" / sub).iterdir()} == {"config.json", "model.safetensors"}
    loaded = Act2GoalPolicy.from_pretrained(tmp_path / "p")
    for (k, a), (k2, b) in zip(policy.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    obs, goal = make_obs()
    policy.eval()
    policy.reset(seed=1)
    loaded.reset(seed=1)
    torch.testing.assert_close(policy.predict_action_chunk(obs, goal), loaded.predict_action_chunk(obs, goal),
                               rtol=0, atol=0)


def test_relative_actions_round_trip(policy):
    """Env actions → the expert's state-relative normalised form → back is the identity; the
    gripper (not a relative dim) ignores the state."""
    policy.set_normalization(np.random.rand(50, 5), np.random.rand(50, 18, 5), np.random.rand(50, 5),
                             np.random.rand(50, 2, 4, 4, 4))
    actions, state = torch.rand(3, 18, 5), torch.rand(3, 5)
    torch.testing.assert_close(policy._from_model(policy._to_model(actions, state), state), actions)
    moved = state.clone()
    moved[:, 0] += 0.5                           # x is relative: the same model output lands 0.5 further
    moved[:, 4] += 0.5                           # the gripper is absolute: unchanged
    x = policy._to_model(actions, state)
    delta = policy._from_model(x, moved) - actions
    torch.testing.assert_close(delta[..., 0], torch.full_like(delta[..., 0], 0.5))
    torch.testing.assert_close(delta[..., 4], torch.zeros_like(delta[..., 4]))


def test_half_turn_actions_model_the_yaw_as_an_axis():
    """``half_turn_actions``: the expert models the wrist's yaw as (cos 2θ, sin 2θ), the same for a yaw and that yaw
    a half turn round, and control takes the axis's yaw nearest the current one: the round trip is the identity for
    targets within a quarter turn of the state, and a target a half turn round lands back there."""
    policy = Act2GoalPolicy(TINY.with_(relative_dims=(0, 1, 2), half_turn_actions=True))
    assert policy.config.model_action_dim == 6 and policy.expert.action_in.in_features == 6
    policy.set_normalization(np.random.rand(50, 5), np.random.rand(50, 18, 5), np.random.rand(50, 5),
                             np.random.rand(50, 2, 4, 4, 4))
    state = torch.rand(3, 5) * 4 - 2
    actions = torch.rand(3, 18, 5)
    actions[..., 3] = state[:, None, 3] + torch.rand(3, 18) * 3 - 1.5                      # within ±86° of the state
    x = policy._to_model(actions, state)
    assert x.shape == (3, 18, 6)
    torch.testing.assert_close(policy._from_model(x, state), actions)
    turned = actions.clone()
    turned[..., 3] += torch.pi
    torch.testing.assert_close(policy._to_model(turned, state), x)
    moved = state.clone()
    moved[:, 3] += torch.pi                        # the wrist a half turn round: the same axis, the yaw nearest it
    torch.testing.assert_close(policy._from_model(x, moved)[..., 3], turned[..., 3])


def test_half_turn_actions_refit_a_trained_experts_layers(tmp_path):
    """Switched on for a trained expert (``train --init … --half-turn-actions --renormalize``), the action layers
    take the new form and keep what they learned of the dims both share; the saved policy loads as it ran."""
    torch.manual_seed(0)
    policy = Act2GoalPolicy(TINY.with_(relative_dims=(0, 1, 2)), vae=VideoVAE(TINY_VAE).requires_grad_(False))
    torch.nn.init.normal_(policy.expert.head.proj.weight)
    old_in, old_out = policy.expert.action_in.weight.clone(), policy.expert.head.proj.weight.clone()
    policy.config.half_turn_actions = True
    policy.expert.refit_action_layers(())
    new_in, new_out = policy.expert.action_in.weight, policy.expert.head.proj.weight
    assert new_in.shape == (16, 6) and new_out.shape == (6, 16) and policy.expert.action_std.shape == (6,)
    torch.testing.assert_close(new_in[:, :4], old_in[:, [0, 1, 2, 4]])        # x, y, z, grip; then cos, sin
    torch.testing.assert_close(new_out[:4], old_out[[0, 1, 2, 4]])
    assert not new_out[4:].any()
    policy.stage = 2
    loss, _ = policy(make_batch(b=4))
    assert torch.isfinite(loss)
    policy.eval()
    policy.save_pretrained(tmp_path)
    loaded = Act2GoalPolicy.from_pretrained(tmp_path)
    obs, goal = make_obs()
    policy.reset(0), loaded.reset(0)
    torch.testing.assert_close(loaded.predict_action_chunk(obs, goal), policy.predict_action_chunk(obs, goal))


def test_bad_inputs(policy, tmp_path):
    obs, goal = make_obs()
    with pytest.raises(ValueError, match="lacks camera view"):
        policy.predict_action_chunk({"images": {"head": obs["images"]["head"]}, "state": obs["state"]}, goal)
    bad = dict(obs["images"], head=np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8 frames of shape"):
        policy.predict_action_chunk({"images": bad, "state": obs["state"]}, goal)
    policy.save_pretrained(tmp_path / "p")
    other = Act2GoalPolicy(TINY.with_(wm_dim=64), vae=policy.vae)
    other.save_pretrained(tmp_path / "q")
    (tmp_path / "p" / "world_model" / "model.safetensors").write_bytes(
        (tmp_path / "q" / "world_model" / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match="does not match its config"):
        Act2GoalPolicy.from_pretrained(tmp_path / "p")
    with pytest.raises(ValueError, match="No checkpoint"):
        Act2GoalPolicy.from_pretrained(tmp_path / "nowhere")


@pytest.mark.parametrize("kwargs,message", [
    ({"msth_P": 10, "msth_r": 4}, "multiple of the stride"), ({"wm_dim": 33}, "divisible by"),
    ({"latent_size": 5}, "divisible by patch_size"), ({"views": ()}, "at least one camera"),
    ({"goal_frame": "last"}, "Unknown goal frame"), ({"pose_loss_weight": 1.0, "keypoints": 0}, "reads keypoints"),
    ({"pose_loss_weight": -0.5}, "at least 0"), ({"context_dropout": 1.0}, r"in \[0, 1\)"),
    ({"context_dropout": -0.1}, r"in \[0, 1\)"), ({"half_turn_actions": True}, "take them out of relative_dims"),
    ({"pose_target": "goal"}, "pose_target must be one of done, next_grip"),
    ({"video_loss_weight": -0.1}, "at least 0"),
    ({"video_loss_weight": 0.1, "use_world_model": False, "use_msth": False}, "needs a world model"),
])
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TINY.with_(**kwargs)


def test_without_msth_predicts_proximal_only():
    cfg = TINY.with_(use_msth=False)
    assert cfg.msth.M == 0 and cfg.msth.num_frames == 2 and cfg.msth.num_actions == 8
    p = Act2GoalPolicy(cfg)
    loss, _ = p(make_batch(cfg))
    assert torch.isfinite(loss)


def test_dp_gc_baseline_has_no_world_model():
    cfg = TINY.with_(use_world_model=False, use_msth=False)
    p = Act2GoalPolicy(cfg)
    assert p.name == "dp_gc" and cfg.num_future_frames == 0
    loss, parts = p(make_batch(TINY.with_(use_msth=False)))
    assert parts["loss_video"] == 0 and torch.isfinite(loss)
    with pytest.raises(ValueError, match="cannot imagine"):
        p.imagine(*make_obs())


def test_goal_is_encoded_once_per_goal(policy, monkeypatch):
    obs, goal = make_obs()
    policy.eval()
    calls = []
    encode = policy.vae.encode
    monkeypatch.setattr(policy.vae, "encode", lambda x: calls.append(x.shape) or encode(x))
    policy.reset(seed=2)
    first = policy.predict_action_chunk(obs, goal)
    policy.predict_action_chunk(obs, goal)
    assert len(calls) == 3                                  # obs, goal, obs: the goal came from the cache
    policy._goal_cache = None
    policy.reset(seed=2)
    torch.testing.assert_close(policy.predict_action_chunk(obs, goal), first, rtol=0, atol=0)
    _, other = make_obs(seed=5)
    policy.predict_action_chunk(obs, other)
    assert len(calls) == 7                                  # obs+goal after the clear, then obs + a new goal


@pytest.mark.parametrize("noise, dims", [(0.0, None), (0.5, None), (0.5, (0, 1, 2, 3))])
def test_state_noise_only_while_training(noise, dims):
    """``state_noise`` perturbs the expert's proprio input in training only, with the configured std,
    on the dims ``state_noise_dims`` names (every dim by default)."""
    torch.manual_seed(0)
    policy = Act2GoalPolicy(TINY.with_(state_noise=noise, state_noise_dims=dims), vae=VideoVAE(TINY_VAE))
    seen = []
    forward = policy.expert.forward
    policy.expert.forward = lambda a, st, *rest: seen.append(st) or forward(a, st, *rest)
    batch = make_batch(b=64)
    clean = policy._norm_state(batch["state"])
    policy.train()
    policy(batch)
    policy.eval()
    policy(batch)
    torch.testing.assert_close(seen[1], clean)
    noisy = list(range(clean.shape[1])) if dims is None else list(dims)
    spared = [d for d in range(clean.shape[1]) if d not in noisy]
    assert abs(float((seen[0] - clean)[:, noisy].std()) - noise) < 0.05
    torch.testing.assert_close(seen[0][:, spared], clean[:, spared], rtol=0, atol=0)


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_context_dropout_nulls_whole_samples_while_training(p):
    """``context_dropout``: in training, that fraction of the samples' expert reads zeros for every block's
    world-model context (the same samples in every block), the others the world model's states as they are;
    control always reads them."""
    torch.manual_seed(0)
    policy = Act2GoalPolicy(TINY.with_(context_dropout=p), vae=VideoVAE(TINY_VAE))
    seen = []
    forward = policy.expert.forward
    policy.expert.forward = lambda a, st, s, off, hidden, kp: seen.append(hidden) or forward(a, st, s, off, hidden, kp)
    batch = make_batch(b=64)
    policy.train()
    policy(batch)
    policy.eval()
    policy(batch)
    train, control = ([h.flatten(1).abs().amax(1) == 0 for h in hidden] for hidden in seen)
    assert all(torch.equal(z, train[0]) for z in train)
    assert abs(float(train[0].float().mean()) - p) < 0.15
    assert not any(z.any() for z in control)


def test_state_noise_dims_must_be_state_dims():
    with pytest.raises(ValueError, match=r"state_noise_dims \(5,\) must name state dims 0..4"):
        TINY.with_(state_noise=0.5, state_noise_dims=(5,))


def test_latents_are_standardised_per_element(policy):
    """What varies between training frames reaches the networks at unit scale; what never changes
    is not blown up (the std floor), and imagine's decode gets the VAE's latents back."""
    rng = np.random.default_rng(0)
    lat = np.full((400, 2, 4, 4, 4), 0.7) + rng.normal(0, 0.01, (400, 2, 4, 4, 4))
    lat[:, 0, 1, 2, 3] += rng.normal(0, 0.5, 400)                   # one element moves (an object)
    policy.set_normalization(np.random.rand(50, 5), np.random.rand(50, 18, 5), np.random.rand(50, 5), lat)
    z = policy.world_model.standardize(torch.as_tensor(lat, dtype=torch.float32))
    assert 0.9 < z[:, 0, 1, 2, 3].std() < 1.05
    assert z[:, 1].std() < 0.15 and abs(z.mean()) < 0.05
    back = policy.world_model.standardize(z[:, :, None].expand(-1, -1, 3, -1, -1, -1), inverse=True)
    torch.testing.assert_close(back[:, :, 2], torch.as_tensor(lat, dtype=torch.float32))
    with pytest.raises(ValueError, match="standardises latents"):
        policy.set_normalization(np.random.rand(50, 5), np.random.rand(50, 18, 5), np.random.rand(50, 5))


def test_keypoints_are_where_the_object_is(policy):
    """A heat map that picks out channel 0 puts its keypoint on the latent cell where channel 0 peaks."""
    with torch.no_grad():
        policy.expert.keypoint_maps.weight.zero_()
        policy.expert.keypoint_maps.weight[:, 0] = 50.0
        policy.expert.keypoint_maps.bias.zero_()
    obs, goal = torch.zeros(1, 2, 4, 4, 4), torch.zeros(1, 2, 4, 4, 4)
    obs[0, 0, 0, 1, 3] = 1.0                                   # head view: row 1, column 3 of a 4×4 grid
    goal[0, 0, 0, 2, 0] = 1.0                                  # the goal's object: row 2, column 0
    kp = policy.expert.keypoints(obs, goal).reshape(2, 2, TINY.keypoints, 2)      # (current/goal, view, k, xy)
    torch.testing.assert_close(kp[0, 0], torch.tensor([[1.0, -1 / 3]]).expand(TINY.keypoints, 2), atol=1e-3, rtol=0)
    torch.testing.assert_close(kp[1, 0], torch.tensor([[-1.0, 1 / 3]]).expand(TINY.keypoints, 2), atol=1e-3, rtol=0)
    torch.testing.assert_close(kp[0, 1], torch.zeros(TINY.keypoints, 2), atol=1e-3, rtol=0)   # uniform: the centre


def _readout_error(expert, readout, scenes, steps: int) -> float:
    """Train ``expert``'s keypoint maps and a linear ``readout`` of its keypoints on ``scenes(n) -> (now, goal,
    target)`` batches; the mean held-out error of the read-out."""
    opt = torch.optim.Adam([*expert.keypoint_maps.parameters(), *readout.parameters()], lr=1e-2)
    for _ in range(steps):
        now, goal, y = scenes(64)
        loss = ((readout(expert.keypoints(now, goal)) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    now, goal, y = scenes(256)
    with torch.no_grad():
        return (readout(expert.keypoints(now, goal)) - y).abs().mean().item()


def _locate_error(hidden: int, steps: int = 300) -> float:
    """Train keypoints + a linear read-out to find a one-cell object beside a 2×2 distractor of the
    same colour on 8×8 latents; the mean held-out error of the read-out (in [-1, 1] units)."""
    from a2g_core.models.act2goal.modeling_act2goal import ActionExpert
    torch.manual_seed(0)
    cfg = TINY.with_(latent_size=8, patch_size=4, keypoint_hidden=hidden)
    expert = ActionExpert(cfg)
    g = torch.Generator().manual_seed(1)

    def scenes(n):
        z = 0.1 * torch.randn(n, 2, 4, 8, 8, generator=g)
        obj = torch.randint(0, 8, (n, 2), generator=g)
        for i in range(n):                                     # the distractor, away from the object
            r, c = [int(x) for x in torch.randint(0, 7, (2,), generator=g)]
            z[i, 0, 0, r:r + 2, c:c + 2] += 1.0
            z[i, 0, 0, obj[i, 0], obj[i, 1]] = 1.0
        return z, z, obj.float() / 3.5 - 1                     # (row, column) in [-1, 1]

    return _readout_error(expert, torch.nn.Linear(2 * 2 * cfg.keypoints * 2, 2), scenes, steps)


def test_convolutional_keypoints_find_a_small_object_a_colour_filter_cannot():
    """plug_in's peg is small: a 1×1 heat map (keypoint_hidden=0) cannot tell a one-cell object from
    a bigger one of the same colour; the 3×3 convolutions of keypoint_hidden can."""
    colour_filter, conv = _locate_error(0), _locate_error(16)
    assert conv < 0.2 < colour_filter, (conv, colour_filter)


def test_checkpoints_without_convolutional_keypoints_keep_their_layout():
    """keypoint_hidden=0 (the default, and every checkpoint saved before it existed) is the 1×1 map."""
    from a2g_core.models.act2goal.modeling_act2goal import ActionExpert
    keys = {k for k in ActionExpert(TINY).state_dict() if k.startswith("keypoint_maps")}
    assert keys == {"keypoint_maps.weight", "keypoint_maps.bias"}
    assert len([k for k in ActionExpert(TINY.with_(keypoint_hidden=8)).state_dict() if k.startswith("keypoint_maps")]) == 6


def _moved_object_error(contrast: bool, steps: int = 300) -> float:
    """Train keypoints + a linear read-out to find where an object is now, beside a look-alike that stays
    put, given a goal frame with the object moved elsewhere; the mean held-out error ([-1, 1] units)."""
    from a2g_core.models.act2goal.modeling_act2goal import ActionExpert
    torch.manual_seed(0)
    cfg = TINY.with_(latent_size=8, patch_size=4, keypoint_hidden=16, keypoint_contrast=contrast)
    expert = ActionExpert(cfg)
    g = torch.Generator().manual_seed(1)

    def scenes(n):
        now, goal = 0.1 * torch.randn(2, n, 2, 4, 8, 8, generator=g)
        cells = torch.empty(n, 3, dtype=torch.long)
        for i in range(n):                       # the object now, where it goes, the look-alike: three cells
            cells[i] = torch.randperm(64, generator=g)[:3]
            obj, dest, still = [(int(c) // 8, int(c) % 8) for c in cells[i]]
            now[i, 0, 0][obj] = now[i, 0, 0][still] = goal[i, 0, 0][dest] = goal[i, 0, 0][still] = 1.0
        rc = torch.stack([cells[:, 0] // 8, cells[:, 0] % 8], dim=1)
        return now, goal, rc.float() / 3.5 - 1

    return _readout_error(expert, torch.nn.Linear(2 * 2 * cfg.keypoints * 2, 2), scenes, steps)


def test_contrast_keypoints_find_what_has_to_move():
    """Read alone, a frame cannot tell the object from a look-alike that stays put (the cup from the
    coaster it goes on); read beside the goal, the object is where the two frames differ."""
    alone, contrast = _moved_object_error(False), _moved_object_error(True)
    assert contrast < 0.5 * alone, (contrast, alone)


def test_contrast_keypoints_read_both_frames():
    from a2g_core.models.act2goal.modeling_act2goal import ActionExpert
    expert = ActionExpert(TINY.with_(keypoint_contrast=True))
    assert expert.keypoint_maps.weight.shape[1] == 2 * TINY.latent_channels
    obs, goal = torch.randn(2, 2, 4, 4, 4), torch.randn(2, 2, 4, 4, 4)
    assert expert.keypoints(obs, goal).shape == (2, 2 * 2 * TINY.keypoints * 2)


def _heading_error(shapes: bool, steps: int = 100) -> float:
    """Train keypoints + a linear read-out to say which way a bar lies (cos 2θ, sin 2θ: a bar is the same
    turned half round) on 16×16 latents; the mean held-out error of the read-out."""
    from a2g_core.models.act2goal.modeling_act2goal import ActionExpert
    torch.manual_seed(0)
    cfg = TINY.with_(latent_size=16, patch_size=4, keypoint_hidden=16, keypoint_shapes=shapes)
    expert = ActionExpert(cfg)
    g = torch.Generator().manual_seed(1)

    def scenes(n):
        z = 0.1 * torch.randn(n, 2, 4, 16, 16, generator=g)
        theta = torch.rand(n, generator=g) * torch.pi
        centre = 5 + 6 * torch.rand(n, 2, generator=g)
        along = torch.linspace(-3.5, 3.5, 15)
        for i in range(n):
            r = (centre[i, 0] + along * torch.sin(theta[i])).round().long()
            c = (centre[i, 1] + along * torch.cos(theta[i])).round().long()
            z[i, 0, 0, r, c] = 1.0
        return z, z, torch.stack([torch.cos(2 * theta), torch.sin(2 * theta)], dim=1)

    return _readout_error(expert, torch.nn.Linear(2 * 2 * cfg.keypoints * (5 if shapes else 2), 2), scenes, steps)


def test_keypoint_shapes_say_which_way_a_bar_lies_where_positions_cannot():
    """place_shoe must set the shoe down along the mat: a map's mean is where the mat is, its spread's
    shape which way it lies. Maps can learn to put their means at a bar's ends, but slowly (measured: after
    100 steps 0.22 against 0.06 with the shapes; after 300, 0.08 against 0.04)."""
    positions, shapes = _heading_error(False), _heading_error(True)
    assert shapes < 0.5 * positions, (shapes, positions)


def test_keypoint_shapes_added_to_a_trained_expert_leave_its_actions_as_they_were(tmp_path):
    torch.manual_seed(0)
    policy = Act2GoalPolicy(TINY.with_(), vae=VideoVAE(TINY_VAE).requires_grad_(False))
    torch.nn.init.normal_(policy.expert.head.proj.weight)      # the head starts at zero
    b = make_batch(b=2)
    _, hidden = policy.world_model(b["obs_latents"], b["goal_latents"], b["future_latents"], torch.ones(2),
                                   b["frame_offsets"])
    a, s = torch.randn(2, TINY.msth.num_actions, 5), torch.full((2,), 0.5)

    def velocity():
        kp = policy.expert.keypoints(b["obs_latents"], b["goal_latents"])
        return policy.expert(a, b["state"], s, b["action_offsets"], hidden, kp).detach()

    before = velocity()
    policy.expert.add_keypoint_shapes()
    assert policy.config.keypoint_shapes and policy.expert.keypoints(b["obs_latents"], b["goal_latents"]).shape == (
        2, 2 * 2 * TINY.keypoints * 5)
    torch.testing.assert_close(velocity(), before)
    policy.save_pretrained(tmp_path)
    loaded = Act2GoalPolicy.from_pretrained(tmp_path)
    assert loaded.config.keypoint_shapes and "keypoint_shape_in.weight" in loaded.expert.state_dict()
    assert not TINY.keypoint_shapes


def test_an_expert_without_keypoints_has_no_shapes_to_read():
    from a2g_core.models.act2goal.modeling_act2goal import ActionExpert
    with pytest.raises(ValueError, match="no keypoints"):
        ActionExpert(TINY.with_(keypoints=0)).add_keypoint_shapes()


def test_pose_loss_trains_the_keypoints_to_the_done_state(tmp_path):
    """``pose_loss_weight``: a linear readout of the keypoint positions predicts the (normalised) state where the
    task is done; its loss joins the action loss at that weight and reaches the keypoint maps. Added to a trained
    policy (``train --init … --pose-loss``) the readout is saved and loaded with it; control never reads it."""
    torch.manual_seed(0)
    policy = Act2GoalPolicy(TINY.with_(), vae=VideoVAE(TINY_VAE).requires_grad_(False))
    policy.stage = 2
    assert not hasattr(policy.expert, "pose_readout")                 # off: old checkpoints keep their layout
    b = {**make_batch(b=4), "done_state": torch.randn(4, 5)}
    torch.manual_seed(1)
    _, logs = policy(b)
    assert "loss_pose" not in logs
    policy.config.pose_loss_weight = 2.0
    policy.expert.add_pose_readout()
    torch.manual_seed(1)
    loss, logs = policy(b)
    assert logs["loss_pose"] > 0
    torch.testing.assert_close(loss, logs["loss_action"] + 2.0 * logs["loss_pose"])
    policy.expert.keypoint_maps.weight.grad = None
    kp = policy.expert.keypoints(policy.world_model.standardize(b["obs_latents"]),
                                 policy.world_model.standardize(b["goal_latents"]))
    torch.nn.functional.mse_loss(policy.expert.pose_readout(kp), policy.expert.pose_target(b["done_state"])).backward()
    assert policy.expert.keypoint_maps.weight.grad.abs().sum() > 0
    turned = b["done_state"].clone()
    turned[:, 3] += torch.pi                          # the wrist's yaw a half turn round: the same grip, the same target
    target = policy.expert.pose_target(b["done_state"])
    assert target.shape == (4, 6)                     # x, y, z, grip normalised; the yaw as (cos 2θ, sin 2θ)
    torch.testing.assert_close(policy.expert.pose_target(turned), target)
    torch.testing.assert_close(target[:, 4:].norm(dim=1), torch.ones(4))
    obs, goal = make_obs()
    policy.eval()
    policy.save_pretrained(tmp_path)
    loaded = Act2GoalPolicy.from_pretrained(tmp_path)
    assert loaded.config.pose_loss_weight == 2.0
    torch.testing.assert_close(loaded.expert.pose_readout.weight, policy.expert.pose_readout.weight)
    policy.reset(0), loaded.reset(0)
    torch.testing.assert_close(loaded.predict_action_chunk(obs, goal), policy.predict_action_chunk(obs, goal))
