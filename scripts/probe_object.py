"""Can a representation of the first frame locate the object the expert grasps first, or say which way it sets it down?

Three probes, each trained on the first frames of a dataset's episodes and scored on the episodes of
another (unseen seeds): where the expert's gripper first closes (``--target grasp``: x-y, cm), or the wrist's
yaw where it first opens again (``--target release-yaw``: modulo a half turn, as the fingers are alike, degrees;
on place_shoe the mat's axis turned by 90°), read

- from the positions in the policy's own keypoint token (a ridge regression: what the action expert is given),
- from the policy's standardised head-view latents by a small probe network (3×3 convolutions and a
  spatial softmax, trained here: what the latents hold),
- from the head-view pixels by the same probe network (what the camera holds),
- for ``release-yaw``, by the policy's own pose readout where it has one (``train --pose-loss``; no fitting: its
  (cos 2θ, sin 2θ) of the yaw where the task is done, from the keypoints of the first frame and the goal).

The error of always answering the training mean is printed beside them. Measured with it: a 1×1
colour filter's keypoints did not locate plug_in's peg, while the latents held it (docs/model-runs.md,
the fourteenth session's diagnosis); place_shoe's head latents hold the yaw it releases at to 3° on unseen
seeds, its keypoint positions to 22°, the training mean to 47° (the thirty-sixth session).

    python scripts/probe_object.py --policy sessions/runs/plug_in_s2/final --task plug_in \\
        --train sessions/data/plug_in_dart64 --test sessions/data/heldout64
    python scripts/probe_object.py --policy sessions/runs/place_shoe_yaw3/final --task place_shoe \\
        --target release-yaw --train sessions/data/place_shoe_yaw64 --test sessions/data/place_shoe_unseen64
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from a2g_core.data.episodes import EpisodeStore  # noqa: E402
from a2g_core.eval.policy_eval import load_policy  # noqa: E402
from a2g_core.sim.rollout import first_grasp, grasp_and_release  # noqa: E402


def first_grasp_xy(episode) -> np.ndarray:
    """The end effector's x-y where the expert first shuts the gripper."""
    grasp = first_grasp(*episode.lowdim())
    if grasp is None:
        raise ValueError(f"{episode.path.name} never shuts the gripper: the probe needs a grasp.")
    return grasp[:2]


def release_yaw(episode) -> np.ndarray:
    """The wrist yaw where the expert first reopens the gripper, as (cos 2θ, sin 2θ): the same for θ and θ + π."""
    places = grasp_and_release(*episode.lowdim())
    if places is None or places[1] is None:
        raise ValueError(f"{episode.path.name} never grasps and releases: the probe needs a release.")
    yaw = 2 * places[1][3]
    return np.array([np.cos(yaw), np.sin(yaw)])


def xy_error(pred, true) -> torch.Tensor:
    """Per-episode distance in cm."""
    return (pred - true).norm(dim=1) * 100


def yaw_error(pred, true) -> torch.Tensor:
    """Per-episode angle in degrees between two headings given as (cos 2θ, sin 2θ)."""
    doubled = torch.atan2(pred[:, 1] * true[:, 0] - pred[:, 0] * true[:, 1], (pred * true).sum(1))
    return doubled.abs().rad2deg() / 2


TARGETS = {"grasp": (first_grasp_xy, xy_error, "cm"), "release-yaw": (release_yaw, yaw_error, "deg")}


@torch.no_grad()
def first_frames(policy, episodes, desc: str, target=first_grasp_xy, pose: bool = False) -> dict[str, torch.Tensor]:
    """Keypoint tokens, standardised head latents, head pixels of each episode's step 0, and its target as "y";
    with ``pose`` and a pose readout, its yaw's (cos 2θ, sin 2θ) as "pose"."""
    out = {"keypoints": [], "latents": [], "pixels": [], "y": [], "pose": []}
    std, expert = policy.world_model.standardize, policy.expert
    for ep in tqdm(episodes, desc=desc, leave=False):
        images = {v: np.asarray(ep.frames(v)[0]) for v in policy.config.views}
        z = std(policy._encode(images))
        if policy.config.keypoints:
            out["keypoints"].append(expert.keypoints(z, z)[0, : z.shape[1] * policy.config.keypoints * 2])
        if pose and hasattr(expert, "pose_readout"):
            goal = std(policy._encode({v: np.asarray(img) for v, img in ep.goal(policy.config.goal_frame).items()}))
            out["pose"].append(expert.pose(expert.keypoints(z, goal))[0, -2:])
        out["latents"].append(z[0, 0])
        out["pixels"].append(torch.tensor(images["head"]).permute(2, 0, 1).float() / 255)
        out["y"].append(torch.as_tensor(target(ep), dtype=torch.float32))
    return {k: torch.stack(v) for k, v in out.items() if v}


