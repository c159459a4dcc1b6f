"""Why does a policy fail? Three measurements on one expert episode of the dataset:

- **open loop**: at every ``every``-th step before success, the chunk the policy predicts from the
  expert's own observation against the expert's next E actions (mean absolute error per axis, and
  how far each moves the end effector);
- **proprio sensitivity**: how the predicted move changes when only the state input is nudged
  (a policy that reads the trajectory's phase off the exact pose is a copycat: small closed-loop
  deviations send it the wrong way);
- **closed loop**: the policy's own rollout from the same seed and goal, its pose every ``every``
  steps beside the expert's;
- **scene reading** (over many episodes): where the policy's first chunk ends against where the
  expert went, beside the error of always predicting the expert's mean move. A policy that does not
  read the objects' positions off the images is no better than that mean, however well it fits one
  episode (measured: the first shipped policies were not).
  And how its first move follows the object's place (where the expert first shuts the gripper) and
  the place the object must go (where the expert next opens it), beside how the expert's own move
  follows them. Measured: the expert moves 0.8 cm per cm the plug_in peg or the shoe moves, the
  policies that fail those tasks under 0.1: they do not go for the object. And the wrist's heading
  the same way: place_shoe's policies went to the shoe (+0.83 cm per cm) but turned the wrist +0.05°
  per degree the expert turns to close across it. On the carry (``after_grasp``) they turned +0.10 to +0.19 per
  degree on their own training seeds and about 0 on unseen ones; fitted to 40 episodes, +0.95 on those and
  +0.14 on unseen ones: they memorise the turn per scene. At the carry's end (``before_release``), where the
  expert holds the heading it sets the shoe down at, a policy with the yaw absolute turns 27° off it on unseen
  seeds (its reading of the mat's axis) and one with the yaw relative under 1° (it holds what it has; so
  does an absolute one trained with its own yaw noise-free, 3°, without reading the turn any better).
- **images or pose** (over many episodes): a few steps in, the images of one episode with the state
  of another. A policy that reads the scene follows the imaged object; a copycat of the pose follows
  the other episode's object, whose direction its pose already shows (measured: Act2Goal on plug_in).

Every prediction starts from the same sampler seed, so reruns print the same figures.
"""
from __future__ import annotations

import numpy as np

from a2g_core.sim.expert import wrap

NUDGES = {"z -1.5 cm": (2, -0.015), "x +1 cm": (0, 0.01), "y +1 cm": (1, 0.01), "grip +0.05": (4, 0.05)}


def _chunk(policy, images: dict, state, goal: dict) -> np.ndarray:
    policy.reset(0)
    return policy.predict_action_chunk({"images": images, "state": np.asarray(state, np.float32)}, goal)[0].numpy()


def open_loop(policy, episode, every: int = 6) -> list[dict]:
    """Per start t < success step: ``err_cm`` (x, y, z) over the first E actions, expert and predicted
    end-effector moves after E actions (cm), and both gripper commands at the E-th action."""
    states, actions = episode.lowdim()
    frames = {v: episode.frames(v) for v in policy.config.views}
    goal, e = episode.goal(policy.config.goal_frame), policy.config.msth_E
    rows = []
    for t in range(0, episode.steps_before_success, every):
        pred = _chunk(policy, {v: np.asarray(f[t]) for v, f in frames.items()}, states[t], goal)
        exp = actions[t:t + e]
        n = len(exp)
        rows.append({"t": t, "err_cm": (np.abs(pred[:n, :3] - exp[:, :3]).mean(0) * 100).tolist(),
                     "move_expert_cm": float(np.linalg.norm(exp[-1, :3] - states[t, :3]) * 100),
                     "move_policy_cm": float(np.linalg.norm(pred[n - 1, :3] - states[t, :3]) * 100),
                     "grip_expert": float(exp[-1, 4]), "grip_policy": float(pred[n - 1, 4])})
    return rows


