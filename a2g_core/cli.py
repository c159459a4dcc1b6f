"""``python -m a2g_core <command>``: the lab's command line. ``--help`` on any command explains it."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_DATA = Path("sessions/data/expert")
from a2g_core import DEFAULT_POLICY
# the paper suite's default: the all-task Act2Goal and its baselines, one checkpoint per method for every task
ALL_TASK_POLICIES = tuple(Path("assets/checkpoints") / m for m in ("tiny", "dp_gc", "no_msth"))
DEFAULT_DB = Path("sessions/lab/lab.db")         # = a2g_core.store.DEFAULT_DB (not imported: --help stays fast)


def _split(value: str, choices, what: str) -> list[str]:
    items = list(choices) if value == "all" else [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in choices]
    if bad:
        raise ValueError(f"Unknown {what} {bad[0]!r}; choose from: {', '.join(choices)} (or 'all').")
    return items


def _ints(value: str, what: str) -> list[int]:
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what} takes comma-separated whole numbers; got {value!r}.") from None


def cmd_gen_data(args) -> int:
    from tqdm import tqdm

    from a2g_core.data.generate import generate
    from a2g_core.sim import MODES, TASKS
    tasks = _split(args.task, TASKS, "task")
    modes = _split(args.mode, MODES, "mode")
    words = [w for w in args.words.split(",") if w.strip()] if args.words else None
    steps = _ints(args.handover_steps, "--handover-steps")
    if len(steps) != 2:
        raise ValueError(f"--handover-steps is FIRST,LAST, two whole numbers; got {args.handover_steps!r}.")
    bar = tqdm(total=None, unit="ep", desc="expert episodes")

    def progress(done, total, res):
        bar.total = total
        state = "not handed over" if res[3] is None else "ok" if res[3] else "FAIL"
        bar.set_postfix_str(f"{res[0]}/{res[1]} seed {res[2]} {state}")
        bar.update(1)

    stats = generate(args.out, tasks=tasks, modes=modes, episodes=args.episodes, seed_start=args.seed_start,
                     workers=args.workers, resolution=args.resolution, words=words, noise=args.noise,
                     yaw_noise=args.yaw_noise, handover_from=args.handover_from, handover_steps=steps,
                     progress=progress)
    bar.close()
    rate = stats["success"] / stats["written"] if stats["written"] else float("nan")
    handed = (f" ({stats['not_handed_over']} seeds not handed over: the policy succeeded first or left nothing "
              f"the expert can go on from)") if args.handover_from else ""
    print(f"{args.out}: wrote {stats['written']} episodes ({stats['steps']} steps, expert success {rate:.1%}), "
          f"kept {stats['skipped']} already there, discarded {stats['discarded']} half-written{handed}.")
    return 0


def _write_json(path: str | None, report: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(report, indent=1))
        print(f"wrote {path}")


def cmd_bench_sim(args) -> int:
    from a2g_core.eval.sim_bench import run_sim_bench
    bar, progress = _bar("expert episodes", "ep")
    report = run_sim_bench(episodes=args.episodes, repeats=args.repeats, workers=args.workers,
                           gen_episodes=args.gen_episodes, tasks=args.task, log=tqdm_write,
                           progress=lambda i, n: progress(i, n, {}))
    bar.close()
    _write_json(args.json, report)
    return 0


def cmd_bench_model(args) -> int:
    from a2g_core.eval.model_bench import run_model_bench
    _write_json(args.json, run_model_bench(repeats=args.repeats, presets=args.presets.split(","), log=print))
    return 0


def cmd_sim_strip(args) -> int:
    from a2g_core.eval.pictures import sim_strip
    sim_strip(args.out, mode=args.mode, seed=args.seed, resolution=args.resolution)
    print(f"wrote {args.out}")
    return 0


def cmd_goal(args) -> int:
    from PIL import Image

    from a2g_core.sim.rollout import expert_goal
    goal, ok = expert_goal(args.task, args.mode, args.seed, args.resolution, (args.word,) if args.word else None,
                           frame=args.frame)
    if not ok:
        print(f"The expert failed on {args.task}/{args.mode} seed {args.seed}; no goal written. Try another seed.",
              file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for view, img in goal.items():
        Image.fromarray(img).save(out / f"goal_{view}.png")
    print(f"wrote {', '.join(str(out / f'goal_{v}.png') for v in goal)}")
    return 0


def tqdm_write(line: str) -> None:
    from tqdm import tqdm
    tqdm.write(line)


def _bar(desc: str, unit: str = "step"):
    from tqdm import tqdm
    bar = tqdm(total=None, desc=desc, unit=unit, delay=1)      # quick errors print no empty bar

    def progress(step, total, logs):
        if bar.total is None:     # the clock starts at the first report, not at the latent cache or resume before it
            bar.reset(total=total)
            bar.initial = step
        bar.total = total
        bar.n = step
        if logs:
            bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k.startswith("loss")})
        bar.refresh()
    return bar, progress


def _dataset_resolution(data) -> int:
    spec = Path(data) / "dataset.json"
    if not spec.exists():
        raise ValueError(f"{data} is not a dataset folder (no dataset.json); create one with gen-data.")
    return int(json.loads(spec.read_text())["resolution"])


def cmd_train(args) -> int:
    from a2g_core.sim import MODES, TASKS
    from a2g_core.train.loop import TrainConfig
    from a2g_core.train.stages import train_policy, train_vae
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=args.warmup,
                      ckpt_every=args.ckpt_every, log_every=args.log_every, seed=args.seed)
    bar, progress = _bar(f"stage {args.stage}")
    if args.stage == "vae":
        from a2g_core.models.vae import VAEConfig
        blocks = tuple(_ints(args.vae_blocks, "--vae-blocks"))
        vae_cfg = VAEConfig(resolution=_dataset_resolution(args.data), block_out_channels=blocks,
                            object_weight=args.vae_object_weight)
        logs = train_vae(args.data, args.out, cfg, vae_config=vae_cfg, progress=progress)
        where = Path(args.out) / "vae"
    else:
        from a2g_core.train.stages import PRESETS
        if args.init and args.keypoint_contrast:
            raise ValueError("--keypoint-contrast is for a new policy; one loaded with --init keeps its keypoint maps.")
        if args.carry_resolution and not args.init:
            raise ValueError("--carry-resolution is for a policy loaded with --init; a new one takes its data's frames.")
        if args.renormalize and not args.init:
            raise ValueError("--renormalize is for a policy loaded with --init; a new one fits its statistics to its data.")
        preset = args.preset        # an unknown name is refused by train_policy
        noise_dims = tuple(_ints(args.state_noise_dims, "--state-noise-dims")) if args.state_noise_dims else None
        relative = tuple(_ints(args.relative_dims, "--relative-dims")) if args.relative_dims is not None else None
        retrain = {k: v for k, v in (("state_noise", args.state_noise), ("state_noise_dims", noise_dims),
                                     ("relative_dims", relative),
                                     ("early_windows", args.early_windows), ("pose_loss_weight", args.pose_loss),
                                     ("pose_target", args.pose_target),
                                     ("context_dropout", args.context_dropout), ("goal_frame", args.goal_frame),
                                     ("video_loss_weight", args.video_loss),
                                     ("half_turn_actions", args.half_turn_actions or None),
                                     ("fixed_horizon", args.fixed_horizon or None)) if v is not None}
        changes = {**retrain, **({"keypoint_contrast": True} if args.keypoint_contrast else {})}
        if changes and preset in PRESETS and not args.init:     # one loaded with --init takes the retrain part instead
            preset = PRESETS[preset].with_(**changes)
        cache_bar, cache_progress = _bar("latent cache", "ep")
        logs = train_policy(args.data, args.out, cfg, stage=int(args.stage), preset=preset, vae_dir=args.vae,
                            init=args.init, variant=args.policy, per_task=args.per_task, progress=progress,
                            tasks=_split(args.task, TASKS, "task") if args.task else None,
                            modes=_split(args.mode, MODES, "mode") if args.mode else None,
                            cache_progress=lambda i, n: cache_progress(i, n, {}), retrain=retrain,
                            renormalize=args.renormalize, execute=args.execute,
                            keypoint_shapes=args.keypoint_shapes, carry_resolution=args.carry_resolution)
        cache_bar.close()
        where = Path(args.out) / "final"
    bar.close()
    print(f"done: {where} (last log: {json.dumps({k: round(v, 5) for k, v in logs.items() if k != 'time'})})")
    return 0


def _heading(r: dict) -> str:
    """The wrist-heading figures of a ``diagnose.scene_reading`` result, in one line."""
    return (f"policy {r['policy_turn_deg']:.1f} deg off, mean turn {r['mean_turn_deg']:.1f} deg off"
            + ("" if r["turn_gain"] is None else f"; the policy turns {r['turn_gain']:+.2f} deg per degree the expert turns"))


def cmd_diagnose(args) -> int:
    import numpy as np
    from a2g_core.data.episodes import EpisodeStore, episode_name
    from a2g_core.eval import diagnose
    from a2g_core.eval.policy_eval import load_policy
    name = episode_name(args.task, args.mode, args.seed)
    episodes = list(EpisodeStore(args.data, tasks=[args.task], modes=[args.mode]))
    matches = [e for e in episodes if e.path.name == name]
    if not matches:
        raise ValueError(f"{args.data} has no successful episode {name}; pick a seed the dataset holds.")
    ep, policy = matches[0], load_policy(args.policy)
    e = policy.config.msth_E
    print(f"## open loop on {name} (success at step {ep.success_step}): first {e} actions against the expert's")
    print("| t | error x / y / z (cm) | expert moves (cm) | policy moves (cm) | grip expert / policy |")
    print("|---|---|---|---|---|")
    rows = diagnose.open_loop(policy, ep, every=args.every)
    for r in rows:
        print(f"| {r['t']} | {' / '.join(f'{x:.1f}' for x in r['err_cm'])} | {r['move_expert_cm']:.1f} | "
              f"{r['move_policy_cm']:.1f} | {r['grip_expert']:.2f} / {r['grip_policy']:.2f} |")
    print(f"mean error over the episode: {np.mean([r['err_cm'] for r in rows]):.2f} cm")
    t = min(args.sensitivity_step, ep.steps_before_success - 1)
    print(f"\n## proprio sensitivity at t={t}: predicted move after {e} actions (cm, x y z)")
    for k, v in diagnose.proprio_sensitivity(policy, ep, t).items():
        print(f"{k:>12}: " + " ".join(f"{x:+6.1f}" for x in v))
    if args.scene_episodes:
        scene = episodes if args.scene_data is None else list(EpisodeStore(args.scene_data, tasks=[args.task], modes=[args.mode]))
        if not scene:
            raise ValueError(f"{args.scene_data} has no successful {args.task}/{args.mode} episodes for the scene-reading test.")
        r = diagnose.scene_reading(policy, scene[: args.scene_episodes])
        print(f"\n## scene reading over {r['episodes']} episodes of {args.scene_data or args.data}: "
              f"x-y error after the first {r['steps']} actions")
        print(f"      policy: {r['policy_cm']:.1f} cm\n   mean move: {r['mean_move_cm']:.1f} cm (what ignoring the scene gets)")
        print(f"  heading: {_heading(r)}")
        if r["object_gain"] is not None:
            print(f"  first move per cm the object's place moves (the expert's first grasp): policy "
                  f"{r['object_gain']:+.2f} cm, expert {r['expert_object_gain']:+.2f} cm\n"
                  f"  per cm the place it goes moves (the expert's first release): policy "
                  f"{r['target_gain']:+.2f} cm, expert {r['expert_target_gain']:+.2f} cm")
        for key, n, where in (("after_grasp", args.after_grasp, "after the expert's grasp"),
                              ("before_release", args.before_release, "before the expert's release")):
            if n is not None:
                c = diagnose.scene_reading(policy, scene[: args.scene_episodes], **{key: n})
                print(f"\n## the carry, {n} steps {where}, over {c['episodes']} episodes: "
                      f"heading after {c['steps']} actions\n  {_heading(c)}")
        swap = diagnose.images_or_pose(policy, scene[: args.scene_episodes], args.swap_step)
        if swap["image_gain"] is not None:
            print(f"\n## images or pose at step {args.swap_step}, over {swap['episodes']} episodes: one episode's "
                  f"images and goal with another's state\n  predicted move per cm of the imaged episode's object: "
                  f"{swap['image_gain']:+.2f} cm; of the state's episode's object: {swap['pose_gain']:+.2f} cm "
                  f"(a policy that reads the scene follows the first; a copycat of its pose the second)")
    if not args.no_rollout:
        out = diagnose.closed_loop(policy, ep, every=args.every)
        print(f"\n## closed loop on seed {args.seed}: {'success' if out['success'] else 'failure'} after {out['steps']} steps")
        print("| t | policy x y z yaw grip | expert x y z yaw grip |")
        print("|---|---|---|")
        for r in out["trace"]:
            print(f"| {r['t']} | {' '.join(f'{x:.3f}' for x in r['policy'])} | {' '.join(f'{x:.3f}' for x in r['expert'])} |")
    return 0


def cmd_eval(args) -> int:
    from a2g_core.eval.policy_eval import evaluate_cells
    from a2g_core.sim import MODES, TASKS
    words = [w for w in args.words.split(",") if w.strip()] if args.words else None
    cells = [(t, m) for t in _split(args.task, TASKS, "task") for m in _split(args.mode, MODES, "mode")]
    bar, progress = _bar("eval episodes", "ep")
    wins = [0]

    def on_episode(done, total, r):
        wins[0] += r["success"]
        progress(done, total, {})
        bar.set_postfix_str(f"{r['task']}/{r['mode']} seed {r['seed']}/{r['noise_seed']} {'ok' if r['success'] else 'fail'}; "
                            f"success {wins[0]}/{done}")

    if args.adapter is not None:
        from a2g_core.models.lora import check_adapter
        check_adapter(args.adapter)                       # before any worker starts
    from a2g_core.models.act2goal import describe_cells, trained_on
    known = trained_on(args.policy)
    for task, mode in cells:
        if known and (task, mode) not in known:
            print(f"note: {args.policy} was trained on {describe_cells(known)}, not on {task}/{mode}.")
    reports = evaluate_cells(args.policy, cells=cells, episodes=args.episodes, workers=args.workers,
                             adapter=args.adapter, seed_start=args.seed_start, words=words, scenario=args.scenario,
                             execute=args.execute, max_steps=args.max_steps, progress=on_episode)
    bar.close()
    print("| task | mode | success | 95% interval | episodes | actions per chunk | mean steps | "
          "first grasp off the expert's (median: cm, wrist yaw) | first grasps where the object goes | "
          "the failures' end (median) | failures at the workspace's edge |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in reports:
        grasp = ("—" if r["grasp_error_cm"] is None else
                 f"{r['grasp_error_cm']:.1f} cm, {r['grasp_turn_deg']:.0f}° ({r['grasps']} episodes)")
        end = "—" if r["failed_scores"] is None else ", ".join(f"{k} {v:.2f}" for k, v in r["failed_scores"].items())
        print(f"| {r['task']} | {r['mode']} | {r['success']:.2f} | {r['ci95'][0]:.2f}–{r['ci95'][1]:.2f} | "
              f"{r['episodes']} | {r['execute']} | {r['mean_steps']:.0f} | {grasp} | {r['grasps_at_place']} | {end} | "
              f"{r['failures_at_edge']} |")
    for r in reports:
        if r["by_scene"]:
            split = ", ".join(f"{kind} {k}/{n}" for kind, (k, n) in r["by_scene"].items())
            print(f"{r['task']}/{r['mode']} by scene: {split}")
    if args.max_steps:
        print(f"note: every episode ended by step {args.max_steps} (--max-steps), not at its task's own limit.")
    _write_json(args.json, {"policy": str(args.policy), "adapter": args.adapter and str(args.adapter), "cells": reports})
    if args.db:
        from a2g_core.models.act2goal import Act2GoalPolicy
        from a2g_core.store import crud, open_db
        engine, method = open_db(args.db), Act2GoalPolicy.from_pretrained(args.policy).name
        for r in reports:
            crud.add_evaluation(engine, policy=str(args.policy), adapter=args.adapter and str(args.adapter), method=method,
                                task=r["task"], mode=r["mode"], episodes=r["episodes"], success=r["success"],
                                ci95=tuple(r["ci95"]), scenario=args.scenario, suite="eval")
        print(f"recorded in {args.db} (the lab's Benchmarks tab)")
    return 0


def cmd_compare(args) -> int:
    from a2g_core.eval.compare import compare, format_p, load_results
    ref_label, ref = load_results(args.reference)
    out = []
    for spec in args.others:
        label, other = load_results(spec)
        rows = compare(ref, other)
        if not rows:
            raise ValueError(f"{spec} and {args.reference} share no task and mode played on the same seeds.")
        print(f"\nA = {ref_label}\nB = {label}\n")
        print("| task | mode | shared seeds | A | B | only A | only B | A − B (95% interval) | McNemar p |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            n = r["seeds"]
            print(f"| {r['task']} | {r['mode']} | {n} | {r['a']}/{n} | {r['b']}/{n} | {r['only_a']} | {r['only_b']} | "
                  f"{r['difference']:+.2f} ({r['ci95'][0]:+.2f} to {r['ci95'][1]:+.2f}) | {format_p(r['p_value'])} |")
        out.append({"a": ref_label, "b": label, "cells": rows})
    _write_json(args.json, {"comparisons": out})
    return 0


def cmd_improve(args) -> int:
    from a2g_core.store import open_db
    from a2g_core.train.improve import ImproveConfig, baseline_success, improvement_round, policy_probe
    if args.rounds < 1:
        raise ValueError("--rounds must be at least 1.")
    cfg = ImproveConfig(task=args.task, mode=args.mode, source=args.source, relabel=args.relabel,
                        keep_goal=args.keep_goal, buffer_threshold=args.buffer,
                        max_rollouts=args.max_rollouts, collect=not args.no_collect, epochs=args.epochs,
                        rank=args.rank, lr=args.lr, batch_size=args.batch_size, eval_episodes=args.eval_episodes,
                        workers=args.workers, anchor=str(args.anchor) if args.anchor else None,
                        anchor_fraction=args.anchor_fraction, scenario=args.scenario,
                        probe=str(args.probe) if args.probe else None)
    if not (Path(args.policy) / "policy.json").exists():
        raise ValueError(f"{args.policy} is not a policy folder (no policy.json).")
    engine = open_db(args.db)
    say = lambda msg: print(f"  {msg}", flush=True)
    nan = float("nan")
    success = baseline_success(engine, args.policy, args.run, cfg)["success"] if cfg.eval_episodes else nan
    probe = policy_probe(args.policy, cfg) if cfg.probe else nan
    probed = lambda loss: f"; probe loss {loss:.4f}" if cfg.probe else ""
    rows = []
    if cfg.eval_episodes or cfg.probe:
        print(f"round 0 (no adapter): success {success:.2f} over {cfg.eval_episodes} episodes{probed(probe)}",
              flush=True)
        rows.append((0, success, probe, "", ""))
    for _ in range(args.rounds):
        r = improvement_round(engine, args.policy, args.run, cfg, progress=say)
        m, t = r.metrics, r.timings
        times = ", ".join(f"{k} {v:.0f} s" for k, v in t.items())
        success, probe = m.get("success", nan), m.get("probe_loss") or nan
        print(f"round {r.number}: success {success:.2f}{probed(probe)}; {m['transitions']} transitions "
              f"from {m['rollouts']} rollouts; {times}; adapter {r.adapter}", flush=True)
        rows.append((r.number, success, probe, m["transitions"], times))
    print("| round | success |" + (" probe loss |" if cfg.probe else "") + " transitions | time |")
    print("|---|---|" + ("---|" if cfg.probe else "") + "---|---|")
    for n, s, p, k, times in rows:
        print(f"| {n} | {s:.2f} |" + (f" {p:.4f} |" if cfg.probe else "") + f" {k} | {times} |")
    return 0


def _api_key(args) -> str | None:
    import os
    if getattr(args, "api_key_file", None):
        path = Path(args.api_key_file)
        if not path.exists():
            raise ValueError(f"The API key file {path} does not exist.")
        return path.read_text().strip() or None
    return os.environ.get("A2G_API_KEY") or None


def _goal_arg(value: str, resolution: int, frame: str = "final") -> dict:
    """``task:mode:seed`` (the expert's final frame) or ``view=path,view=path`` (image files)."""
    import numpy as np
    from PIL import Image
    if "=" in value:
        goal = {}
        for item in value.split(","):
            view, _, path = item.partition("=")
            if not Path(path).exists():
                raise ValueError(f"Goal image {path} does not exist.")
            goal[view.strip()] = np.asarray(Image.open(path).convert("RGB"))
        return goal
    parts = value.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        raise ValueError("--goal takes task:mode:seed (the expert's final frame) or view=path,view=path.")
    from a2g_core.sim.rollout import expert_goal
    return expert_goal(parts[0], parts[1], int(parts[2]), resolution, frame=frame)[0]


def cmd_serve(args) -> int:
    from a2g_core.models.act2goal import Act2GoalPolicy
    from a2g_core.robot.server import PolicyServer
    from a2g_core.store import open_db
    policy = Act2GoalPolicy.from_pretrained(args.policy, adapter=args.adapter)
    if args.compile:
        print("compiling the control path (a minute or two, once)...", flush=True)
        policy.compile_for_control()
    engine = open_db(args.db)
    goal = _goal_arg(args.goal, policy.config.resolution, policy.config.goal_frame) if args.goal else None
    server = PolicyServer(policy, policy_id=str(args.policy), adapter_id=str(args.adapter) if args.adapter else None,
                          goal=goal, engine=engine, record_root=args.record_dir, host=args.host, port=args.port,
                          api_key=_api_key(args), armed=args.arm, watchdog_s=args.watchdog, imagine=args.imagine)
    if args.goal_id is not None:
        server.set_goal_id(args.goal_id)
    print(f"serving {policy.name} ({server.profile.name} profile) on ws://{args.host}:{args.port} — "
          f"{'armed' if args.arm else 'paused until armed from the lab'}; health at http://{args.host}:{args.port}/healthz",
          flush=True)
    server.serve_forever()
    return 0


def cmd_robot_run(args) -> int:
    from a2g_core.robot.robot import Genie01Robot, SimRobot
    from a2g_core.robot.runner import run_robot
    if args.robot == "sim":
        robot = SimRobot(args.task, args.mode, args.seed, args.resolution)
    else:
        if not args.address:
            raise ValueError("--robot genie01 needs --address (the robot's IP or hostname).")
        robot = Genie01Robot(args.address, sdk_module=args.sdk_module)
    with robot:
        run_robot(robot, args.server, api_key=_api_key(args), max_steps=args.max_steps, realtime=not args.fast,
                  estop_file=args.estop_file, task=f"goal:{args.goal_id}" if args.goal_id is not None else None)
    return 0


def cmd_bench_bridge(args) -> int:
    from a2g_core.eval.bridge_bench import bridge_success, run_bridge_bench
    from a2g_core.models.act2goal import trained_on
    report = run_bridge_bench(repeats=args.repeats)
    if args.success_episodes:
        cell = (trained_on(args.policy) or [("place_empty_cup", "easy")])[0]      # the policy's first cell
        task, mode = args.task or cell[0], args.mode or cell[1]
        bar, progress = _bar("episodes through the bridge", "ep")
        report["success"] = r = bridge_success(args.policy, task=task, mode=mode,
                                               episodes=args.success_episodes,
                                               progress=lambda i, n: progress(i, n, {}))
        bar.close()
        print(f"{task}/{mode}, {r['episodes']} seeds: through the bridge {r['bridge']['success']:.2f}, "
              f"in-process {r['in_process']['success']:.2f}")
    _write_json(args.json, report)
    return 0


def _named(items, flag: str, what: str, marker: str | None = None) -> dict[str, str]:
    """``NAME=PATH`` arguments as {name: path}, each path existing (and holding ``marker`` where given)."""
    named = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not (Path(path) / marker if marker else Path(path)).exists():
            raise ValueError(f"{flag} takes NAME=PATH of {what}; got {item!r}.")
        named[name] = path
    return named


def cmd_vae_strip(args) -> int:
    from a2g_core.eval.pictures import vae_strip
    vaes = _named(args.vae, "--vae", "a trained VAE's folder", "config.json")
    tasks = args.task.split(",") if args.task else None
    path, psnr = vae_strip(vaes, args.data, args.out, tasks=tasks)
    print(f"wrote {path}")
    for name, db in psnr.items():
        print(f"  {name}: PSNR {db:.1f} dB over the frames shown")
    return 0


def cmd_imagine_strip(args) -> int:
    from a2g_core.eval.pictures import imagine_strip
    policies = _named(args.policy, "--policy", "a policy folder", "policy.json")
    tasks = _split(args.task, TASKS, "task") if args.task else None
    path, psnr = imagine_strip(policies, args.data, args.out, tasks=tasks, episodes=args.episodes, at=args.at)
    print(f"wrote {path}")
    for name, db in psnr.items():
        print(f"  {name}: PSNR {db:.1f} dB, imagined against real frames (every view and offset)")
    return 0


def cmd_plot_log(args) -> int:
    from a2g_core.eval.pictures import plot_losses
    logs = _named(args.log, "--log", "an existing log.jsonl")
    print(f"wrote {plot_losses(logs, args.out)}")
    return 0


def cmd_cache_latents(args) -> int:
    from a2g_core.data.episodes import EpisodeStore
    from a2g_core.data.latents import build_latent_cache
    from a2g_core.models.io import load_network
    from a2g_core.models.vae import VideoVAE
    from a2g_core.train.loop import device
    store = EpisodeStore(args.data, per_task=args.per_task)
    vae = load_network(VideoVAE, args.vae).at_resolution(store.resolution).to(device())
    bar, progress = _bar("episodes", "ep")
    root = build_latent_cache(store, vae, args.vae, progress=lambda i, n: progress(i, n, {}))
    bar.close()
    print(f"latents in {root}")
    return 0


def cmd_export_lerobot(args) -> int:
    from a2g_core.data.lerobot import export_lerobot
    bar, progress = _bar("export", "ep")
    info = export_lerobot(args.dataset, args.out, include_failed=not args.success_only,
                          progress=lambda i, n: progress(i, n, {}))
    bar.close()
    print(f"wrote {info['total_episodes']} episodes, {info['total_frames']} frames, {info['total_tasks']} tasks "
          f"(LeRobot {info['codebase_version']}) to {args.out}")
    return 0


def cmd_import_lerobot(args) -> int:
    from a2g_core.data.lerobot import import_lerobot
    bar, progress = _bar("import", "ep")
    n = import_lerobot(args.src, args.out, mapping=args.mapping, resolution=args.resolution,
                       progress=lambda i, total: progress(i, total, {}))
    bar.close()
    print(f"wrote {n} episodes to {args.out}; train on them with `train --data {args.out}`")
    return 0


def cmd_benchmark(args) -> int:
    from a2g_core.eval.suite import SuiteConfig, run_suite
    cfg = SuiteConfig.quick() if args.quick else SuiteConfig()
    if args.episodes is not None:
        cfg.episodes = args.episodes
    if args.writing_episodes is not None:
        cfg.writing_episodes = args.writing_episodes
    if args.tables:
        cfg.tables = tuple(t.strip() for t in args.tables.split(",") if t.strip())
    if args.rounds is not None:
        cfg.improve_rounds = args.rounds
    if args.improve_episodes is not None:
        cfg.improve_eval_episodes = args.improve_episodes
    if min(cfg.episodes, cfg.writing_episodes or 1, cfg.improve_eval_episodes, args.workers) < 1 \
            or cfg.improve_rounds < 0:
        raise ValueError("--episodes, --writing-episodes, --improve-episodes and --workers must be at least 1, "
                         "--rounds at least 0.")
    cfg.workers = args.workers
    bar, progress = _bar(f"suite {args.suite}", "cell")

    def on_cell(i, n, cell):
        progress(i, n, {})
        bar.set_postfix_str(f"{cell.table} {cell.method} {cell.task}/{cell.mode} {cell.detail} "
                            f"{'—' if cell.success is None else f'{cell.success:.2f}'}")

    policies = args.policy or [p for p in ALL_TASK_POLICIES if (p / "policy.json").exists()]
    run_suite(policies, args.out, cfg, db=args.db, progress=on_cell)
    bar.close()
    print((Path(args.out) / "report.md").read_text())
    print(f"report, CSV and figures in {args.out}; evaluations recorded in {args.db}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from a2g_core.data.episodes import GOAL_FRAMES
    from a2g_core.data.windows import POSE_TARGETS
    from a2g_core.sim.env import RESOLUTIONS
    p = argparse.ArgumentParser(prog="python -m a2g_core", description="Act2Goal Lab: simulator, data and models.")
    sub = p.add_subparsers(dest="command", metavar="<command>")

    g = sub.add_parser("gen-data", help="write scripted-expert episodes to a dataset folder",
                       description="Run the scripted expert on seeds seed-start .. seed-start+episodes-1 of each "
                                   "task and mode and write every episode (frames, state, action, success, goal "
                                   "frames) to OUT. Resumable: finished episodes are kept, half-written ones "
                                   "discarded.")
    g.add_argument("--task", default="all", help="task name, comma-separated names, or 'all' (default)")
    g.add_argument("--mode", default="easy", help="easy, hard, easy,hard or all (default easy)")
    g.add_argument("--episodes", type=int, default=10, help="episodes per task and mode (default 10)")
    g.add_argument("--seed-start", type=int, default=0, help="first seed (default 0)")
    g.add_argument("--workers", type=int, default=1, help="parallel processes (default 1; use the core count)")
    g.add_argument("--resolution", type=int, default=96, choices=RESOLUTIONS, help="camera size in px (default 96)")
    g.add_argument("--words", default=None, help="writing only: comma-separated words to draw from, e.g. CAT,ROBOT")
    g.add_argument("--noise", type=float, default=0.0,
                   help="perturb the executed end-effector position by a smooth random offset of this std in "
                        "metres until success, recording the expert's own command as the action (DART: the data "
                        "then shows how to get back on the path; 0.015 keeps ~70%% of place_empty_cup runs "
                        "successful; failed runs are kept but not trained on). Each task bounds it to what its "
                        "expert survives (Task.dart_dims, Task.dart_max); place_shoe also turns the open wrist "
                        "(Task.dart_yaw). Default 0")
    g.add_argument("--yaw-noise", type=float, default=None,
                   help="with --noise: the std in radians of the same kind of offset on the wrist's yaw while the "
                        "gripper is open or the arm is lifted clear (the way back to the heading the expert grasps "
                        "at and turns the held object to; default: the task's own Task.dart_yaw, which only "
                        "place_shoe sets)")
    g.add_argument("--handover-from", default=None, metavar="CHECKPOINT",
                   help="DAgger-style data: on each seed this policy acts towards the expert's goal first, then the "
                        "expert takes over from wherever it got to (Task.recover: plug_in, place_empty_cup, "
                        "move_can_pot) and only the expert's part is written. Seeds the policy succeeds on before the "
                        "handover, or leaves where the expert has no way on (its object fallen over), write nothing. "
                        "Use seeds no other episode in OUT has, and the policy's own --resolution")
    g.add_argument("--handover-steps", default="20,240", metavar="FIRST,LAST",
                   help="with --handover-from: the policy's steps before the handover, drawn per seed from "
                        "FIRST..LAST (default 20,240)")
    g.add_argument("--out", type=Path, default=DEFAULT_DATA, help=f"dataset folder (default {DEFAULT_DATA})")
    g.set_defaults(func=cmd_gen_data)

    b = sub.add_parser("bench-sim", help="simulator speed, expert success, data-generation time",
                       description="Measure control steps/s with both cameras at 96 px (per core), frames "
                                   "rendered/s, expert success per task and mode, and the time to generate 100 "
                                   "episodes. Speeds are medians over --repeats runs.")
    b.add_argument("--episodes", type=int, default=20, help="seeds per task and mode for expert success (default 20)")
    b.add_argument("--repeats", type=int, default=5, help="repeats of each speed measurement (default 5)")
    b.add_argument("--workers", type=int, default=2, help="processes for the success and generation runs (default 2)")
    b.add_argument("--gen-episodes", type=int, default=100, help="episodes in the generation timing (default 100)")
    b.add_argument("--task", default="all", help="tasks for the success table (default all)")
    b.add_argument("--json", default=None, help="also write the report as JSON to this file")
    b.set_defaults(func=cmd_bench_sim)

    bm = sub.add_parser("bench-model", help="chunk and imagine latency, training step time, parameters, FLOPs",
                        description="Median latency of predict_action_chunk (batch 1, both views) for the tiny "
                                    "preset and for DP-GC in the same run, imagine latency, stage-1/2 training "
                                    "step time at batch 16, and parameter counts and FLOPs per chunk per preset.")
    bm.add_argument("--repeats", type=int, default=20)
    bm.add_argument("--presets", default="tiny,base", help="presets for parameter and FLOP counts")
    bm.add_argument("--json", default=None, help="also write the report as JSON to this file")
    bm.set_defaults(func=cmd_bench_model)

    s = sub.add_parser("sim-strip", help="picture: head and wrist frames of the expert on every task",
                       description="Render one row per task: head and wrist frames along a scripted-expert run, "
                                   "ending with the goal frame.")
    s.add_argument("--out", default="assets/sim_strip.png", help="PNG to write (default assets/sim_strip.png)")
    s.add_argument("--mode", default="easy", choices=["easy", "hard"])
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--resolution", type=int, default=96, choices=RESOLUTIONS)
    s.set_defaults(func=cmd_sim_strip)

    o = sub.add_parser("goal", help="goal images for a task, mode and seed (the expert's final frame)",
                       description="Run the scripted expert on one seed and save its final frame (or, with --frame "
                                   "success, its first frame with the task done) per view as goal_<view>.png, as "
                                   "the paper makes goal images.")
    o.add_argument("--task", required=True)
    o.add_argument("--mode", default="easy")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--word", default=None, help="writing only: the word to write")
    o.add_argument("--resolution", type=int, default=96, choices=RESOLUTIONS)
    o.add_argument("--frame", choices=GOAL_FRAMES, default="final",
                   help="the expert's last frame (default) or its first with the task done; use the policy's "
                        "goal frame (its config's goal_frame)")
    o.add_argument("--out", default="sessions/goals", help="folder for the PNGs (default sessions/goals)")
    o.set_defaults(func=cmd_goal)

    t = sub.add_parser("train", help="train the VAE (--stage vae), Act2Goal stage 1 or stage 2",
                       description="One training loop for every stage: 'vae' trains the video VAE on the "
                                   "dataset's frames; '1' trains the world model and action expert jointly "
                                   "(L_v + 0.1 L_a) on the latent cache (built on first use); '2' adapts the "
                                   "whole policy with L_a only, from --init. Resumes from OUT/checkpoints after a "
                                   "kill; runs unchanged under torchrun / accelerate launch (DDP).")
    t.add_argument("--stage", required=True, choices=["vae", "1", "2"])
    t.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"dataset folder (default {DEFAULT_DATA})")
    t.add_argument("--out", type=Path, required=True, help="run folder: log.jsonl, checkpoints/, final/")
    t.add_argument("--preset", default="tiny", help="model size: tiny (CPU) or base (GPU)")
    t.add_argument("--policy", default="act2goal", help="act2goal (default); no_msth (ablation: proximal only); dp_gc (baseline: no world model)")
    t.add_argument("--vae", type=Path, default=None, help="stage 1: the trained VAE folder")
    t.add_argument("--init", type=Path, default=None, help="stage 2: the stage-1 policy folder (OUT/final)")
    t.add_argument("--per-task", type=int, default=None,
                   help="stages 1-2: use at most this many episodes per task and mode (default: all)")
    t.add_argument("--task", default=None, help="stages 1-2: train on these tasks only (comma-separated; default all)")
    t.add_argument("--mode", default=None, help="stages 1-2: easy, hard or all (default all)")
    t.add_argument("--state-noise", type=float, default=None,
                   help="std of noise on the normalised proprio input while training, so the expert "
                        "reads the images rather than the exact pose (default: the preset's, 0; a policy loaded with "
                        "--init keeps its own unless this is given, 0 included)")
    t.add_argument("--state-noise-dims", default=None,
                   help="comma-separated state dims that --state-noise goes on (default all; the tabletop's "
                        "state is x,y,z,yaw,grip, so 0,1,2,3 spares the gripper's opening)")
    t.add_argument("--relative-dims", default=None,
                   help="comma-separated action dims predicted as offsets from the same state dim, the others "
                        "absolute (default: the preset's 0,1,2,3, the tabletop's x,y,z,yaw; '' makes all absolute; "
                        "changing a policy loaded with --init needs --renormalize)")
    t.add_argument("--early-windows", type=float, default=None,
                   help="the fraction of training windows that start within an episode's first P steps, "
                        "where the arm is still at the shared home pose and only the images say where to go "
                        "(default: the preset's; a policy loaded with --init keeps its own unless this is given)")
    t.add_argument("--keypoint-contrast", action="store_true",
                   help="stage 1: the action expert's keypoint maps read the current frame beside the goal (and the "
                        "goal beside the current), so they can find what has to move rather than everything that "
                        "looks like it (default: each frame alone)")
    t.add_argument("--pose-loss", type=float, default=None,
                   help="weight of an auxiliary loss that has a linear readout of the keypoint positions predict the "
                        "state where the task is done, so the maps find what sets that pose (default 0: off, or the "
                        "--init policy's own; needs keypoints)")
    t.add_argument("--pose-target", choices=POSE_TARGETS, default=None,
                   help="what --pose-loss's readout predicts: done (the state where the task is done) or next_grip "
                        "(the state at the next grasp or release, then the done state: where the object in hand goes "
                        "on a task of several picks); default: done, or the --init policy's own")
    t.add_argument("--half-turn-actions", action="store_true",
                   help="the expert models the wrist's yaw action as an axis, (cos 2θ, sin 2θ), and control turns to "
                        "that axis's yaw nearest the current one: a parallel gripper grips the same a half turn round, "
                        "so a raw yaw target is either of two (needs the yaw absolute, --relative-dims 0,1,2; a policy "
                        "loaded with --init needs --renormalize; default: the raw yaw, or the --init policy's form)")
    t.add_argument("--context-dropout", type=float, default=None,
                   help="the fraction of training samples in which the action expert reads a null world-model "
                        "context, so it learns to act from its state and keypoints too (control always reads the "
                        "context; default 0: off, or the --init policy's own)")
    t.add_argument("--video-loss", type=float, default=None,
                   help="stage 2: weight of the world model's video loss beside the action loss, so it keeps "
                        "imagining (default 0: the paper's L_a alone, or the --init policy's own)")
    t.add_argument("--keypoint-shapes", action="store_true",
                   help="the action expert also reads each keypoint map's shape (which way an elongated thing lies, "
                        "mod a half turn, and how spread it is); added to a policy loaded with --init at zero weight, "
                        "so it acts as before until training uses them (default: positions only, or the --init "
                        "policy's own)")
    t.add_argument("--fixed-horizon", action="store_true",
                   help="stages 1-2 with --init: train a policy that was trained on the steps left to the goal on "
                        "control's K from now on (the presets do from the start)")
    t.add_argument("--renormalize", action="store_true",
                   help="with --init: refit the policy's state and action statistics to this data (needed where a dim "
                        "varies that was constant in its training data, e.g. the peg's turn in hard plug_in; the "
                        "latents' statistics stay as trained)")
    t.add_argument("--carry-resolution", action="store_true",
                   help="with --init on data rendered at another frame size (gen-data --resolution): carry the policy "
                        "to it, the same tokens per frame in larger patches of latents (patch embeddings resized, latent "
                        "statistics refitted to the data; default: refuse such data)")
    t.add_argument("--execute", type=int, default=None,
                   help="stages 1-2: the actions per chunk (E) the saved policy executes before predicting again; "
                        "training never reads it, eval and the lab start from it (default: the preset's, or the "
                        "--init policy's)")
    t.add_argument("--goal-frame", choices=GOAL_FRAMES,
                   help="which frame of an expert episode is its goal image, in training and in every goal made "
                        "for the policy: final (the last: task done, arm home) or success (the first with the task "
                        "done, as rollouts end); default: the preset's, or the --init policy's")
    t.add_argument("--vae-blocks", default="16,32,64",
                   help="VAE: channels per block; n blocks compress 2^(n-1)× (default 16,32,64: 4×)")
    t.add_argument("--vae-object-weight", type=float, default=10.0,
                   help="VAE: weight of pixels unlike the background in the reconstruction loss (default 10; 0: plain)")
    t.add_argument("--steps", type=int, default=1000)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=3e-4)
    t.add_argument("--warmup", type=int, default=100)
    t.add_argument("--ckpt-every", type=int, default=200)
    t.add_argument("--log-every", type=int, default=10)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="closed-loop success of a policy in the simulator, with a 95%% interval",
                       description="Run the policy on seeds seed-start.. of a task and mode; the goal for each "
                                   "seed is the final frame of the scripted expert on that seed. Prints the success "
                                   "rate with a 95% Wilson interval, and how far from the expert's first grasp on "
                                   "the same seed the policy first shut its gripper (median: does it find the object?), and in how "
                                   "many episodes it shut it where the object goes instead (the goal image's object "
                                   "read for the scene's), and where the failed episodes ended (medians of the figures "
                                   "the task's success check compares: cm off the goal spot, writing's ink on the word).")
    e.add_argument("--policy", type=Path, required=True, help="policy folder (e.g. OUT/final of train)")
    e.add_argument("--adapter", type=Path, default=None,
                   help="LoRA adapter on top of it (an improvement round's RUN/adapters/round_NNN; default none)")
    e.add_argument("--task", required=True, help="task, comma-separated tasks, or 'all'")
    e.add_argument("--mode", default="easy", help="easy, hard, or all")
    e.add_argument("--episodes", type=int, default=20, help="episodes per task and mode (default 20)")
    e.add_argument("--workers", type=int, default=1)
    e.add_argument("--seed-start", type=int, default=10_000, help="first seed (default 10000, unseen in training)")
    e.add_argument("--scenario", type=int, default=None,
                   help="play every episode in the scene of this one seed; the seeds from --seed-start then only draw "
                        "the policy's noise (the paper's self-improvement scenarios; default: one scene per seed)")
    e.add_argument("--execute", type=int, default=None,
                   help="actions executed per chunk before the next prediction, 1..P (default: the checkpoint's E; "
                        "fewer replans more often)")
    e.add_argument("--words", default=None, help="writing only: comma-separated words to draw goals from")
    e.add_argument("--max-steps", type=int, default=None,
                   help="end each episode after this many steps (default: the task's limit, as every figure in the "
                        "README; less for a quick look: a failing writing episode runs its 900)")
    e.add_argument("--json", default=None, help="also write the per-episode results to this file")
    e.add_argument("--db", default=str(DEFAULT_DB),
                   help=f"record the table in this lab database (default {DEFAULT_DB}; '' to skip)")
    e.set_defaults(func=cmd_eval)

    cp = sub.add_parser("compare", help="is one policy ahead of another? paired test on the seeds both evaluated",
                        description="Compare eval --json results seed by seed: per task and mode, how many shared seeds "
                                    "only A or only B succeeded on, the difference in success rate with Newcombe's 95% "
                                    "interval for paired rates, and McNemar's exact p-value (small: the split of "
                                    "those seeds is unlikely if both policies were equally good). Seeds where both "
                                    "succeed or both fail carry no information about which is better.")
    cp.add_argument("reference", help="eval --json file of policy A (several joined by commas: seed blocks of one policy)")
    cp.add_argument("others", nargs="+", help="eval --json file(s) of the policies to set against A, each compared to A")
    cp.add_argument("--json", default=None, help="also write the comparisons to this file")
    cp.set_defaults(func=cmd_compare)

    dg = sub.add_parser("diagnose", help="why a policy fails: open-loop error, proprio sensitivity, closed-loop trace",
                        description="On one expert episode of the dataset (a training seed shows fitting, another "
                                    "seed generalisation): the chunk the policy predicts at every --every-th step "
                                    "from the expert's observation against the expert's actions; how the predicted "
                                    "move changes when only the state input is nudged (a copycat reads the phase "
                                    "off the pose); and the policy's own rollout beside the expert's poses.")
    dg.add_argument("--policy", type=Path, default=DEFAULT_POLICY, help=f"policy folder (default {DEFAULT_POLICY})")
    dg.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"dataset folder (default {DEFAULT_DATA})")
    dg.add_argument("--task", required=True)
    dg.add_argument("--mode", default="easy", help="easy or hard (default easy)")
    dg.add_argument("--seed", type=int, default=0, help="the episode's seed (default 0)")
    dg.add_argument("--every", type=int, default=6, help="steps between rows (default 6)")
    dg.add_argument("--sensitivity-step", type=int, default=8, help="step of the proprio-sensitivity test (default 8)")
    dg.add_argument("--no-rollout", action="store_true", help="skip the closed-loop rollout")
    dg.add_argument("--scene-episodes", type=int, default=20,
                    help="episodes of the task for the scene-reading test: does the first chunk go where the objects "
                         "are, or where the expert goes on average? (default 20; 0 skips it)")
    dg.add_argument("--swap-step", type=int, default=6,
                    help="step of the images-or-pose test, run with the scene reading (default 6)")
    dg.add_argument("--scene-data", type=Path, default=None,
                    help="dataset for the scene-reading test (default --data; expert episodes of unseen seeds, "
                         "e.g. gen-data --seed-start 10000, measure how the policy reads scenes it was not trained on)")
    dg.add_argument("--after-grasp", type=int, default=None, metavar="N",
                    help="also run the scene reading's heading test N steps after the expert first shuts the gripper: "
                         "does the carry turn the object as the goal asks? (default: not run)")
    dg.add_argument("--before-release", type=int, default=None, metavar="N",
                    help="also run it N steps before the expert first opens the gripper again, where it holds the "
                         "heading it sets the object down at: how far off does the policy turn it? (default: not run; "
                         "N of at least P keeps the chunk before the release)")
    dg.set_defaults(func=cmd_diagnose)

    im = sub.add_parser("improve", help="self-improvement rounds: rollouts, hindsight relabelling, LoRA",
                        description="Each round rolls the current policy (base + the run's latest adapter) out in "
                                    "the simulator until the HER buffer holds --buffer transitions (executed "
                                    "chunks), relabels every chunk's goal as the observation it reached, trains "
                                    "only LoRA parameters for --epochs passes, saves RUN/adapters/round_NNN/, "
                                    "clears the buffer and evaluates. Everything is recorded in the lab database. "
                                    "Rerunning continues the run from its last finished round.")
    im.add_argument("--policy", type=Path, default=DEFAULT_POLICY,
                    help=f"base checkpoint, never modified (default {DEFAULT_POLICY})")
    im.add_argument("--task", required=True, help="simulator task to roll out on")
    im.add_argument("--mode", default="hard", help="easy or hard (default hard)")
    im.add_argument("--run", type=Path, required=True, help="run folder: rollouts/, adapters/, train/")
    im.add_argument("--rounds", type=int, default=1, help="rounds to run now (default 1)")
    im.add_argument("--source", default="all", help="rollouts that feed the buffer: all (default), success, failure")
    im.add_argument("--relabel", default="chunk",
                    help="the goal each executed chunk is relabelled with: chunk (default, the paper: the observation "
                         "the chunk reached) or future (any observation the rollout reached from there on, HER's "
                         "'future' strategy)")
    im.add_argument("--keep-goal", type=float, default=0.0,
                    help="share (0-1) of a successful rollout's samples that keep the goal it was given, with the "
                         "targets the whole way to its success; the rest are relabelled (not the paper's recipe, which "
                         "relabels all; default 0)")
    im.add_argument("--buffer", type=int, default=20, help="transitions before a round optimises (default 20)")
    im.add_argument("--max-rollouts", type=int, default=10, help="rollouts per round at most (default 10)")
    im.add_argument("--no-collect", action="store_true",
                    help="collect nothing; train on the rollouts already recorded (e.g. from the robot)")
    im.add_argument("--epochs", type=int, default=10, help="passes over the buffer (default 10)")
    im.add_argument("--rank", type=int, default=64, help="LoRA rank (default 64)")
    im.add_argument("--lr", type=float, default=3e-4)
    im.add_argument("--batch-size", type=int, default=8)
    im.add_argument("--anchor", type=Path, default=None,
                    help="expert dataset (gen-data) whose windows of the same task and mode fill part of every batch, "
                         "meant to keep the rounds from drifting away from what the base learned (not the paper's recipe; default none)")
    im.add_argument("--anchor-fraction", type=float, default=0.5,
                    help="share of each batch the anchor's windows take (default 0.5); the buffer still gets --epochs")
    im.add_argument("--scenario", type=int, default=None,
                    help="roll out and evaluate in the one scene of this seed, as the paper's §5.4 does (one scenario "
                         "per hard-mode task); episodes then differ only in the policy's noise (default: rollouts on "
                         "seeds 20000+, evaluation on the unseen seeds 10000+)")
    im.add_argument("--probe", type=Path, default=None,
                    help="expert dataset (gen-data): each round also reports the adapter's action loss on 256 fixed "
                         "windows of its task and mode with their task goals, round 0 the base's; a rise means the "
                         "round unlearns what the base knew (far less noisy than a success rate; default none)")
    im.add_argument("--eval-episodes", type=int, default=10, help="evaluation episodes per round (default 10; 0 skips)")
    im.add_argument("--workers", type=int, default=1, help="processes for evaluation (default 1)")
    im.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"lab database (default {DEFAULT_DB})")
    im.set_defaults(func=cmd_improve)

    sv = sub.add_parser("serve", help="serve the policy over the openpi WebSocket protocol (Genie-01 bridge)",
                        description="An openpi-compatible policy server: metadata on connect, then one action chunk "
                                    "per msgpack observation; errors come back as text frames. Starts PAUSED unless "
                                    "--arm: the operator arms, steps, pauses or stops it from the lab (or GET "
                                    "/control/arm|step|pause|stop). Every request is recorded as a rollout in the "
                                    "lab database. A non-loopback bind requires an API key.")
    sv.add_argument("--policy", type=Path, default=DEFAULT_POLICY, help=f"policy folder (default {DEFAULT_POLICY})")
    sv.add_argument("--adapter", type=Path, default=None, help="LoRA adapter of an improvement round")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--api-key-file", default=None, help="file holding the API key (else $A2G_API_KEY)")
    sv.add_argument("--goal", default=None, help="task:mode:seed (expert goal) or view=path,view=path")
    sv.add_argument("--goal-id", type=int, default=None, help="a goal of the lab database")
    sv.add_argument("--arm", action="store_true", help="start armed (serve at once)")
    sv.add_argument("--watchdog", type=float, default=10.0, help="end a rollout after this many idle seconds")
    sv.add_argument("--imagine", action="store_true", help="record the world model's imagined frames per chunk")
    sv.add_argument("--compile", action="store_true",
                    help="torch.compile the control path before serving: about 2x faster chunks after a one-off "
                         "compile (see bench-model)")
    sv.add_argument("--db", type=Path, default=DEFAULT_DB, help=f"lab database (default {DEFAULT_DB})")
    sv.add_argument("--record-dir", type=Path, default=Path("sessions/robot_rollouts"))
    sv.set_defaults(func=cmd_serve)

    rr = sub.add_parser("robot-run", help="connect a robot (or the simulator) to a policy server",
                        description="Observe, request a chunk, execute its actions at the robot's control rate, "
                                    "repeat. Waits while the server is paused, ends when it is stopped, at "
                                    "--max-steps, or when --estop-file appears.")
    rr.add_argument("--server", default="ws://127.0.0.1:8000")
    rr.add_argument("--robot", default="sim", choices=["sim", "genie01"])
    rr.add_argument("--task", default="place_empty_cup", help="sim: task")
    rr.add_argument("--mode", default="easy", help="sim: easy or hard")
    rr.add_argument("--seed", type=int, default=10_000, help="sim: scene seed")
    rr.add_argument("--resolution", type=int, default=64, choices=RESOLUTIONS, help="sim: camera size")
    rr.add_argument("--address", default=None, help="genie01: the robot's address")
    rr.add_argument("--sdk-module", default="agibot_sdk", help="genie01: AgiBot SDK module name")
    rr.add_argument("--api-key-file", default=None)
    rr.add_argument("--goal-id", type=int, default=None, help="ask the server for this goal of the lab database")
    rr.add_argument("--max-steps", type=int, default=400)
    rr.add_argument("--estop-file", default=None, help="stop at once when this file exists")
    rr.add_argument("--fast", action="store_true", help="do not wait for the control period (simulator only)")
    rr.set_defaults(func=cmd_robot_run)

    bb = sub.add_parser("bench-bridge", help="latency the WebSocket bridge adds, and requests per second",
                        description="genie01 requests (three 480x640 images) through the official openpi client: "
                                    "round trip minus in-process time; tabletop requests per second with one and "
                                    "two clients. Medians; random weights.")
    bb.add_argument("--repeats", type=int, default=30)
    bb.add_argument("--success-episodes", type=int, default=0,
                    help="also run this many seeds through the bridge and in-process and compare success")
    bb.add_argument("--policy", type=Path, default=DEFAULT_POLICY, help=f"policy folder (default {DEFAULT_POLICY})")
    bb.add_argument("--task", default=None, help="task of the success comparison (default: the first the policy "
                                                 "was trained on)")
    bb.add_argument("--mode", default=None, help="its mode (default: the policy's first)")
    bb.add_argument("--json", default=None, help="also write the report as JSON to this file")
    bb.set_defaults(func=cmd_bench_bridge)

    vs = sub.add_parser("vae-strip", help="picture: frames beside their VAE reconstructions",
                        description="For the first easy episode of each task: head (start, middle, last: the goal) and "
                                    "wrist (middle) frames, then the same frames through each VAE at the "
                                    "dataset's resolution, left to right.")
    vs.add_argument("--vae", action="append", required=True, help="NAME=FOLDER of a trained VAE (repeatable)")
    vs.add_argument("--data", type=Path, default=DEFAULT_DATA)
    vs.add_argument("--task", default=None, help="comma-separated tasks (default all)")
    vs.add_argument("--out", required=True, help="PNG to write")
    vs.set_defaults(func=cmd_vae_strip)

    ii = sub.add_parser("imagine-strip", help="picture: what a policy imagines beside what happened, and its PSNR",
                        description="For the first easy episodes of each task in a dataset, from a frame part of the "
                                    "way in: the real head frames at the MSTH frame offsets (then the goal), and below "
                                    "them each policy's imagined frames at the same offsets. Prints each policy's PSNR "
                                    "of imagined against real frames over every view and offset.")
    ii.add_argument("--policy", action="append", required=True, help="NAME=FOLDER of an Act2Goal policy (repeatable)")
    ii.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a dataset at the policies' frame size")
    ii.add_argument("--task", default=None, help="comma-separated tasks (default all in the dataset)")
    ii.add_argument("--episodes", type=int, default=2, help="easy episodes per task (default 2)")
    ii.add_argument("--at", type=float, default=0.25, help="where in each episode to start, as a fraction (default 0.25)")
    ii.add_argument("--out", required=True, help="PNG to write")
    ii.set_defaults(func=cmd_imagine_strip)

    pl = sub.add_parser("plot-log", help="loss curves of training runs as a PNG",
                        description="Draw the loss columns of one or more log.jsonl files, one panel per run.")
    pl.add_argument("--log", action="append", required=True, help="NAME=PATH of a log.jsonl (repeatable)")
    pl.add_argument("--out", required=True, help="PNG to write")
    pl.set_defaults(func=cmd_plot_log)

    c = sub.add_parser("cache-latents", help="encode a dataset's frames once with a VAE",
                       description="Encode every frame of every episode with the VAE into DATA/latents/<vae id>/ "
                                   "(float16); resumable. `train --stage 1` does this on first use.")
    c.add_argument("--data", type=Path, default=DEFAULT_DATA)
    c.add_argument("--vae", type=Path, required=True, help="the VAE folder (config.json + model.safetensors)")
    c.add_argument("--per-task", type=int, default=None,
                   help="only the first N successful episodes per task and mode (what `train --per-task N` reads)")
    c.set_defaults(func=cmd_cache_latents)

    ex = sub.add_parser("export-lerobot", help="write a dataset (expert data, rollouts, demos) as LeRobot v3.0",
                        description="Write an episode-store folder as a LeRobot dataset v3.0: observation.images.<view> "
                                    "and goal.images.<view> as H.264 videos, observation.state, action, next.done, "
                                    "indices and timestamps in parquet, meta/info.json, stats.json, tasks.parquet and "
                                    "meta/episodes. An episode of T actions becomes T+1 frames (the last repeats the "
                                    "last action, next.done=true).")
    ex.add_argument("--dataset", type=Path, required=True,
                    help="an episode-store folder, e.g. sessions/data/expert or sessions/lab/rollouts")
    ex.add_argument("--out", type=Path, required=True, help="a new folder for the LeRobot dataset")
    ex.add_argument("--success-only", action="store_true", help="leave out episodes that did not succeed")
    ex.set_defaults(func=cmd_export_lerobot)

    ix = sub.add_parser("import-lerobot", help="read a LeRobot v3.0 dataset into an episode-store folder",
                        description="Read a LeRobot dataset v3.0 (ours or made elsewhere) into an episode-store folder "
                                    "that `train` reads. Each episode's goal is its final frame. Cameras and the "
                                    "state/action layout come from --mapping: 'a2g' (our own export), 'agibot-world' "
                                    "(top_head, hand_left, hand_right; 14 joints + 2 grippers) or a JSON file "
                                    '{"views": {"head": "observation.images.cam"}, "state": ["observation.state[0:7]"], '
                                    '"action": ["action"], "profile": "tabletop"}.')
    ix.add_argument("--src", type=Path, required=True, help="the LeRobot dataset folder (with meta/info.json)")
    ix.add_argument("--out", type=Path, required=True, help="episode-store folder to write (resumable: reruns "
                                                             "overwrite episodes of the same name)")
    ix.add_argument("--mapping", default="a2g", help="a2g | agibot-world | PATH.json (default a2g)")
    ix.add_argument("--resolution", type=int, default=64, help="frames are centre-cropped and resized to this (px)")
    ix.set_defaults(func=cmd_import_lerobot)

    bs = sub.add_parser("benchmark", help="the paper's tables on the simulator, one resumable command",
                        description="--suite paper: success per task × mode × method with 95% intervals; writing by "
                                    "word length × seen/unseen words with and without MSTH; success per improvement "
                                    "round from all/successful/failed rollouts on two hard tasks. Methods come from the "
                                    "checkpoints given (--policy, repeatable; each knows whether it is act2goal, dp_gc "
                                    "or no_msth). Finished cells are kept in OUT/cells.jsonl: rerun to resume. Writes "
                                    "OUT/report.md, results.csv, figures (.html, .png with Chromium) and store rows.")
    bs.add_argument("--suite", choices=["paper"], default="paper")
    bs.add_argument("--policy", action="append", default=None,
                    help=f"a policy folder (repeatable, one per method; default the all-task checkpoints "
                         f"{', '.join(str(p) for p in ALL_TASK_POLICIES)} where present)")
    bs.add_argument("--out", default="sessions/benchmark/paper", help="report folder (default %(default)s)")
    bs.add_argument("--quick", action="store_true", help="every table at toy size: 1 task, 1 episode, 12 steps")
    bs.add_argument("--tables", default=None, help="comma-separated subset of success,writing,improve (default all)")
    bs.add_argument("--episodes", type=int, default=None, help="episodes per success cell (default 50)")
    bs.add_argument("--writing-episodes", type=int, default=None,
                    help="episodes per writing cell (default: --episodes; writing episodes are the longest)")
    bs.add_argument("--rounds", type=int, default=None, help="improvement rounds per run (default 3)")
    bs.add_argument("--improve-episodes", type=int, default=None, help="evaluation episodes per round (default 10)")
    bs.add_argument("--workers", type=int, default=1, help="simulator worker processes for evaluation")
    bs.add_argument("--db", default=str(DEFAULT_DB), help="the store to record in (default %(default)s)")
    bs.set_defaults(func=cmd_benchmark)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except ValueError as e:            # user errors: one sentence, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished work is kept (rerun the same command to resume).", file=sys.stderr)
        return 130
