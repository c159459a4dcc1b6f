"""Keyword-only reads and writes, one session each. Every function takes the engine first."""
from __future__ import annotations

import os
from typing import Iterable

from sqlalchemy.engine import Engine
from sqlmodel import or_, select

from a2g_core.store.db import session
from a2g_core.store.tables import (GOAL_SOURCES, LABELS, ROUND_STATUS, SOURCES, TARGETS, Checkpoint, Evaluation,
                                   Goal, ImprovementRound, Rollout, Transition, now)


def _get(engine: Engine, model, row_id: int):
    with session(engine) as s:
        row = s.get(model, row_id)
    if row is None:
        raise ValueError(f"There is no {model.__name__.lower()} with id {row_id}.")
    return row


def _update(engine: Engine, model, row_id: int, fields: dict):
    with session(engine) as s:
        row = s.get(model, row_id)
        if row is None:
            raise ValueError(f"There is no {model.__name__.lower()} with id {row_id}.")
        for k, v in fields.items():
            if not hasattr(row, k):
                raise ValueError(f"{model.__name__} has no field {k!r}.")
            setattr(row, k, v)
        s.add(row)
    return row


# ------------------------------------------------------------------ goals
def add_goal(engine: Engine, *, source: str, images: dict[str, str], task: str | None = None,
             mode: str | None = None, seed: int | None = None, name: str = "") -> Goal:
    if source not in GOAL_SOURCES:
        raise ValueError(f"Unknown goal source {source!r}; use one of {', '.join(GOAL_SOURCES)}.")
    if not images:
        raise ValueError("A goal needs at least one image.")
    with session(engine) as s:
        goal = Goal(source=source, images={k: str(v) for k, v in images.items()}, task=task, mode=mode,
                    seed=seed, name=name)
        s.add(goal)
    return goal


def get_goal(engine: Engine, *, goal_id: int) -> Goal:
    return _get(engine, Goal, goal_id)


def list_goals(engine: Engine, *, task: str | None = None, source: str | None = None) -> list[Goal]:
    q = select(Goal).order_by(Goal.id.desc())
    if task:
        q = q.where(Goal.task == task)
    if source:
        q = q.where(Goal.source == source)
    with session(engine) as s:
        return list(s.exec(q))


# ------------------------------------------------------------------ rollouts and transitions
def add_rollout(engine: Engine, *, target: str, episode_dir: str, policy: str, adapter: str | None = None,
                task: str | None = None, mode: str | None = None, seed: int | None = None,
                goal_id: int | None = None, round_id: int | None = None) -> Rollout:
    if target not in TARGETS:
        raise ValueError(f"Unknown target {target!r}; use sim or robot.")
    with session(engine) as s:
        r = Rollout(target=target, episode_dir=str(episode_dir), policy=str(policy), adapter=adapter, task=task,
                    mode=mode, seed=seed, goal_id=goal_id, round_id=round_id)
        s.add(r)
    return r


def finish_rollout(engine: Engine, *, rollout_id: int, steps: int, chunks: Iterable[tuple[int, int]],
                   sim_success: bool | None = None, imagined_dir: str | None = None) -> Rollout:
    """Mark a rollout complete and put its executed chunks in the HER buffer, in one transaction."""
    with session(engine) as s:
        r = s.get(Rollout, rollout_id)
        if r is None:
            raise ValueError(f"There is no rollout with id {rollout_id}.")
        r.status, r.steps, r.sim_success, r.imagined_dir = "done", steps, sim_success, imagined_dir
        s.add(r)
        for t0, t1 in chunks:
            if not 0 <= t0 < t1 <= steps:
                raise ValueError(f"Chunk ({t0}, {t1}) lies outside the rollout's {steps} steps.")
            s.add(Transition(rollout_id=rollout_id, t0=t0, t1=t1))
    return r


def update_rollout(engine: Engine, *, rollout_id: int, **fields) -> Rollout:
    return _update(engine, Rollout, rollout_id, fields)


def label_rollout(engine: Engine, *, rollout_id: int, label: str | None, note: str = "") -> Rollout:
    if label is not None and label not in LABELS:
        raise ValueError(f"A label is success or failure, not {label!r}.")
    return _update(engine, Rollout, rollout_id, {"label": label, "note": note})


def get_rollout(engine: Engine, *, rollout_id: int) -> Rollout:
    return _get(engine, Rollout, rollout_id)


def list_rollouts(engine: Engine, *, task: str | None = None, label: str | None = None,
                  round_id: int | None = None, target: str | None = None) -> list[Rollout]:
    """Finished rollouts, newest first. ``label="none"`` selects unlabelled ones."""
    q = select(Rollout).where(Rollout.status == "done").order_by(Rollout.id.desc())
    if task:
        q = q.where(Rollout.task == task)
    if label == "none":
        q = q.where(Rollout.label.is_(None))
    elif label:
        q = q.where(Rollout.label == label)
    if round_id is not None:
        q = q.where(Rollout.round_id == round_id)
    if target:
        q = q.where(Rollout.target == target)
    with session(engine) as s:
        return list(s.exec(q))


def list_transitions(engine: Engine, *, rollout_id: int) -> list[Transition]:
    """A rollout's executed chunks, in order."""
    with session(engine) as s:
        return list(s.exec(select(Transition).where(Transition.rollout_id == rollout_id).order_by(Transition.t0)))