def proprio_sensitivity(policy, episode, t: int) -> dict[str, list[float]]:
    """The predicted displacement (cm, x y z) after E actions at step ``t``, for the true state and
    for each nudge of it in ``NUDGES``; ``expert`` is what the expert did."""
    states, actions = episode.lowdim()
    images = {v: np.asarray(episode.frames(v)[t]) for v in policy.config.views}
    goal, e = episode.goal(policy.config.goal_frame), policy.config.msth_E
    out = {"expert": ((actions[min(t + e, len(actions)) - 1, :3] - states[t, :3]) * 100).tolist()}
    for name, (dim, delta) in {"as recorded": (0, 0.0), **NUDGES}.items():
        s = states[t].copy()
        s[dim] += delta
        out[name] = ((_chunk(policy, images, s, goal)[e - 1, :3] - s[:3]) * 100).tolist()
    return out


def closed_loop(policy, episode, every: int = 8) -> dict:
    """The policy's rollout on the episode's seed towards the episode's goal image."""
    from a2g_core.sim import make_env
    states, _ = episode.lowdim()
    m = episode.meta
    env = make_env(m["task"], m["mode"], policy.config.resolution)
    try:
        obs, info = env.reset(seed=m["seed"])        # the same seed gives the expert's scene (and word)
        policy.reset(0)
        goal, trace = episode.goal(policy.config.goal_frame), []
        for t in range(env.max_steps):
            if t % every == 0:
                trace.append({"t": t, "policy": obs["state"].tolist(), "expert": states[min(t, len(states) - 1)].tolist()})
            obs, _, _, truncated, info = env.step(policy.select_action(obs, goal))
            if info["is_success"] or truncated:
                break
        return {"success": bool(info["is_success"]), "steps": t + 1, "trace": trace}
    finally:
        env.close()


