"""The lab's facts in SQLite (sqlmodel): goals, rollouts, labels, HER transitions, improvement
rounds, checkpoints and evaluations. Frames live in files; rows hold their paths.

``tables`` (the schema), ``db`` (engine, sessions, migrations), ``crud`` (keyword-only functions).
"""
from a2g_core.store.db import DEFAULT_DB, open_db  # noqa: F401
