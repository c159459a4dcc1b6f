"""Act2Goal (paper §4.2): a goal-conditioned world model (GCWM) and an action expert that reads it
layer by layer, both built from diffusers' LTX video-transformer blocks, trained by flow matching.

Token layout of the world model, per sample: for every view, the current observation's latent
frame (clean, timestep 0) followed by the MSTH future frames (noised); each latent frame is
patchified into ``tokens_per_frame`` tokens. Every block cross-attends to the goal image's tokens
(all views). The action expert's tokens are a proprio-state token, (when configured) a token of
spatial-softmax keypoints of the current and goal latents, and P + M action tokens; its block i
cross-attends to the world model's block-i hidden states. Latents may be standardised per element
(``latent_standardize``) before either network sees them.
"""
from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.models.embeddings import TimestepEmbedding, get_timestep_embedding
from diffusers.models.transformers.transformer_ltx import LTXVideoTransformerBlock

from a2g_core import msth
from a2g_core.flow_matching import euler_integrate, interpolate, sample_t, velocity_target
from a2g_core.models.act2goal.configuration_act2goal import Act2GoalConfig


LATENT_STD_FLOOR = 0.1      # of a standardised latent element's std (latents are ~unit scale per channel)


def _sinusoid(values: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of any-shaped ``values`` (in [0, 1000]) → (*shape, dim)."""
    flat = get_timestep_embedding(values.reshape(-1).float(), dim, flip_sin_to_cos=True, downscale_freq_shift=0)
    return flat.reshape(*values.shape, dim)


def _video_times(b: int, device) -> torch.Tensor:
    """Flow times of the video loss: half the samples see pure-noise futures (the features the expert
    gets at control time), the others a drawn time."""
    s = sample_t(b, device=device)
    return torch.where(torch.rand(b, device=device) < 0.5, torch.ones_like(s), s)


class _Head(nn.Module):
    """Final adaLN (shift, scale from the token's timestep embedding) and projection."""

    def __init__(self, dim: int, out: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mod = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, out)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        shift, scale = self.mod(F.silu(temb)).chunk(2, dim=-1)
        return self.proj(self.norm(x) * (1 + scale) + shift)


class _TimeConditioning(nn.Module):
    """Per-token flow time s → (embedding for the head, 6·dim adaLN parameters for the blocks)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.embed = TimestepEmbedding(dim, dim)
        self.mod = nn.Linear(dim, 6 * dim)

    def forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.embed(_sinusoid(s * 1000.0, self.dim))
        return emb, self.mod(F.silu(emb))


def _blocks(cfg: Act2GoalConfig, dim: int, heads: int, cross_dim: int) -> nn.ModuleList:
    return nn.ModuleList(LTXVideoTransformerBlock(dim, heads, dim // heads, cross_attention_dim=cross_dim)
                         for _ in range(cfg.layers))


class GoalConditionedWorldModel(nn.Module):
    config_class = Act2GoalConfig

    def __init__(self, config: Act2GoalConfig):
        super().__init__()
        self.config = config
        c, p, d = config.latent_channels, config.patch_size, config.wm_dim
        v, t, f = len(config.views), config.tokens_per_frame, config.num_future_frames
        self.patch_in = nn.Linear(c * p * p, d)
        self.goal_in = nn.Linear(c * p * p, d)
        self.pos = nn.Parameter(torch.randn(v, 1 + f, t, d) * 0.02)
        self.goal_pos = nn.Parameter(torch.randn(v, t, d) * 0.02)
        self.offset_embed = TimestepEmbedding(d, d)
        self.time = _TimeConditioning(d)
        self.blocks = _blocks(config, d, config.wm_heads, d)
        self.head = _Head(d, c * p * p)
        if config.latent_standardize:       # per-element statistics of the training latents (see the config)
            s = config.latent_size
            self.register_buffer("latent_mean", torch.zeros(v, c, s, s))
            self.register_buffer("latent_std", torch.ones(v, c, s, s))

    def standardize(self, z: torch.Tensor, inverse: bool = False) -> torch.Tensor:
        """VAE latents (B, V, [F,] C, h, w) ↔ the standardised latents the networks model."""
        if not self.config.latent_standardize:
            return z
        mean, std = self.latent_mean, self.latent_std
        if z.dim() == 6:
            mean, std = mean[:, None], std[:, None]
        return z * std + mean if inverse else (z - mean) / std

    # (B, V, F, C, h, w) <-> (B, V, F, T, C·p·p)
    def patchify(self, z: torch.Tensor) -> torch.Tensor:
        p = self.config.patch_size
        *lead, c, h, w = z.shape
        z = z.reshape(*lead, c, h // p, p, w // p, p)
        z = z.movedim(-4, -2).movedim(-5, -1)                      # (..., h/p, w/p, p, p, c)
        return z.reshape(*lead, (h // p) * (w // p), p * p * c)

    def unpatchify(self, x: torch.Tensor) -> torch.Tensor:
        p, c, s = self.config.patch_size, self.config.latent_channels, self.config.latent_size
        *lead, _, _ = x.shape
        x = x.reshape(*lead, s // p, s // p, p, p, c)
        x = x.movedim(-1, -5).movedim(-2, -4)                      # (..., c, h/p, p, w/p, p)
        return x.reshape(*lead, c, s, s)

    def forward(self, obs: torch.Tensor, goal: torch.Tensor, future: torch.Tensor, s: torch.Tensor,
                frame_offsets: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """obs, goal: (B, V, C, h, w) clean latents; future: (B, V, F, C, h, w) noised at ``s`` (B,);
        frame_offsets: (B, F) steps from now. Returns the velocity for ``future`` and every block's
        hidden states (B, N, D)."""
        b, v, f = future.shape[:3]
        d = self.config.wm_dim
        x = self.patch_in(self.patchify(torch.cat([obs[:, :, None], future], dim=2)))     # (B, V, 1+F, T, D)
        offsets = torch.cat([frame_offsets.new_zeros(b, 1), frame_offsets], dim=1).float()
        x = x + self.pos + self.offset_embed(_sinusoid(offsets / self.config.max_offset * 1000.0, d))[:, None, :, None]
        t = x.shape[3]
        x = x.reshape(b, -1, d)
        slot_s = torch.cat([torch.zeros_like(s)[:, None], s[:, None].expand(b, f)], dim=1)   # obs clean
        emb, mod = self.time(slot_s)                                                         # (B, 1+F, ·)
        expand = lambda e: e[:, None, :, None].expand(b, v, 1 + f, t, e.shape[-1]).reshape(b, -1, e.shape[-1])
        emb, mod = expand(emb), expand(mod)
        ctx = (self.goal_in(self.patchify(goal)) + self.goal_pos).reshape(b, -1, d)
        hidden = []
        for block in self.blocks:
            x = block(x, ctx, mod)
            hidden.append(x)
        out = self.head(x, emb).reshape(b, v, 1 + f, t, -1)[:, :, 1:]
        return self.unpatchify(out), hidden


def doubled_layout(n: int, dims) -> list[tuple[str, int]]:
    """What each column of ``double_angles``'s output is, for N = ``n``: ("raw", d), then ("cos", d), ("sin", d)."""
    return [("raw", d) for d in range(n) if d not in dims] + [("cos", d) for d in dims] + [("sin", d) for d in dims]


def double_angles(x: torch.Tensor, dims) -> torch.Tensor:
    """(..., N) → (..., N + len(dims)): the other dims in order, then (cos 2θ, sin 2θ) of each of ``dims``
    (``doubled_layout``), which is the same for θ and θ + π (a parallel gripper's yaw)."""
    dims = list(dims)
    if not dims:
        return x
    other = [d for d in range(x.shape[-1]) if d not in dims]
    return torch.cat([x[..., other], (2 * x[..., dims]).cos(), (2 * x[..., dims]).sin()], dim=-1)


def undouble_angles(y: torch.Tensor, dims, near: torch.Tensor) -> torch.Tensor:
    """The inverse of ``double_angles``: each of ``dims`` is the angle of its axis nearest ``near`` (..., len(dims))."""
    dims = list(dims)
    if not dims:
        return y
    k, n = len(dims), y.shape[-1] - len(dims)
    other = [d for d in range(n) if d not in dims]
    axis = torch.atan2(y[..., n:], y[..., n - k: n]) / 2                 # the sines follow the cosines
    out = y.new_empty(*y.shape[:-1], n)
    out[..., other] = y[..., : n - k]
    out[..., dims] = near + torch.remainder(axis - near + torch.pi / 2, torch.pi) - torch.pi / 2
    return out


def _keypoint_maps(channels: int, k: int, hidden: int) -> nn.Module:
    """Latents (N, C, h, w) → k heat-map logits: a 1×1 convolution, after two 3×3 ones of width
    ``hidden`` when it is set (a colour filter alone does not single out a small object)."""
    if not hidden:
        return nn.Conv2d(channels, k, kernel_size=1)
    return nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1), nn.SiLU(),
                         nn.Conv2d(hidden, hidden, 3, padding=1), nn.SiLU(), nn.Conv2d(hidden, k, kernel_size=1))


