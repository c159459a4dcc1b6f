"""Configuration of the Act2Goal policy: world model, action expert, MSTH, presets."""
from __future__ import annotations

from dataclasses import dataclass, replace

from a2g_core.models.config import ConfigBase
from a2g_core.msth import MSTHConfig


@dataclass
class Act2GoalConfig(ConfigBase):
    # observation / action layout; ``profile`` names the embodiment (a2g_core.robot.profiles) whose
    # cameras, state and action layout the policy was trained for
    profile: str = "tabletop"
    views: tuple = ("head", "wrist")
    resolution: int = 64
    state_dim: int = 5
    action_dim: int = 5
    # action dims predicted relative to the same dim of the current state (the end-effector pose);
    # the others (the gripper) are absolute. Small offsets from "here" are far easier to learn
    # precisely than absolute poses (measured: see the README, "Relative actions").
    relative_dims: tuple = (0, 1, 2, 3)
    # the expert models each of the profile's ``half_turn_dims`` actions (the tabletop's wrist yaw; it must be
    # absolute, not in ``relative_dims``) as (cos 2θ, sin 2θ), and control takes the yaw of that axis nearest the
    # current one. A parallel gripper grips the same turned by a half turn, so as a raw absolute yaw one scene's
    # target is either of two a half turn apart, decided by where the wrist happens to be (place_shoe's release
    # yaws span 300°); as an axis it is one value, the object's or the mat's axis turned by 90°. Measured: one cycle
    # so took place_shoe to 52/100 against 21/100 with the raw yaw (p < 0.001; docs/model-runs.md, thirty-eighth session)
    half_turn_actions: bool = False
    # latents (from the VAE) and patching
    latent_channels: int = 8
    latent_size: int = 8
    patch_size: int = 2
    # standardise every latent element (view, channel, row, column) by its mean and std over the
    # training frames before the networks see it: on a fixed camera most of a frame is the same
    # table in every episode, and what moves (the objects) was a small ripple on that constant, which
    # the policies never learned to read (measured: their first move ignored where the cup was)
    latent_standardize: bool = False
    # spatial-softmax keypoints per view (Levine et al. 2016; Diffusion Policy's image encoder): a 1×1
    # convolution of the (standardised) current and goal latents into this many heat maps per view, whose
    # expected image coordinates are one more token of the action expert: where things are, read directly
    keypoints: int = 0
    # width of two 3×3 convolutions before the keypoints' 1×1 heat-map convolution (0: the 1×1 alone, a
    # per-pixel colour filter). Measured: a 1×1 filter's keypoints did not locate plug_in's 2 cm peg
    # (a probe reads it from them no better than the mean, 11.6 cm on unseen seeds) while a probe of
    # this shape on the same latents reads it to 1.7 cm (docs/model-runs.md, the fourteenth session's diagnosis)
    keypoint_hidden: int = 0
    # the heat maps read each frame beside the other, channel-stacked (current with goal for the current
    # keypoints, goal with current for the goal's), so a map can fire where an object is in one frame and
    # not in the other: what has to move, and where to. Read alone, a frame's map cannot tell the cup from
    # the coaster it must go on (measured: half the place_empty_cup failures of a policy trained on easy + hard
    # data shut the gripper on the coaster, docs/model-runs.md, the eighteenth session)
    keypoint_contrast: bool = False
    # each heat map also gives its spread's shape: the anisotropy (σxx − σyy, 2σxy) / (σxx + σyy), whose angle
    # is twice an elongated blob's heading (mod π: a mat, a shoe), and the spread's size. A map's mean says where
    # a thing is, never which way it lies: place_shoe's policies gripped the shoe 7° off the expert's way yet set it
    # on the mat as if they never saw the mat's heading (turn gain +0.02, docs/model-runs.md, thirty-fourth session).
    # ``train --init … --keypoint-shapes`` adds them to a trained policy, at zero weight, so it acts as before.
    # Not yet a measured gain: one cycle on place_shoe gave 9/50 against 6/50 without them (p 0.51)
    keypoint_shapes: bool = False
    # weight of an auxiliary loss on the keypoints: a linear readout of their positions predicts the state the
    # robot is in when the task is done (the expert's success step; a relabelled goal's own step; a gripper's yaw
    # as (cos 2θ, sin 2θ), the same grip turned by a half turn giving the same target), so the maps
    # must find what sets that pose (a mat's axis, a coaster's place), not only what the action loss happens to
    # reach. Measured on place_shoe (docs/model-runs.md, thirty-sixth session): the positions of maps trained
    # through the action loss alone read the release yaw to 22° on unseen seeds where a probe of their shape,
    # trained on that yaw, reads it to 3°. With it, one cycle took the token's reading from 25° to 8° but not
    # place_shoe's success (26/100 against 32/100 before the cycle, p 0.36; thirty-seventh session). 0: off
    pose_loss_weight: float = 0.0
    # what the pose readout predicts: "done" (the state where the task is done, above) or "next_grip" (the state at
    # the next step a gripper command changes, a grasp or a release, and the done state after the last): on a
    # task of several picks the done state is only the last place, so the maps are never asked where the object
    # in hand goes before it. Measured on pick_dual_bottles, whose first bottles that miss end 6-7.5 cm off along the
    # shelf: one cycle with it is level with one without (69/100 against 68/100; forty-second session)
    pose_target: str = "done"
    # the fraction of training samples whose action expert reads a null world-model context (its block-i
    # cross-attention sees zeros), so it must act from its state and keypoint tokens alone. place_shoe's expert
    # fitted each training scene's carry turn from that context and read none on unseen scenes, though its keypoint
    # token held the mat's axis to 8° (docs/model-runs.md, thirty-seventh session). Control always reads the
    # context. Measured: one cycle at 0.5 and at 0.8 left place_shoe's unseen carry turn at ~0 and its success level
    # (25/100 and 23/100 against 21/100 without it; thirty-eighth session). 0: off
    context_dropout: float = 0.0
    # weight of the video loss in stage 2 (``L_a + w·L_v``; the paper's stage 2 is ``L_a`` alone). Its flow times
    # are drawn as in stage 1, in a second world-model pass, so the expert still reads the features of pure-noise
    # futures that control gives it. Without it the world model stops imagining: every shipped checkpoint's
    # video loss on pure-noise futures (what stage 2 logs) rose from 0.82-1.20 in its first steps to 1.3-1.8,
    # and its imagined frames are a blur the same for every scene (docs/model-runs.md, forty-third session).
    # 0: off (the paper's stage 2)
    video_loss_weight: float = 0.0
    # MSTH (paper §4.3): proximal horizon, visual stride, distal anchors, executed actions
    msth_P: int = 16
    msth_r: int = 8
    msth_M: int = 2
    msth_E: int = 8
    use_msth: bool = True               # False: the "w/o MSTH" ablation (proximal only, fixed horizon)
    use_world_model: bool = True        # False: the DP-GC baseline (current + goal → actions, nothing imagined)
    inference_horizon: int = 120        # K used at inference (steps from now to the goal)
    # training windows (and hindsight samples) take K = inference_horizon too, instead of the steps left
    # to the goal: the offsets the networks read then tell them nothing about how far the goal is, in
    # training as at control, where that is unknown. Measured: trained on the steps left, Act2Goal's
    # proximal action loss doubled (0.146 → 0.305) when given control's fixed K (docs/model-runs.md, item 8)
    fixed_horizon: bool = False
    # the fraction of training windows that start within an episode's first P steps. The arm starts
    # from the same home pose in every episode, so there only the images say where to go, and
    # uniform windows give that moment ~1/10 of the samples. Measured on plug_in (docs/model-runs.md,
    # the fourteenth session): 0.5 lifted how the first move follows the peg from 0.05 to 0.16 cm per cm
    # after stage 1 (the expert: 0.82); in two continued stage-2 cycles plug_in rose 25/50 → 37/50, and
    # DP-GC alike 21 → 36 (twenty-ninth session); off in the presets
    early_windows: float = 0.0
    # which frame of an expert episode is its goal image, in training and in every goal made for the
    # policy (a2g_core.data.episodes.GOAL_FRAMES): "final" (the last frame: task done, arm back home) or
    # "success" (the first frame with the task done, the arm still there, as a rollout ends)
    goal_frame: str = "final"
    max_offset: int = 600               # offsets are embedded relative to this
    # world model (a video DiT of diffusers LTX blocks)
    wm_dim: int = 128
    wm_heads: int = 4
    layers: int = 4                     # the action expert has as many: block i reads world-model block i
    # action expert (narrower)
    expert_dim: int = 64
    expert_heads: int = 4
    # losses and sampling
    action_loss_weight: float = 0.1     # λ of stage 1: L_v + λ·L_a
    # std of Gaussian noise on the normalised proprio input while training: without it the expert
    # reads the trajectory's phase off the exact pose (a copycat shortcut) instead of the images,
    # and a 1.5 cm deviation in closed loop sends it the wrong way (measured: docs/model-runs.md, item 2)
    state_noise: float = 0.0
    # the state dims that noise goes on (None: every dim). Measured (docs/model-runs.md, fifteenth session):
    # noise on every dim lifted place_empty_cup 31 → 39 of 50 and took pick_dual_bottles 13 → 0, a
    # two-object task whose phase the gripper's opening tells; on the pose only (0, 1, 2, 3) that policy
    # found the first bottle best (1.3 cm off the expert's grasp, from 5.4) and succeeded 11/50
    state_noise_dims: tuple | None = None
    imagine_steps: int = 8              # Euler steps of the world model for imagine()
    action_steps: int = 5               # Euler steps of the action expert for control

    def __post_init__(self):
        if not self.views:
            raise ValueError("The policy needs at least one camera view.")
        if self.latent_size % self.patch_size:
            raise ValueError(f"latent_size {self.latent_size} must be divisible by patch_size {self.patch_size}.")
        if self.wm_dim % self.wm_heads or self.expert_dim % self.expert_heads:
            raise ValueError("Model widths must be divisible by their number of attention heads.")
        from a2g_core.robot.profiles import get_profile
        prof = get_profile(self.profile)
        if sorted(prof.cameras.values()) != sorted(self.views) or (prof.state_dim, prof.action_dim) != (
                self.state_dim, self.action_dim):
            raise ValueError(f"The {self.profile} profile has views {sorted(prof.cameras.values())}, state "
                             f"{prof.state_dim} and action {prof.action_dim}; the config has {sorted(self.views)}, "
                             f"{self.state_dim} and {self.action_dim}.")
        if any(not 0 <= d < min(self.state_dim, self.action_dim) for d in self.relative_dims):
            raise ValueError(f"relative_dims {self.relative_dims} must index both the state and the action.")
        if self.half_turn_actions and set(prof.half_turn_dims) & set(self.relative_dims):
            raise ValueError(f"half_turn_actions models the {self.profile} profile's yaw dims {prof.half_turn_dims} "
                             f"as an absolute axis; take them out of relative_dims {self.relative_dims}.")
        if self.layers < 1:
            raise ValueError("The models need at least one block.")
        self.msth                        # validates P, r, M, E
        from a2g_core.data.episodes import check_goal_frame
        check_goal_frame(self.goal_frame)
        if self.state_noise < 0:
            raise ValueError(f"state_noise is a standard deviation, at least 0; got {self.state_noise}.")
        if self.state_noise_dims is not None and (
                not self.state_noise_dims or any(not 0 <= d < self.state_dim for d in self.state_noise_dims)):
            raise ValueError(f"state_noise_dims {self.state_noise_dims} must name state dims 0..{self.state_dim - 1}.")
        if self.pose_loss_weight < 0 or (self.pose_loss_weight and not self.keypoints):
            raise ValueError(f"pose_loss_weight must be at least 0, and reads keypoints (keypoints > 0); got "
                             f"{self.pose_loss_weight} with {self.keypoints} keypoints.")
        from a2g_core.data.windows import POSE_TARGETS
        if self.pose_target not in POSE_TARGETS:
            raise ValueError(f"pose_target must be one of {', '.join(POSE_TARGETS)}; got {self.pose_target!r}.")
        if self.video_loss_weight < 0 or (self.video_loss_weight and not self.use_world_model):
            raise ValueError(f"video_loss_weight must be at least 0, and needs a world model; got "
                             f"{self.video_loss_weight} with use_world_model={self.use_world_model}.")
        if not 0 <= self.context_dropout < 1:
            raise ValueError(f"context_dropout is a fraction of samples in [0, 1); got {self.context_dropout}.")
        if not 0 <= self.early_windows <= 1:
            raise ValueError(f"early_windows is a fraction in [0, 1], got {self.early_windows}.")
        if self.inference_horizon < 1:
            raise ValueError("inference_horizon must be at least 1 step.")

    @property
    def msth(self) -> MSTHConfig:
        return MSTHConfig(P=self.msth_P, r=self.msth_r, M=self.msth_M if self.use_msth else 0, E=self.msth_E)

    @property
    def train_horizon(self) -> int | None:
        """K of the training windows: control's K with ``fixed_horizon``, else None (the steps left)."""
        return self.inference_horizon if self.fixed_horizon else None

    @property
    def num_future_frames(self) -> int:
        """Frames the world model imagines (none for DP-GC)."""
        return self.msth.num_frames if self.use_world_model else 0

    @property
    def half_turn_dims(self) -> tuple:
        """The profile's state dims that are a parallel gripper's yaw (read as (cos 2θ, sin 2θ) by the pose loss)."""
        from a2g_core.robot.profiles import get_profile
        return tuple(get_profile(self.profile).half_turn_dims)

    @property
    def half_turn_action_dims(self) -> tuple:
        """The action dims the expert models as (cos 2θ, sin 2θ): ``half_turn_dims`` with ``half_turn_actions``,
        else none."""
        return self.half_turn_dims if self.half_turn_actions else ()

    @property
    def model_action_dim(self) -> int:
        """Width of the actions the expert models: one more per half-turn action dim."""
        return self.action_dim + len(self.half_turn_action_dims)

    @property
    def tokens_per_frame(self) -> int:
        return (self.latent_size // self.patch_size) ** 2

    def with_(self, **kw) -> "Act2GoalConfig":
        return replace(self, **kw)

    @property
    def pose_windows(self) -> dict:
        """The training windows' pose-target settings (``MSTHWindows``'s ``pose_target`` and ``grip_dims``)."""
        from a2g_core.robot.profiles import get_profile
        return {"pose_target": self.pose_target, "grip_dims": get_profile(self.profile).grip_dims}

    def fit_to_vae(self, vae_config) -> "Act2GoalConfig":
        """This config on ``vae_config``'s latents, keeping its tokens per frame (the patch grows with
        the latents: a 4× VAE's 16×16 latents in patches of 4 give the same 4×4 grid as 8×8 in 2s)."""
        grid = self.latent_size // self.patch_size
        if vae_config.latent_size % grid:
            raise ValueError(f"The VAE's {vae_config.latent_size}×{vae_config.latent_size} latents do not split into "
                             f"the preset's {grid}×{grid} token grid.")
        return self.with_(resolution=vae_config.resolution, latent_channels=vae_config.latent_channels,
                          latent_size=vae_config.latent_size, patch_size=vae_config.latent_size // grid)


GENIE01 = dict(profile="genie01", views=("top_head", "hand_left", "hand_right"), state_dim=16, action_dim=16,
               relative_dims=tuple(range(14)))      # the arm joints relative, the grippers absolute

PRESETS: dict[str, Act2GoalConfig] = {
    # CPU default: 64 px, 2 + 2 imagined frames, 16 + 2 actions, 8 executed per chunk
    "tiny": Act2GoalConfig(latent_standardize=True, keypoints=16, keypoint_hidden=32, fixed_horizon=True),
    # GPU: the paper's MSTH (9 + 9 frames, 54 + 9 actions, 50 executed), wider and deeper
    "base": Act2GoalConfig(resolution=128, latent_size=16, latent_standardize=True, keypoints=32, keypoint_hidden=64, fixed_horizon=True, msth_P=54, msth_r=6, msth_M=9, msth_E=50,
                           inference_horizon=400, wm_dim=512, wm_heads=8, layers=12, expert_dim=256,
                           expert_heads=8, imagine_steps=20, action_steps=10),
}
