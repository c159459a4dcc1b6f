"""Reward-free self-improvement (paper §4.5, stage 3): roll out → relabel with the achieved goal →
optimise LoRA only → evaluate, one round at a time, every fact in the lab database.

A run folder holds ``rollouts/`` (episode store), ``adapters/round_NNN/`` (peft adapters, each
continuing the previous round's) and ``train/round_NNN/`` (the training loop's log). The base
checkpoint is only ever read. A round killed at any moment leaves its row ``running`` with a dead
pid; the next start marks it failed, and its transitions stay in the buffer for the next round.
"""
from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from a2g_core.store import crud
from a2g_core.store.tables import SOURCES, ImprovementRound, now

ROLLOUT_SEED_START = 20_000      # rollouts of rounds: apart from training data (0..) and evaluation (10000..)


@dataclass
class ImproveConfig:
    task: str
    mode: str = "hard"
    source: str = "all"              # all | success | failure: which rollouts feed the buffer
    relabel: str = "chunk"           # chunk (g' = o', the paper) | future (a later reached observation)
    keep_goal: float = 0.0           # share of a successful rollout's samples that keep its given goal (not the paper's)
    buffer_threshold: int = 20       # transitions (executed chunks) before a round optimises
    max_rollouts: int = 10           # per round; stops collecting even if the buffer is short
    collect: bool = True             # False: train on what is already recorded (robot rollouts)
    epochs: int = 10
    rank: int = 64
    lr: float = 3e-4
    batch_size: int = 8
    eval_episodes: int = 10
    workers: int = 1
    max_steps: int | None = None     # per rollout and evaluation episode; None: the task's own limit
    anchor: str | None = None        # expert dataset whose windows share every batch (not the paper's recipe)
    anchor_fraction: float = 0.5     # the share of each batch they take
    scenario: int | None = None      # roll out and evaluate in this seed's scene only (paper §5.4)
    probe: str | None = None         # expert dataset: each round's action loss on its fixed windows

    def __post_init__(self):
        from a2g_core.sim import MODES, TASKS
        in_sim = self.collect or self.eval_episodes > 0
        if in_sim and self.task not in TASKS:
            raise ValueError(f"Unknown task {self.task!r}; choose from: {', '.join(TASKS)} (other names only "
                             f"with --no-collect and --eval-episodes 0, for recorded robot rollouts).")
        if in_sim and self.mode not in MODES:
            raise ValueError(f"Unknown mode {self.mode!r}; choose easy or hard.")
        if self.source not in SOURCES:
            raise ValueError(f"Unknown source {self.source!r}; choose all, success or failure.")
        from a2g_core.data.replay import GOALS, check_keep_goal
        if self.relabel not in GOALS:
            raise ValueError(f"Unknown relabelling {self.relabel!r}; choose {' or '.join(GOALS)}.")
        check_keep_goal(self.keep_goal)
        if self.keep_goal and self.source == "failure":
            raise ValueError("Only successful rollouts keep their goal, and --source failure uses none: "
                             "use --source all or success with --keep-goal.")
        if min(self.buffer_threshold, self.epochs, self.rank, self.batch_size, self.workers) < 1:
            raise ValueError("buffer threshold, epochs, rank, batch size and workers must be at least 1.")
        if self.max_rollouts < 0 or self.eval_episodes < 0:
            raise ValueError("max rollouts and evaluation episodes cannot be negative.")
        if self.anchor and not (Path(self.anchor) / "dataset.json").exists():
            raise ValueError(f"The anchor {self.anchor} is not a dataset folder (no dataset.json).")
        if self.probe and not (Path(self.probe) / "dataset.json").exists():
            raise ValueError(f"The probe {self.probe} is not a dataset folder (no dataset.json).")
        if self.anchor and not 0 < self.anchor_samples < self.batch_size:
            raise ValueError(f"An anchor fraction of {self.anchor_fraction} leaves no place in a batch of "
                             f"{self.batch_size} for the expert's windows or for the buffer's.")

    @property
    def anchor_samples(self) -> int:
        """Expert windows in each batch (0 without an anchor)."""
        return round(self.anchor_fraction * self.batch_size) if self.anchor else 0