class ActionExpert(nn.Module):
    config_class = Act2GoalConfig

    def __init__(self, config: Act2GoalConfig):
        super().__init__()
        self.config = config
        d, h = config.expert_dim, config.msth.num_actions
        self.action_in = nn.Linear(config.model_action_dim, d)
        self.state_in = nn.Linear(config.state_dim, d)
        k = config.keypoints
        if k:
            self.keypoint_maps = _keypoint_maps(config.latent_channels * (1 + config.keypoint_contrast), k,
                                                config.keypoint_hidden)
            self.keypoint_in = nn.Linear(2 * len(config.views) * k * 2, d)      # (current, goal) × views × k × (x, y)
            if config.keypoint_shapes:
                self._add_shape_input()
            if config.pose_loss_weight:
                self.add_pose_readout()
        self.pos = nn.Parameter(torch.randn(1 + (k > 0) + h, d) * 0.02)
        self.offset_embed = TimestepEmbedding(d, d)
        self.time = _TimeConditioning(d)
        self.blocks = _blocks(config, d, config.expert_heads, config.wm_dim)
        self.head = _Head(d, config.model_action_dim)
        # normalisation statistics travel with the checkpoint
        self.register_buffer("state_mean", torch.zeros(config.state_dim))
        self.register_buffer("state_std", torch.ones(config.state_dim))
        self.register_buffer("action_mean", torch.zeros(config.model_action_dim))
        self.register_buffer("action_std", torch.ones(config.model_action_dim))

    def _add_shape_input(self) -> None:
        """The keypoints' shapes enter through a layer of their own that starts at zero: added to a trained
        expert, it acts as before until training finds a use for them."""
        maps = self.keypoint_in.in_features // 2                      # (current, goal) × views × k, an (x, y) each
        self.keypoint_shape_in = nn.Linear(maps * 3, self.config.expert_dim)
        nn.init.zeros_(self.keypoint_shape_in.weight)
        nn.init.zeros_(self.keypoint_shape_in.bias)

    def add_keypoint_shapes(self) -> None:
        """Read the keypoints' shapes from now on (``keypoint_shapes``), at zero weight."""
        if not self.config.keypoints:
            raise ValueError("This policy has no keypoints to read the shapes of.")
        if not self.config.keypoint_shapes:
            self.config.keypoint_shapes = True
            self._add_shape_input()

    def refit_action_layers(self, old_half_turn: tuple) -> None:
        """The action input and output layers to the config's form, after ``half_turn_actions`` changed on a trained
        expert whose half-turn action dims were ``old_half_turn``: what they learned of the dims both forms share
        stays, a new (cos, sin) column starts as a fresh layer's with zero output, and the action statistics are
        the caller's to refit (``train --renormalize``)."""
        a = self.config.action_dim
        old, new = doubled_layout(a, tuple(old_half_turn)), doubled_layout(a, self.config.half_turn_action_dims)
        if old == new:
            return
        shared = [(new.index(c), old.index(c)) for c in new if c in old]
        to, frm = [i for i, _ in shared], [j for _, j in shared]
        action_in = nn.Linear(len(new), self.config.expert_dim)
        proj = nn.Linear(self.config.expert_dim, len(new))
        nn.init.zeros_(proj.weight), nn.init.zeros_(proj.bias)
        with torch.no_grad():
            action_in.weight[:, to] = self.action_in.weight[:, frm]
            action_in.bias.copy_(self.action_in.bias)
            proj.weight[to] = self.head.proj.weight[frm]
            proj.bias[to] = self.head.proj.bias[frm]
        self.action_in, self.head.proj = action_in, proj
        self.action_mean, self.action_std = torch.zeros(len(new)), torch.ones(len(new))

    def add_pose_readout(self) -> None:
        """The linear readout of the keypoint positions that ``pose_loss_weight`` trains to the done state
        (``pose_target``); it only shapes the maps in training, control never reads it."""
        if not hasattr(self, "pose_readout"):
            n = self.config.state_dim + len(self.config.half_turn_dims)
            self.pose_readout = nn.Linear(self.keypoint_in.in_features, n)

    def pose(self, keypoints: torch.Tensor) -> torch.Tensor:
        """The pose readout of a keypoint token (from ``keypoints``): what ``pose_target`` gives of the done state."""
        return self.pose_readout(keypoints[:, : self.keypoint_in.in_features])

    def pose_target(self, state: torch.Tensor) -> torch.Tensor:
        """(B, S) states → what the pose readout predicts: the normalised state, where a dim that is a gripper's
        yaw gives (cos 2θ, sin 2θ) instead. A parallel gripper grips the same turned by a half turn, so an expert's
        yaw for one scene can be either of two; a readout of the raw yaw learns their mean, which is neither
        (measured: place_shoe's release yaws span 300°, and such a readout was no better than a blind guess)."""
        half = list(self.config.half_turn_dims)
        z = (state - self.state_mean) / self.state_std
        z[:, half] = state[:, half]
        return double_angles(z, half)

    def keypoints(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor | None:
        """Spatial-softmax keypoints of the current and goal latents (B, V, C, h, w) → (B, 2·V·k·2)
        expected (x, y) in [-1, 1]; None when the config has none. With ``keypoint_contrast`` each
        frame's maps read it channel-stacked with the other frame. With ``keypoint_shapes`` each map's
        (anisotropy x, anisotropy y, size) follow, (B, 2·V·k·3) more."""
        if not self.config.keypoints:
            return None
        if self.config.keypoint_contrast:
            obs, goal = torch.cat([obs, goal], dim=2), torch.cat([goal, obs], dim=2)
        z = torch.stack([obs, goal], dim=1)                                   # (B, 2, V, C or 2C, h, w)
        b, n, v, c, h, w = z.shape
        heat = self.keypoint_maps(z.reshape(-1, c, h, w)).flatten(-2).softmax(-1)       # (B·2·V, k, h·w)
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h, device=z.device), torch.linspace(-1, 1, w, device=z.device),
                                indexing="ij")
        xs, ys = xs.reshape(-1), ys.reshape(-1)
        mx, my = heat @ xs, heat @ ys
        coords = torch.stack([mx, my], dim=-1)                                          # (B·2·V, k, 2)
        if not self.config.keypoint_shapes:
            return coords.reshape(b, -1)
        vxx, vyy, vxy = heat @ (xs * xs) - mx ** 2, heat @ (ys * ys) - my ** 2, heat @ (xs * ys) - mx * my
        spread = (vxx + vyy).clamp_min(1e-6)
        shapes = torch.stack([(vxx - vyy) / spread, 2 * vxy / spread, spread.sqrt()], dim=-1)
        return torch.cat([coords.reshape(b, -1), shapes.reshape(b, -1)], dim=1)

    def forward(self, actions: torch.Tensor, state: torch.Tensor, s: torch.Tensor, action_offsets: torch.Tensor,
                wm_hidden: list[torch.Tensor], keypoints: torch.Tensor | None = None) -> torch.Tensor:
        """actions: (B, H, A) normalised and noised at ``s``; state: (B, S) normalised; ``keypoints``
        from ``self.keypoints`` when the config has them; returns the velocity."""
        b, h, _ = actions.shape
        d = self.config.expert_dim
        cond = [self.state_in(state)[:, None]]
        if self.config.keypoints:
            n_xy = self.keypoint_in.in_features
            kp = self.keypoint_in(keypoints[:, :n_xy])
            if self.config.keypoint_shapes:
                kp = kp + self.keypoint_shape_in(keypoints[:, n_xy:])
            cond.append(kp[:, None])
        x = torch.cat([*cond, self.action_in(actions)], dim=1) + self.pos
        n = len(cond)
        offsets = torch.cat([action_offsets.new_zeros(b, n), action_offsets], dim=1).float()
        x = x + self.offset_embed(_sinusoid(offsets / self.config.max_offset * 1000.0, d))
        emb, mod = self.time(torch.cat([torch.zeros_like(s)[:, None].expand(b, n), s[:, None].expand(b, h)], dim=1))
        for block, ctx in zip(self.blocks, wm_hidden):
            x = block(x, ctx, mod)
        return self.head(x, emb)[:, n:]


