"""Engine and sessions. SQLite in WAL mode (readers never block the one writer); the schema's
version is SQLite's ``user_version`` and ``MIGRATIONS`` brings an older file up to date in place."""
from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

from a2g_core.store import tables  # noqa: F401  (registers the tables)

DEFAULT_DB = Path("sessions/lab/lab.db")          # the lab's own: CLI runs show up in the lab

# version -> SQL statements that bring a database of version-1 to it. Version 1 is the first
# release, created from the tables; append a step here for every later change to the schema.
MIGRATIONS: dict[int, list[str]] = {
    2: ["ALTER TABLE evaluation ADD COLUMN scenario INTEGER"],     # evaluations in one scene (eval/improve --scenario)
}
SCHEMA_VERSION = 1 + len(MIGRATIONS)


def _on_connect(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA busy_timeout=10000")
    # Turning a new file to WAL needs a lock that SQLite's busy handler does not always wait for
    # (measured: 1 of 150 processes opening one new file at once got "database is locked"), so wait here.
    for attempt in range(100):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == 99:
                raise
            time.sleep(0.1)
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def open_db(path: str | Path = DEFAULT_DB) -> Engine:
    """Open (creating or migrating) the lab database at ``path``; ``":memory:"`` for a throwaway one."""
    url = "sqlite://" if str(path) == ":memory:" else f"sqlite:///{Path(path)}"
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    from sqlalchemy.pool import StaticPool
    extra = {"poolclass": StaticPool} if str(path) == ":memory:" else {}   # one shared in-memory database
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10}, **extra)
    event.listen(engine, "connect", _on_connect)
    with engine.connect() as conn:
        # take the write lock before looking: two processes opening a new file at once must not
        # both decide to create the tables
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        version = conn.execute(text("PRAGMA user_version")).scalar()
        has_tables = conn.execute(text("SELECT count(*) FROM sqlite_master WHERE type='table'")).scalar()
        if version > SCHEMA_VERSION:
            conn.rollback()
            raise ValueError(f"{path} was written by a newer Act2Goal Lab (schema {version}, this one knows "
                             f"{SCHEMA_VERSION}); upgrade the lab.")
        if not has_tables:
            SQLModel.metadata.create_all(conn)
        else:
            for v in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS[v]:
                    conn.execute(text(stmt))
        conn.execute(text(f"PRAGMA user_version={SCHEMA_VERSION}"))
        conn.commit()
    return engine


@contextmanager
def session(engine: Engine):
    """One session per operation: committed on success, rolled back on any error."""
    with Session(engine, expire_on_commit=False) as s:
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