def mixed_sampler(first: Callable, second: Callable, n_second: int) -> Callable:
    """Batches with ``n_second`` samples from ``second`` after the rest from ``first``."""
    import torch

    def sample(rng: np.random.Generator, batch_size: int) -> dict:
        parts = [first(rng, batch_size - n_second), second(rng, n_second)]
        return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}
    return sample


def expert_windows(policy, vae_dir: Path, data: str, cfg: ImproveConfig, role: str = "anchor"):
    """Training windows (task goals) of the expert episodes in ``data`` on the round's task and mode."""
    from a2g_core.data.episodes import EpisodeStore
    from a2g_core.data.latents import build_latent_cache
    from a2g_core.data.windows import MSTHWindows
    store = EpisodeStore(data, tasks=[cfg.task], modes=[cfg.mode])
    if not len(store):
        raise ValueError(f"The {role} dataset {data} has no successful {cfg.task} ({cfg.mode}) episodes.")
    root = build_latent_cache(store, policy.vae, vae_dir)
    return MSTHWindows(store, root, policy.config.msth, policy.config.views, policy.config.goal_frame,
                       policy.config.train_horizon, **policy.config.pose_windows)


PROBE_WINDOWS, PROBE_BATCH = 256, 32


def probe_loss(policy, windows) -> float:
    """The action loss (stage 2's ``L_a``) of ``policy`` on 256 fixed expert windows, the same noise
    every call: how much of the expert's behaviour a policy keeps, far less noisy than a success
    rate over 20 episodes. The base's is round 0's; lower is better."""
    import torch
    rng = np.random.default_rng(0)
    batches = [windows.sample(rng, PROBE_BATCH) for _ in range(PROBE_WINDOWS // PROBE_BATCH)]
    stage, training = policy.stage, policy.training
    policy.stage = 2
    policy.eval()
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(0)
        loss = float(np.mean([policy(b)[1]["loss_action"].item() for b in batches]))
    policy.stage = stage
    policy.train(training)
    return loss


def policy_probe(base: str | Path, cfg: ImproveConfig, adapter: str | Path | None = None) -> float:
    """``probe_loss`` on ``cfg.probe`` of the base policy (round 0) or of the base with ``adapter``."""
    from a2g_core.eval.policy_eval import load_policy
    policy = load_policy(base, adapter)
    return probe_loss(policy, expert_windows(policy, Path(base) / "vae", cfg.probe, cfg, "probe"))


def reached_goal(engine, policy, ro, cfg: ImproveConfig) -> list | None:
    """The latents per view of the goal a rollout was given, when it reached it (its outcome) and
    ``cfg.keep_goal`` asks for it; None otherwise, or when the goal lacks one of the policy's views."""
    from a2g_core.data.latents import encode_frames
    from a2g_core.data.rollouts import goal_images
    if not cfg.keep_goal or ro.goal_id is None or not crud.outcome(ro):
        return None
    images = goal_images(crud.get_goal(engine, goal_id=ro.goal_id), policy.config.resolution)
    if any(v not in images for v in policy.config.views):
        return None
    return [encode_frames(policy.vae, images[v][None])[0] for v in policy.config.views]


def run_rounds(engine, run: Path, status: str | None = "done") -> list[ImprovementRound]:
    """The rounds of the run in folder ``run`` (finished ones by default), oldest first."""
    return [r for r in crud.list_rounds(engine, status=status) if r.config.get("run") == str(run)]


def _evaluate(engine, base, adapter, cfg: ImproveConfig, round_id, run: Path) -> dict:
    from a2g_core.eval.policy_eval import evaluate
    rep = evaluate(base, task=cfg.task, mode=cfg.mode, episodes=cfg.eval_episodes, workers=cfg.workers,
                   adapter=adapter, max_steps=cfg.max_steps, scenario=cfg.scenario)
    crud.add_evaluation(engine, policy=str(base), adapter=str(adapter) if adapter else None, method="act2goal",
                        task=cfg.task, mode=cfg.mode, episodes=rep["episodes"], success=rep["success"],
                        ci95=tuple(rep["ci95"]), round_id=round_id, suite=f"improve:{run}", scenario=cfg.scenario)
    return rep


def round_zero(engine, *, base, task: str, mode: str, episodes: int, scenario: int | None = None):
    """The base policy's evaluation (no adapter, no round) on these seeds, if it was measured."""
    for e in crud.list_evaluations(engine):
        if (e.suite.startswith("improve:") and e.round_id is None and e.adapter is None and e.policy == str(base)
                and (e.task, e.mode, e.episodes, e.scenario) == (task, mode, episodes, scenario)):
            return e
    return None


def baseline_success(engine, base, run: str | Path, cfg: ImproveConfig) -> dict:
    """Success of the base policy (round 0) on the evaluation seeds: measured once per policy, task,
    mode, scenario and episode count, and shared by every run that asks (the seeds are the same)."""
    e = round_zero(engine, base=base, task=cfg.task, mode=cfg.mode, episodes=cfg.eval_episodes, scenario=cfg.scenario)
    if e is not None:
        return {"success": e.success, "ci95": [e.ci_low, e.ci_high], "episodes": e.episodes}
    return _evaluate(engine, base, None, cfg, None, Path(run))


def improvement_round(engine, base: str | Path, run: str | Path, cfg: ImproveConfig,
                      progress: Callable[[str], None] | None = None) -> ImprovementRound:
    """One round on top of the run's latest adapter; returns its (done) row."""
    from a2g_core.data.latents import encode_frames
    from a2g_core.data.replay import HindsightReplay
    from a2g_core.data.rollouts import expert_goal_name, record_goal, record_rollout
    from a2g_core.data.episodes import StoredEpisode
    from a2g_core.eval.policy_eval import load_policy, run_episode
    from a2g_core.models.lora import wrap_with_lora
    from a2g_core.sim import make_env
    from a2g_core.sim.rollout import expert_goal
    from a2g_core.train.loop import TrainConfig, train

    say = progress or (lambda msg: None)
    base, run = Path(base), Path(run)
    crud.fail_stale_rounds(engine)
    done = run_rounds(engine, run)
    number = len(done) + 1
    parent = done[-1].adapter if done else None
    row = crud.create_round(engine, number=number, config={**asdict(cfg), "run": str(run)}, base=str(base),
                            parent_adapter=parent)
    crud.update_round(engine, round_id=row.id, status="running", pid=os.getpid(), started=now())
    timings: dict[str, float] = {}
    try:
        # 1. rollouts with the current policy (base + the previous round's adapter)
        t = time.perf_counter()
        policy = load_policy(base, parent)
        # the run's own rollouts and those recorded outside any run, never another run's
        scope = {"source": cfg.source, "task": cfg.task, "rounds": [r.id for r in run_rounds(engine, run, None)]}
        if cfg.collect:
            env = make_env(cfg.task, cfg.mode, policy.config.resolution)
            first = ROLLOUT_SEED_START + (number - 1) * max(cfg.max_rollouts, 1)
            for i in range(cfg.max_rollouts):
                if len(crud.buffer(engine, **scope)) >= cfg.buffer_threshold:
                    break
                seed = first + i if cfg.scenario is None else cfg.scenario
                if i == 0 or cfg.scenario is None:                 # a scenario's rollouts share one goal
                    frame = policy.config.goal_frame
                    goal, expert_ok = expert_goal(cfg.task, cfg.mode, seed, policy.config.resolution, frame=frame)
                    # a goal the expert failed to reach is no goal a success can keep
                    goal_id = record_goal(engine, run, goal, source="expert", task=cfg.task, mode=cfg.mode, seed=seed,
                                          name=expert_goal_name(cfg.task, seed, frame)).id if expert_ok else None
                out = run_episode(policy, env, seed, goal, max_steps=cfg.max_steps, record=True, noise_seed=first + i)
                record_rollout(engine, run / "rollouts", out["episode"], out["chunks"], policy=str(base),
                               adapter=parent, goal_id=goal_id, round_id=row.id, sim_success=out["success"])
                say(f"rollout {i + 1}: {'success' if out['success'] else 'failure'} in {out['steps']} steps")
        timings["rollout"] = time.perf_counter() - t

        # 2. relabel: each buffered chunk's goal becomes an observation it reached (cfg.relabel: its own end, or later)
        t = time.perf_counter()
        rows = crud.buffer(engine, **scope)
        if not rows:
            raise ValueError(f"The {cfg.source} buffer for {cfg.task} is empty: no rollouts to learn from.")
        replay = HindsightReplay(policy.config.msth, goal=cfg.relabel, horizon=policy.config.train_horizon,
                                 keep_goal=cfg.keep_goal)
        by_rollout: dict[int, list] = {}
        for tr, ro in rows:
            by_rollout.setdefault(ro.id, [ro, []])[1].append((tr.t0, tr.t1))
        for ro, chunks in by_rollout.values():
            ep = StoredEpisode(Path(ro.episode_dir), {})
            states, actions = ep.lowdim()
            latents = [encode_frames(policy.vae, ep.frames(v)) for v in policy.config.views]
            replay.add_rollout(latents, states, actions, chunks, reached_goal=reached_goal(engine, policy, ro, cfg))
        timings["relabel"] = time.perf_counter() - t
        kept = sum(ro.goal is not None for ro in replay.rollouts)
        say(f"relabelled {len(replay)} transitions from {len(by_rollout)} rollouts"
            + (f" ({kept} reached their goal and keep it for {cfg.keep_goal:g} of their samples)" if kept else ""))

        # 3. optimise the LoRA parameters only (L_a, as stage 2), through the one training loop; with an
        #    anchor, expert windows take cfg.anchor_fraction of each batch and the buffer still gets cfg.epochs
        t = time.perf_counter()
        sample, anchor = replay.sample, None
        if cfg.anchor:
            anchor = expert_windows(policy, base / "vae", cfg.anchor, cfg)
            sample = mixed_sampler(replay.sample, anchor.sample, cfg.anchor_samples)
        model = wrap_with_lora(load_policy(base), rank=cfg.rank, adapter=parent)
        model.base_model.model.stage = 2
        steps = max(1, math.ceil(cfg.epochs * len(replay) / (cfg.batch_size - cfg.anchor_samples)))
        train_dir = run / "train" / f"round_{number:03d}"
        shutil.rmtree(train_dir, ignore_errors=True)       # never resume another attempt's state
        train(model, sample, TrainConfig(steps=steps, batch_size=cfg.batch_size, lr=cfg.lr,
                                                warmup=max(1, steps // 10), log_every=max(1, steps // 20),
                                                ckpt_every=steps, keep_checkpoints=1, seed=number),
              train_dir, save_fn=lambda folder: None,
              progress=lambda s, n, logs: say(f"optimise {s}/{n}") if s % max(1, n // 10) == 0 else None)
        adapter = run / "adapters" / f"round_{number:03d}"
        tmp = adapter.with_name(adapter.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(str(tmp))
        shutil.rmtree(adapter, ignore_errors=True)
        os.replace(tmp, adapter)
        shutil.rmtree(train_dir / "checkpoints", ignore_errors=True)   # the adapter is the result
        timings["optimise"] = time.perf_counter() - t
        del model

        # 4. evaluate the new adapter on the run's evaluation seeds (and its probe loss)
        t = time.perf_counter()
        rep = _evaluate(engine, base, adapter, cfg, row.id, run) if cfg.eval_episodes else None
        probe = policy_probe(base, cfg, adapter) if cfg.probe else None
        timings["evaluate"] = time.perf_counter() - t
        collected = [r.sim_success for r in crud.list_rollouts(engine, round_id=row.id) if r.sim_success is not None]
        metrics = {"transitions": len(replay), "rollouts": len(by_rollout), "goals_kept": kept, "optimise_steps": steps,
                   "rollouts_collected": len(collected), "rollout_success": float(np.mean(collected)) if collected else None,
                   "anchor_episodes": len(anchor.lengths) if anchor else 0, "probe_loss": probe}
        if rep is not None:
            metrics.update(success=rep["success"], ci95=rep["ci95"], eval_episodes=rep["episodes"])
        return crud.finish_round(engine, round_id=row.id, transition_ids=[tr.id for tr, _ in rows],
                                 adapter=str(adapter), timings=timings, metrics=metrics)
    except BaseException as e:
        crud.update_round(engine, round_id=row.id, status="failed", finished=now(), timings=timings,
                          error=str(e) or type(e).__name__)
        raise