def trained_on(directory) -> list[tuple[str, str]] | None:
    """The (task, mode) cells a saved policy was trained on, as its ``policy.json`` records them
    (None for a checkpoint that does not: those saved before the record existed)."""
    import json
    from pathlib import Path
    path = Path(directory) / "policy.json"
    cells = json.loads(path.read_text()).get("trained_on") if path.exists() else None
    return [tuple(c) for c in cells] if cells else None


def describe_cells(cells) -> str:
    """[(move_can_pot, easy), (move_can_pot, hard)] → 'move_can_pot (easy, hard)'."""
    by_task: dict[str, list[str]] = {}
    for task, mode in cells:
        by_task.setdefault(task, []).append(mode)
    return "; ".join(f"{t} ({', '.join(m)})" for t, m in by_task.items())


class Act2GoalPolicy(nn.Module):
    """The policy contract (STYLE.md rule 3): ``forward(batch) -> (loss, dict)``,
    ``predict_action_chunk``, ``select_action`` (a queue of the E executed actions), ``reset``, and
    ``imagine`` for the world model's preview. ``stage`` 1 trains ``L_v + λ·L_a``, 2 trains ``L_a``."""
    config_class = Act2GoalConfig

    @property
    def name(self) -> str:
        if not self.config.use_world_model:
            return "dp_gc"
        return "act2goal" if self.config.use_msth else "no_msth"

    def __init__(self, config: Act2GoalConfig, vae=None):
        super().__init__()
        self.config = config
        self.world_model = GoalConditionedWorldModel(config)
        self.expert = ActionExpert(config)
        self.vae = vae
        self.stage = 1
        self.trained_on: list[tuple[str, str]] | None = None   # (task, mode) cells of its data; None: not recorded
        self._queue: list[np.ndarray] = []
        # control's noise and imagine's are separate streams: imagining (the lab records it every chunk)
        # never changes which actions a seed gets
        self._generator = torch.Generator().manual_seed(0)
        self._imagine_generator = torch.Generator().manual_seed(0)
        self._goal_cache: tuple[bytes, torch.Tensor] | None = None   # the goal stays put across chunks

    # ------------------------------------------------------------------ normalisation
    def set_normalization(self, states: np.ndarray, chunks: np.ndarray, chunk_states: np.ndarray,
                          latents: np.ndarray | None = None) -> None:
        """Statistics of the states (N, S) and of the action chunks (N, H, A) in the model's
        (state-relative) form; ``chunk_states`` (N, S) is the state each chunk starts from;
        ``latents`` (N, V, C, h, w), training frames' latents, when the config standardises them
        (the std is floored at ``LATENT_STD_FLOOR`` so a pixel that never changes is not blown up)."""
        if self.config.latent_standardize:
            if latents is None:
                raise ValueError("This config standardises latents: pass training latents to set_normalization.")
            self.set_latent_normalization(latents)
        self.set_proprio_normalization(states, chunks, chunk_states)

    def set_latent_normalization(self, latents: np.ndarray) -> None:
        """The per-element latent statistics of ``set_normalization`` alone, from (N, V, C, h, w) latents."""
        z = torch.as_tensor(np.asarray(latents, dtype=np.float32))
        self.world_model.latent_mean.copy_(z.mean(0))
        self.world_model.latent_std.copy_(torch.sqrt(z.var(0) + LATENT_STD_FLOOR ** 2))

    def at_resolution(self, resolution: int) -> "Act2GoalPolicy":
        """This policy reading frames of ``resolution`` px (a new policy; its VAE is shared, in place, as
        ``VideoVAE.at_resolution``): the same tokens per frame in larger (or smaller) patches of latents, so the
        patch embeddings and the world model's latent head are resized bilinearly (the inputs scaled by the
        patch-area ratio, so a smooth latent field embeds as before) and every other weight is kept (the keypoint
        maps are 1×1 convolutions). The latent statistics are per element, so they are left to be refitted on
        frames of the new size (``set_latent_normalization``; ``train --carry-resolution`` does)."""
        if self.vae is None:
            raise ValueError("A policy without its VAE cannot change the frame size it reads.")
        cfg = self.config.fit_to_vae(self.vae.at_resolution(resolution).config)
        new = type(self)(cfg, vae=self.vae)
        new.stage, new.trained_on = self.stage, self.trained_on
        c, p0, p1 = cfg.latent_channels, self.config.patch_size, cfg.patch_size

        def grid(w):                       # rows in (p, p, c) order, resized as (c·rest) maps of p × p
            rest = w.shape[1:]
            x = w.reshape(p0, p0, c, -1).permute(2, 3, 0, 1).reshape(1, -1, p0, p0)
            x = F.interpolate(x, size=(p1, p1), mode="bilinear", align_corners=False)
            return x.reshape(c, -1, p1, p1).permute(2, 3, 0, 1).reshape(p1 * p1 * c, *rest)

        state = self.state_dict()
        for name in ("world_model.patch_in.weight", "world_model.goal_in.weight"):
            state[name] = grid(state[name].T).T * (p0 * p0) / (p1 * p1)
        for name in ("world_model.head.proj.weight", "world_model.head.proj.bias"):
            state[name] = grid(state[name])
        fresh = new.state_dict()                   # its latent statistics, per element: to be refitted
        state.update({k: fresh[k] for k in ("world_model.latent_mean", "world_model.latent_std") if k in state})
        new.load_state_dict(state)
        return new.train(self.training)

    def set_proprio_normalization(self, states: np.ndarray, chunks: np.ndarray, chunk_states: np.ndarray) -> None:
        """Only the state and action statistics of ``set_normalization``: what ``train --renormalize`` refits
        when a trained policy moves to data where a dim varies that did not (the latents' stay as trained)."""
        e = self.expert
        rel = self._relative_rows(chunks, chunk_states)
        e.state_mean.copy_(torch.as_tensor(states.mean(0))); e.state_std.copy_(torch.as_tensor(states.std(0) + 1e-3))
        e.action_mean.copy_(rel.mean(0)); e.action_std.copy_(rel.std(0) + 1e-3)

    def proprio_spread(self, states: np.ndarray, chunks: np.ndarray, chunk_states: np.ndarray):
        """(S,), (A,): how many times the policy's own std each state and (state-relative) action dim varies
        in this data; far above 1 where the policy was trained with that dim (nearly) constant."""
        rel = self._relative_rows(chunks, chunk_states)
        return (np.asarray(states).std(0) / self.expert.state_std.cpu().numpy(),      # the policy may be on a GPU
                rel.std(0).numpy() / self.expert.action_std.cpu().numpy())

    def _relative_rows(self, chunks, chunk_states) -> torch.Tensor:
        rel = self._model_form(torch.as_tensor(chunks, dtype=torch.float32), torch.as_tensor(chunk_states, dtype=torch.float32))
        return rel.reshape(-1, rel.shape[-1])

    def _state_offset(self, state: torch.Tensor) -> torch.Tensor:
        """(B, 1, A): the state's value on the relative dims, zero elsewhere."""
        off = state.new_zeros(state.shape[0], 1, self.config.action_dim)
        dims = list(self.config.relative_dims)
        off[:, 0, dims] = state[:, dims]
        return off

    def _model_form(self, actions, state):
        """Env actions (B, H, A) → the expert's form before normalisation: relative on ``relative_dims``, the
        half-turn dims as (cos 2θ, sin 2θ) (``half_turn_actions``)."""
        return double_angles(actions - self._state_offset(state), self.config.half_turn_action_dims)

    def _norm_state(self, x):
        return (x - self.expert.state_mean) / self.expert.state_std

    def _to_model(self, actions, state):
        """Env actions (B, H, A) → the normalised, state-relative actions the expert models."""
        return (self._model_form(actions, state) - self.expert.action_mean) / self.expert.action_std

    def _from_model(self, x, state):
        half = list(self.config.half_turn_action_dims)
        a = undouble_angles(x * self.expert.action_std + self.expert.action_mean, half, state[:, None, half])
        return a + self._state_offset(state)

    # ------------------------------------------------------------------ training
    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Batch (from ``data.windows``): obs/goal latents (B, V, C, h, w), future latents
        (B, V, F, C, h, w), frame_offsets (B, F), state (B, S), actions (B, H, A), action_offsets (B, H),
        done_state (B, S) (read with ``pose_loss_weight``), optionally action_mask (B, H): which action
        targets the loss reads (default all)."""
        f = self.config.num_future_frames
        std = self.world_model.standardize
        x0 = std(batch["future_latents"][:, :, :f])
        b = x0.shape[0]
        noise = torch.randn_like(x0)
        obs_lat, goal_lat = std(batch["obs_latents"]), std(batch["goal_latents"])

        def video(s):       # one world-model pass at flow times s: its video loss and the hidden states per block
            v_pred, hidden = self.world_model(obs_lat, goal_lat, interpolate(x0, noise, s), s,
                                              batch["frame_offsets"][:, :f])
            return (F.mse_loss(v_pred, velocity_target(x0, noise)) if f else torch.zeros((), device=x0.device)), hidden

        # stage 1 draws the flow times; stage 2's expert reads pure-noise futures, as at control time
        loss_v, hidden = video(_video_times(b, x0.device) if self.stage == 1 else torch.ones(b, device=x0.device))
        a0 = self._to_model(batch["actions"], batch["state"])
        a_noise = torch.randn_like(a0)
        sa = sample_t(b, device=a0.device)
        st = self._norm_state(batch["state"])
        if self.training and self.config.state_noise:
            jitter = self.config.state_noise * torch.randn_like(st)
            if self.config.state_noise_dims is not None:
                jitter[:, [d for d in range(st.shape[1]) if d not in self.config.state_noise_dims]] = 0
            st = st + jitter
        kp = self.expert.keypoints(obs_lat, goal_lat)
        if self.training and self.config.context_dropout:
            keep = (torch.rand(b, device=x0.device) >= self.config.context_dropout).to(x0.dtype)[:, None, None]
            hidden = [h * keep for h in hidden]
        u = self.expert(interpolate(a0, a_noise, sa), st, sa, batch["action_offsets"], hidden, kp)
        err = (u - velocity_target(a0, a_noise)) ** 2                  # (B, H, A)
        mask = batch.get("action_mask")                                # (B, H): the targets to learn
        loss_a = err.mean() if mask is None else (err * mask[..., None]).sum() / (mask.sum() * err.shape[-1])
        if self.stage == 1 and f:
            loss = loss_v + self.config.action_loss_weight * loss_a
        elif f and self.config.video_loss_weight:      # stage 2 keeping the world model's video: flow times as in stage 1
            loss_v, _ = video(_video_times(b, x0.device))
            loss = loss_a + self.config.video_loss_weight * loss_v
        else:
            loss = loss_a
        logs = {"loss_video": loss_v.detach(), "loss_action": loss_a.detach()}
        if self.config.pose_loss_weight:
            loss_p = F.mse_loss(self.expert.pose(kp), self.expert.pose_target(batch["done_state"]))
            loss = loss + self.config.pose_loss_weight * loss_p
            logs["loss_pose"] = loss_p.detach()
        return loss, logs

    # ------------------------------------------------------------------ inference
    def _encode(self, images: dict) -> torch.Tensor:
        if self.vae is None:
            raise ValueError("This policy has no VAE attached; load it with Act2GoalPolicy.from_pretrained.")
        missing = [v for v in self.config.views if v not in images]
        if missing:
            raise ValueError(f"The observation lacks camera view(s) {missing}; the policy needs {list(self.config.views)}.")
        frames = []
        r = self.config.resolution
        for v in self.config.views:
            img = torch.from_numpy(np.array(images[v]))        # a copy: inputs may be read-only
            img = img[None] if img.dim() == 3 else img
            if img.dim() != 4 or img.shape[1:] != (r, r, 3) or img.dtype != torch.uint8:
                raise ValueError(f"View {v!r} must be uint8 frames of shape ({r}, {r}, 3) (or batched); "
                                 f"got {tuple(img.shape)} {img.dtype}.")
            frames.append(img)
        return self.vae.encode(torch.stack(frames, dim=1))        # (B, V, C, h, w)

    def _encode_goal(self, goal: dict) -> torch.Tensor:
        """Goal latents, encoded once per distinct goal (a digest of its pixels is the key)."""
        digest = hashlib.blake2b(digest_size=16)
        for v in self.config.views:
            if v in goal:
                digest.update(v.encode() + np.ascontiguousarray(goal[v]).tobytes())
        key = digest.digest()
        if self._goal_cache is None or self._goal_cache[0] != key:
            self._goal_cache = (key, self._encode(goal))
        return self._goal_cache[1]

    def _inputs(self, obs: dict, goal: dict, K: int | None):
        std = self.world_model.standardize
        obs_lat, goal_lat = std(self._encode(obs["images"])), std(self._encode_goal(goal))
        state = torch.as_tensor(np.asarray(obs["state"]), dtype=torch.float32)
        state = state[None] if state.dim() == 1 else state
        b = obs_lat.shape[0]
        K = K or self.config.inference_horizon
        cfg = self.config.msth
        f_off = torch.as_tensor(msth.frame_offsets(cfg, K)[: self.config.num_future_frames])[None].expand(b, -1)
        a_off = torch.as_tensor(msth.action_offsets(cfg, K))[None].expand(b, -1)
        return obs_lat, goal_lat, state, f_off, a_off

    def _noise(self, shape, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(shape, generator=generator or self._generator)

    @torch.no_grad()
    def predict_chunk(self, obs: dict, goal: dict, K: int | None = None) -> dict:
        """Proximal and distal actions (B, P, A), (B, M, A) with their offsets. One world-model pass
        (future tokens at pure noise) gives the features; only the action expert is integrated."""
        obs_lat, goal_lat, state, f_off, a_off = self._inputs(obs, goal, K)
        b, v = obs_lat.shape[:2]
        future = self._noise((b, v, f_off.shape[1], *obs_lat.shape[2:]))
        _, hidden = self.world_model(obs_lat, goal_lat, future, torch.ones(b), f_off)
        st, kp = self._norm_state(state), self.expert.keypoints(obs_lat, goal_lat)
        a = euler_integrate(lambda x, s: self.expert(x, st, s, a_off, hidden, kp),
                            self._noise((b, a_off.shape[1], self.config.model_action_dim)), self.config.action_steps)
        a = self._from_model(a, state)
        p = self.config.msth.P
        return {"proximal": a[:, :p], "distal": a[:, p:], "offsets": a_off[0].numpy()}

    def predict_action_chunk(self, obs: dict, goal: dict) -> torch.Tensor:
        """(B, P, A): the proximal actions, in the env's units."""
        return self.predict_chunk(obs, goal)["proximal"]

    def compile_for_control(self) -> "Act2GoalPolicy":
        """Compile the networks on the control path (``torch.compile``, static shapes, in place) for
        fast chunks: the first chunk after this pays a one-off compile (about a minute on 2 cores;
        ``bench-model`` measures both). Weights, checkpoints and results are unchanged."""
        self.world_model.compile(dynamic=False)
        self.expert.compile(dynamic=False)
        if self.vae is not None:
            self.vae.ae.encoder.compile(dynamic=False)
        return self

    def select_action(self, obs: dict, goal: dict) -> np.ndarray:
        """One action for a single (unbatched) observation; a new chunk every E steps."""
        if not self._queue:
            chunk = self.predict_action_chunk(obs, goal)[0, : self.config.msth_E].numpy()
            self._queue = list(chunk)
        return self._queue.pop(0)

    def check_execute(self, n) -> int:
        """``n`` as a number of actions to execute per chunk (1..P), or a ValueError in one sentence."""
        P = self.config.msth_P
        try:
            k = int(n)
        except (TypeError, ValueError):
            raise ValueError(f"Actions per chunk must be a whole number, not {n!r}.") from None
        if not 1 <= k <= P:
            raise ValueError(f"Actions per chunk must be 1..{P} (the policy predicts {P}); got {k}.")
        return k

    def set_execute(self, n: int) -> None:
        """Execute ``n`` actions of each chunk before predicting the next (the config's E).
        It changes control only: training never reads E."""
        self.config.msth_E = self.check_execute(n)
        self._queue = []

    def reset(self, seed: int = 0) -> None:
        self._queue = []
        self._generator.manual_seed(seed)
        self._imagine_generator.manual_seed(seed)

    @torch.no_grad()
    def imagine(self, obs: dict, goal: dict, K: int | None = None, steps: int | None = None) -> dict:
        """The world model's imagined way to the goal: frames per view (F, H, W, 3) uint8 at their
        step offsets (proximal first, then distal)."""
        if not self.config.use_world_model:
            raise ValueError("This policy (DP-GC) has no world model, so it cannot imagine.")
        obs_lat, goal_lat, _, f_off, _ = self._inputs(obs, goal, K)
        b, v = obs_lat.shape[:2]
        noise = self._noise((b, v, f_off.shape[1], *obs_lat.shape[2:]), self._imagine_generator)
        lat = euler_integrate(lambda x, s: self.world_model(obs_lat, goal_lat, x, s, f_off)[0], noise,
                              steps or self.config.imagine_steps)
        frames = self.vae.decode(self.world_model.standardize(lat, inverse=True)[0])     # (V, F, H, W, 3)
        return {"frames": {view: frames[i].numpy() for i, view in enumerate(self.config.views)},
                "offsets": f_off[0].numpy(), "num_proximal": self.config.msth.num_proximal_frames}

    # ------------------------------------------------------------------ checkpoints
    def save_pretrained(self, directory) -> None:
        """``world_model/``, ``action_expert/`` (with the normalisation statistics) and ``vae/``, each
        as config.json + model.safetensors, and ``policy.json`` naming the policy type and the
        (task, mode) cells it was trained on."""
        import json
        from pathlib import Path

        from a2g_core.models.io import save_network
        d = Path(directory)
        save_network(self.world_model, d / "world_model")
        save_network(self.expert, d / "action_expert")
        if self.vae is not None:
            save_network(self.vae, d / "vae")
        meta = {"type": self.name, **({"trained_on": [list(c) for c in self.trained_on]} if self.trained_on else {})}
        (d / "policy.json").write_text(json.dumps(meta) + "\n")

    @classmethod
    def from_pretrained(cls, directory, adapter=None) -> "Act2GoalPolicy":
        """Load a saved policy; with ``adapter`` (a LoRA folder of an improvement round), its weights
        are merged in, so the result runs exactly as fast as the base."""
        from pathlib import Path

        from a2g_core.models.io import load_network
        from a2g_core.models.vae import VideoVAE
        d = Path(directory)
        wm = load_network(GoalConditionedWorldModel, d / "world_model")
        policy = cls(wm.config, vae=load_network(VideoVAE, d / "vae") if (d / "vae").exists() else None)
        policy.world_model = wm
        policy.expert = load_network(ActionExpert, d / "action_expert", config=wm.config)
        if policy.vae is not None:
            policy.vae.requires_grad_(False)
        policy.trained_on = trained_on(d)
        if adapter is not None:
            from a2g_core.models.lora import wrap_with_lora
            policy = wrap_with_lora(policy, adapter=adapter).merge_and_unload()
            policy.requires_grad_(False)
        return policy.eval()
