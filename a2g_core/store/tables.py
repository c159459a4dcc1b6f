"""The schema. Times are UTC ISO strings; JSON columns hold small dicts (configs, metrics)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


GOAL_SOURCES = ("snapped", "uploaded", "expert", "reached")
TARGETS = ("sim", "robot")
LABELS = ("success", "failure")
SOURCES = ("all", "success", "failure")          # which rollouts feed the HER buffer
ROUND_STATUS = ("queued", "running", "done", "failed")


class Goal(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    created: str = Field(default_factory=now)
    name: str = ""
    source: str = Field(index=True)                        # one of GOAL_SOURCES
    task: Optional[str] = Field(default=None, index=True)
    mode: Optional[str] = None
    seed: Optional[int] = None
    images: dict = Field(default_factory=dict, sa_column=Column(JSON))   # view -> PNG path


class Rollout(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    created: str = Field(default_factory=now)
    status: str = "recording"                              # recording | done
    target: str = "sim"                                    # one of TARGETS
    task: Optional[str] = Field(default=None, index=True)
    mode: Optional[str] = None
    seed: Optional[int] = None
    goal_id: Optional[int] = Field(default=None, foreign_key="goal.id")
    policy: str = ""                                       # checkpoint folder
    adapter: Optional[str] = None                          # adapter folder, if any
    round_id: Optional[int] = Field(default=None, foreign_key="improvementround.id", index=True)
    episode_dir: str = ""                                  # frames, states, actions (episode store layout)
    imagined_dir: Optional[str] = None
    steps: int = 0
    sim_success: Optional[bool] = None                     # from the simulator's check; None on a robot
    label: Optional[str] = Field(default=None, index=True)  # operator's label: one of LABELS
    note: str = ""


class Transition(SQLModel, table=True):
    """One executed chunk (o, c_p, a, o'): observation at ``t0``, actions t0+1..t1, reached ``t1``.
    It stays in the HER buffer until a round consumes it."""
    id: Optional[int] = Field(default=None, primary_key=True)
    rollout_id: int = Field(foreign_key="rollout.id", index=True)
    t0: int
    t1: int
    consumed_by: Optional[int] = Field(default=None, foreign_key="improvementround.id", index=True)


class ImprovementRound(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    created: str = Field(default_factory=now)
    number: int = 0                                        # 1, 2, ... within its run folder
    status: str = Field(default="queued", index=True)      # one of ROUND_STATUS
    pid: Optional[int] = None
    config: dict = Field(default_factory=dict, sa_column=Column(JSON))
    base: str = ""                                         # base checkpoint folder (never written)
    parent_adapter: Optional[str] = None
    adapter: Optional[str] = None                          # the adapter this round saved
    started: Optional[str] = None
    finished: Optional[str] = None
    timings: dict = Field(default_factory=dict, sa_column=Column(JSON))  # seconds per phase
    metrics: dict = Field(default_factory=dict, sa_column=Column(JSON))
    log: str = ""                                          # last progress line
    error: Optional[str] = None


class Checkpoint(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    created: str = Field(default_factory=now)
    path: str = Field(index=True)
    kind: str = "base"                                     # base | adapter
    round_id: Optional[int] = Field(default=None, foreign_key="improvementround.id")
    note: str = ""


class Evaluation(SQLModel, table=True):
    id: Optional[int] = Field(default=None, primary_key=True)
    created: str = Field(default_factory=now)
    policy: str = ""
    adapter: Optional[str] = None
    method: str = ""                                       # act2goal | no_msth | dp_gc
    task: str = Field(index=True)
    mode: str = ""
    episodes: int = 0
    success: float = 0.0
    ci_low: float = 0.0
    ci_high: float = 1.0
    round_id: Optional[int] = Field(default=None, foreign_key="improvementround.id")
    suite: str = ""                                        # e.g. "paper", "improve"
    scenario: Optional[int] = None                         # every episode in this seed's scene (policy noise varies)