def outcome(r: Rollout) -> bool | None:
    """The operator's label wins over the simulator's check; None when neither is known."""
    if r.label is not None:
        return r.label == "success"
    return r.sim_success


def buffer(engine: Engine, *, source: str = "all", task: str | None = None,
           rounds: Iterable[int] | None = None) -> list[tuple[Transition, Rollout]]:
    """The HER buffer: unconsumed transitions of finished rollouts, filtered by their outcome. With
    ``rounds`` (the ids of one improvement run's rounds), rollouts that other rounds collected are
    left out; those recorded outside any round (the operator's, a robot's) stay in."""
    if source not in SOURCES:
        raise ValueError(f"Unknown source {source!r}; use one of {', '.join(SOURCES)}.")
    q = (select(Transition, Rollout).join(Rollout, Transition.rollout_id == Rollout.id)
         .where(Transition.consumed_by.is_(None), Rollout.status == "done").order_by(Transition.id))
    if task:
        q = q.where(Rollout.task == task)
    if rounds is not None:
        q = q.where(or_(Rollout.round_id.is_(None), Rollout.round_id.in_(list(rounds))))
    with session(engine) as s:
        rows = list(s.exec(q))
    if source == "all":
        return rows
    want = source == "success"
    return [(t, r) for t, r in rows if outcome(r) is want]


# ------------------------------------------------------------------ improvement rounds
def create_round(engine: Engine, *, number: int, config: dict, base: str, parent_adapter: str | None) -> ImprovementRound:
    with session(engine) as s:
        r = ImprovementRound(number=number, config=config, base=str(base), parent_adapter=parent_adapter,
                             status="queued")
        s.add(r)
    return r


def update_round(engine: Engine, *, round_id: int, **fields) -> ImprovementRound:
    if "status" in fields and fields["status"] not in ROUND_STATUS:
        raise ValueError(f"Unknown round status {fields['status']!r}.")
    return _update(engine, ImprovementRound, round_id, fields)


def finish_round(engine: Engine, *, round_id: int, transition_ids: list[int], adapter: str, timings: dict,
                 metrics: dict) -> ImprovementRound:
    """In one transaction: the round is done, its adapter is a checkpoint, its transitions leave
    the buffer. A kill before this leaves the transitions in the buffer for the next round."""
    with session(engine) as s:
        r = s.get(ImprovementRound, round_id)
        if r is None:
            raise ValueError(f"There is no improvementround with id {round_id}.")
        for t in s.exec(select(Transition).where(Transition.id.in_(transition_ids))):
            t.consumed_by = round_id
            s.add(t)
        s.add(Checkpoint(path=str(adapter), kind="adapter", round_id=round_id))
        r.status, r.finished, r.adapter, r.timings, r.metrics, r.log = "done", now(), str(adapter), timings, metrics, "done"
        s.add(r)
    return r


def get_round(engine: Engine, *, round_id: int) -> ImprovementRound:
    return _get(engine, ImprovementRound, round_id)


def list_rounds(engine: Engine, *, status: str | None = None) -> list[ImprovementRound]:
    q = select(ImprovementRound).order_by(ImprovementRound.id)
    if status:
        q = q.where(ImprovementRound.status == status)
    with session(engine) as s:
        return list(s.exec(q))


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_stale_rounds(engine: Engine) -> int:
    """Rounds marked running whose process is gone (killed) become failed; returns how many."""
    n = 0
    for r in list_rounds(engine, status="running"):
        if r.pid != os.getpid() and not _alive(r.pid):
            update_round(engine, round_id=r.id, status="failed", finished=now(),
                         error="The process running this round stopped before it finished.")
            n += 1
    return n


# ------------------------------------------------------------------ checkpoints and evaluations
def add_checkpoint(engine: Engine, *, path: str, kind: str = "base", round_id: int | None = None,
                   note: str = "") -> Checkpoint:
    with session(engine) as s:
        c = Checkpoint(path=str(path), kind=kind, round_id=round_id, note=note)
        s.add(c)
    return c


def list_checkpoints(engine: Engine, *, kind: str | None = None) -> list[Checkpoint]:
    q = select(Checkpoint).order_by(Checkpoint.id)
    if kind:
        q = q.where(Checkpoint.kind == kind)
    with session(engine) as s:
        return list(s.exec(q))


def add_evaluation(engine: Engine, *, policy: str, task: str, mode: str, episodes: int, success: float,
                   ci95: tuple[float, float], method: str = "", adapter: str | None = None,
                   round_id: int | None = None, suite: str = "", scenario: int | None = None) -> Evaluation:
    with session(engine) as s:
        e = Evaluation(policy=str(policy), adapter=adapter, method=method, task=task, mode=mode, episodes=episodes,
                       success=success, ci_low=ci95[0], ci_high=ci95[1], round_id=round_id, suite=suite,
                       scenario=scenario)
        s.add(e)
    return e


def list_evaluations(engine: Engine, *, suite: str | None = None, round_id: int | None = None) -> list[Evaluation]:
    q = select(Evaluation).order_by(Evaluation.id)
    if suite:
        q = q.where(Evaluation.suite == suite)
    if round_id is not None:
        q = q.where(Evaluation.round_id == round_id)
    with session(engine) as s:
        return list(s.exec(q))