def _object_and_target(states: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """x-y of where an episode first takes the object and where it lets it go (``grasp_and_release``),
    None where it does not do both."""
    from a2g_core.sim.rollout import grasp_and_release
    places = grasp_and_release(states, actions)
    return None if places is None or places[1] is None else (places[0][:2], places[1][:2])


def gain(y: np.ndarray, x: np.ndarray) -> float:
    """How far y moves in the direction x moves, per unit x moves, over rows (episodes) of x-y
    points, both centred: 1 where y follows x, 0 where it ignores it, negative where it goes away."""
    y, x = y - y.mean(0), x - x.mean(0)
    return float((y * x).sum() / (x * x).sum())


MIN_EPISODES_FOR_GAIN = 6    # a gain over fewer scenes says little
MIN_TURN_DEG = 1.0           # expert turns that differ by less say nothing of the heading


def scene_reading(policy, episodes, t: int = 0, after_grasp: int | None = None, before_release: int | None = None) -> dict:
    """Over ``episodes`` (stored expert episodes): the x-y distance (cm) between the end of the
    policy's predicted chunk from step ``t`` and the expert's pose after as many actions, the
    distance of the expert's moves from their own mean (what a policy that ignores the scene gets),
    and the ``gain`` of the policy's predicted moves on the object's place (``object_gain``: the
    expert's first grasp) and on where the object goes (``target_gain``: its first release), with
    the expert's own moves' (``expert_object_gain``, ``expert_target_gain``); those are None with
    fewer than ``MIN_EPISODES_FOR_GAIN`` episodes that grasp and release. The same for the wrist's
    heading after those actions (degrees): the policy's error (``policy_turn_deg``), the expert's
    turns' distance from their mean turn (``mean_turn_deg``), and how far the policy turns per degree
    the expert turns (``turn_gain``; None where the expert's turns hardly differ).

    With ``after_grasp`` each episode's chunk starts that many steps after the expert first shuts the
    gripper (``grasp_steps``) instead of at ``t``, and episodes without a grasp are left out: the carry,
    where place_shoe's expert turns the shoe to the mat's heading. With ``before_release`` it starts that many
    steps before the expert first opens it again (episodes without a release are left out): the carry's end,
    where the expert holds the heading it sets the object down at, and a policy's turn is its misreading of it."""
    from a2g_core.sim.rollout import grasp_steps
    if after_grasp is not None and before_release is not None:
        raise ValueError("Start the chunks after the grasp or before the release, not both.")
    where = (f"{after_grasp} steps after its grasp" if after_grasp is not None else
             f"{before_release} steps before its release" if before_release is not None else f"at step {t}")
    p = policy.config.msth.P
    errs, moves, followed, turns = [], [], [], []
    for ep in episodes:
        states, actions = ep.lowdim()
        if after_grasp is not None or before_release is not None:
            steps = grasp_steps(actions)
            if steps is None or (before_release is not None and steps[1] is None):
                continue
            t = steps[0] + after_grasp if after_grasp is not None else steps[1] - before_release
        if t + p > len(actions):
            continue
        pred = _chunk(policy, {v: np.asarray(ep.frames(v)[t]) for v in policy.config.views}, states[t], ep.goal(policy.config.goal_frame))
        errs.append(np.linalg.norm(pred[p - 1, :2] - actions[t + p - 1, :2]))
        moves.append(actions[t + p - 1, :2] - states[t, :2])
        turns.append((wrap(pred[p - 1, 3] - states[t, 3]), wrap(actions[t + p - 1, 3] - states[t, 3])))
        if (places := _object_and_target(states, actions)) is not None:
            followed.append((pred[p - 1, :2] - states[t, :2], moves[-1], *places))
    if not errs:
        raise ValueError(f"No episode has {p} more actions {where}.")
    moves = np.array(moves)
    gains = dict.fromkeys(["object_gain", "target_gain", "expert_object_gain", "expert_target_gain"])
    if len(followed) >= MIN_EPISODES_FOR_GAIN:
        policy_move, expert_move, obj, target = np.array(followed).transpose(1, 0, 2)     # each (N, 2)
        gains = {"object_gain": gain(policy_move, obj), "target_gain": gain(policy_move, target),
                 "expert_object_gain": gain(expert_move, obj), "expert_target_gain": gain(expert_move, target)}
    policy_turn, expert_turn = np.degrees(np.array(turns)).T
    spread = np.abs(expert_turn - expert_turn.mean())
    return {"episodes": len(errs), "steps": p, "policy_cm": float(np.mean(errs) * 100),
            "mean_move_cm": float(np.linalg.norm(moves - moves.mean(0), axis=1).mean() * 100), **gains,
            "policy_turn_deg": float(np.abs(policy_turn - expert_turn).mean()), "mean_turn_deg": float(spread.mean()),
            "turn_gain": gain(policy_turn, expert_turn) if spread.max() > MIN_TURN_DEG else None}


def images_or_pose(policy, episodes, t: int = 6) -> dict:
    """At step ``t``, each episode's images and goal with the state of another episode (half the
    list away): how far the predicted move goes per cm each episode's object lies (``image_gain``:
    the imaged episode's; ``pose_gain``: the state's episode's; see ``gain``). None with fewer
    than ``MIN_EPISODES_FOR_GAIN`` episodes that grasp and release after step t."""
    p = policy.config.msth.P
    usable = []                                            # (episode, its state at t, its object's x-y)
    for e in episodes:
        states, actions = e.lowdim()
        if e.steps_before_success > t and (places := _object_and_target(states, actions)) is not None:
            usable.append((e, states[t], places[0]))
    if len(usable) < MIN_EPISODES_FOR_GAIN:
        return {"episodes": len(usable), "image_gain": None, "pose_gain": None}
    rows = []
    for i, (imaged, _, imaged_obj) in enumerate(usable):
        _, state, posed_obj = usable[(i + len(usable) // 2) % len(usable)]
        pred = _chunk(policy, {v: np.asarray(imaged.frames(v)[t]) for v in policy.config.views}, state,
                      imaged.goal(policy.config.goal_frame))
        rows.append((pred[p - 1, :2] - state[:2], imaged_obj, posed_obj))
    move, imaged_obj, posed_obj = np.array(rows).transpose(1, 0, 2)
    return {"episodes": len(rows), "image_gain": gain(move, imaged_obj), "pose_gain": gain(move, posed_obj)}