def ridge_error(x, y, x_test, y_test, error=xy_error) -> float:
    """Held-out mean error of the best ridge regression over a range of penalties."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    x, x_test = (x - mu) / sd, (x_test - mu) / sd
    best = float("inf")
    for lam in (0.1, 1, 10, 100, 1000):
        w = torch.linalg.solve(x.T @ x + lam * torch.eye(x.shape[1]), x.T @ (y - y.mean(0)))
        best = min(best, error(x_test @ w + y.mean(0), y_test).mean().item())
    return best


class SpatialSoftmaxProbe(nn.Module):
    def __init__(self, channels: int, k: int = 16, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, k, 1))
        self.out = nn.Linear(2 * k, 2)

    def forward(self, x):
        heat = self.net(x).flatten(2).softmax(-1)
        h, w = x.shape[-2:]
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        return self.out(torch.cat([heat @ xs.reshape(-1), heat @ ys.reshape(-1)], -1))


def probe_error(x, y, x_test, y_test, steps: int, seed: int = 0, error=xy_error) -> float:
    """Held-out mean error of a spatial-softmax probe trained on (x, y)."""
    torch.manual_seed(seed)
    mean, std = y.mean(0), y.std(0)
    probe = SpatialSoftmaxProbe(x.shape[1])
    opt = torch.optim.Adam(probe.parameters(), lr=2e-3)
    for _ in tqdm(range(steps), desc=f"probe on {tuple(x.shape[1:])}", leave=False):
        i = torch.randint(0, len(x), (64,))
        loss = ((probe(x[i]) - (y[i] - mean) / std) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return error(probe(x_test) * std + mean, y_test).mean().item()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policy", required=True, help="policy folder (its VAE, standardisation and keypoints)")
    ap.add_argument("--task", required=True)
    ap.add_argument("--mode", default="easy", help="easy or hard (default easy)")
    ap.add_argument("--target", choices=TARGETS, default="grasp",
                    help="grasp: where the expert first shuts the gripper (default); release-yaw: the wrist's "
                         "yaw where it first opens it again, modulo a half turn")
    ap.add_argument("--train", required=True, help="dataset the probes are fitted on")
    ap.add_argument("--test", required=True, help="dataset of unseen seeds the probes are scored on")
    ap.add_argument("--episodes", type=int, default=400, help="training episodes at most (default 400)")
    ap.add_argument("--steps", type=int, default=1500, help="training steps of each probe network (default 1500; 0 skips them)")
    args = ap.parse_args(argv)
    policy = load_policy(args.policy)
    stores = [list(EpisodeStore(d, tasks=[args.task], modes=[args.mode])) for d in (args.train, args.test)]
    for d, eps in zip((args.train, args.test), stores):
        if not eps:
            raise SystemExit(f"{d} has no successful {args.task}/{args.mode} episodes.")
    target, error, unit = TARGETS[args.target]
    tr = first_frames(policy, stores[0][: args.episodes], "train frames", target)
    te = first_frames(policy, stores[1], "test frames", target, pose=args.target == "release-yaw")
    y, y_test = tr["y"], te["y"]
    rows = {"the training mean": error(y.mean(0, keepdim=True).expand_as(y_test), y_test).mean().item()}
    if "keypoints" in tr:                     # policies without a keypoint token have nothing to probe there
        rows["policy's keypoint token (ridge)"] = ridge_error(tr["keypoints"], y, te["keypoints"], y_test, error)
    if args.steps:
        rows["head latents (probe network)"] = probe_error(tr["latents"], y, te["latents"], y_test, args.steps, error=error)
        rows["head pixels (probe network)"] = probe_error(tr["pixels"], y, te["pixels"], y_test, args.steps, error=error)
    if "pose" in te:                          # only the unseen episodes' are read: the readout is not fitted here
        rows["policy's pose readout (no fitting)"] = error(te["pose"], y_test).mean().item()
    what = "first grasp x-y" if args.target == "grasp" else "yaw at the first release"
    print(f"{args.task}/{args.mode}: {what} from the first frame, {len(y)} training and {len(y_test)} unseen "
          f"episodes, {args.policy}")
    for name, err in rows.items():
        print(f"  {name:34s} {err:5.1f} {unit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
