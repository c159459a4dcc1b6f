"""The store against a real SQLite file."""
import sqlite3
import subprocess
import sys

import pytest

from a2g_core.store import crud, open_db
from a2g_core.store.db import SCHEMA_VERSION


@pytest.fixture
def engine(tmp_path):
    return open_db(tmp_path / "lab.db")


def _rollout(engine, success, steps=20, label=None):
    r = crud.add_rollout(engine, target="sim", episode_dir="ep", policy="ckpt", task="plating", mode="hard", seed=1)
    crud.finish_rollout(engine, rollout_id=r.id, steps=steps, chunks=[(0, 8), (8, 16), (16, steps)],
                        sim_success=success)
    if label:
        crud.label_rollout(engine, rollout_id=r.id, label=label, note="seen by the operator")
    return r


def test_file_is_wal_and_versioned(tmp_path, engine):
    crud.add_goal(engine, source="expert", images={"head": "g.png"}, task="plating", seed=3)
    con = sqlite3.connect(tmp_path / "lab.db")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert {"goal", "rollout", "transition", "improvementround", "checkpoint", "evaluation"} <= {
        n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    again = open_db(tmp_path / "lab.db")                 # reopening keeps the data
    assert [g.seed for g in crud.list_goals(again, task="plating")] == [3]


def test_newer_schema_is_refused(tmp_path):
    con = sqlite3.connect(tmp_path / "new.db")
    con.execute("CREATE TABLE x (a)")
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(ValueError, match="newer Act2Goal Lab"):
        open_db(tmp_path / "new.db")


def test_goals_and_bad_values(engine):
    g = crud.add_goal(engine, source="uploaded", images={"head": "a.png", "wrist": "b.png"}, name="mine")
    assert crud.get_goal(engine, goal_id=g.id).images == {"head": "a.png", "wrist": "b.png"}
    with pytest.raises(ValueError, match="Unknown goal source"):
        crud.add_goal(engine, source="dreamed", images={"head": "a.png"})
    with pytest.raises(ValueError, match="no goal with id 99"):
        crud.get_goal(engine, goal_id=99)


def test_buffer_sources_and_labels(engine):
    ok = _rollout(engine, True)
    bad = _rollout(engine, False)
    relabelled = _rollout(engine, True, label="failure")           # the operator's label wins
    assert len(crud.buffer(engine)) == 9
    assert {r.id for _, r in crud.buffer(engine, source="success")} == {ok.id}
    assert {r.id for _, r in crud.buffer(engine, source="failure")} == {bad.id, relabelled.id}
    assert [r.note for r in crud.list_rollouts(engine, label="failure")] == ["seen by the operator"]
    with pytest.raises(ValueError, match="success or failure"):
        crud.label_rollout(engine, rollout_id=ok.id, label="great")
    with pytest.raises(ValueError, match="outside the rollout"):
        crud.finish_rollout(engine, rollout_id=ok.id, steps=10, chunks=[(8, 16)])


def test_buffer_of_one_improvement_run(engine):
    operators, mine, theirs = _rollout(engine, True), _rollout(engine, True), _rollout(engine, False)
    rounds = {}
    for r, run in ((mine, "run_a"), (theirs, "run_b")):
        rounds[run] = crud.create_round(engine, number=1, config={"run": run}, base="ckpt", parent_adapter=None).id
        crud.update_rollout(engine, rollout_id=r.id, round_id=rounds[run])
    own = crud.buffer(engine, rounds=[rounds["run_a"]])
    assert {r.id for _, r in own} == {operators.id, mine.id}            # never run_b's
    assert {r.id for _, r in crud.buffer(engine)} == {operators.id, mine.id, theirs.id}


def test_unfinished_rollouts_stay_out_of_the_buffer(engine):
    crud.add_rollout(engine, target="robot", episode_dir="ep", policy="ckpt")
    assert crud.buffer(engine) == []


def test_round_consumes_its_transitions(engine):
    _rollout(engine, False)
    r = crud.create_round(engine, number=1, config={"rank": 4}, base="ckpt", parent_adapter=None)
    ids = [t.id for t, _ in crud.buffer(engine)]
    crud.finish_round(engine, round_id=r.id, transition_ids=ids[:2], adapter="a/round_001", timings={"optimise": 1.0},
                      metrics={"success": 0.5})
    assert [t.id for t, _ in crud.buffer(engine)] == ids[2:]
    row = crud.get_round(engine, round_id=r.id)
    assert (row.status, row.metrics, row.adapter) == ("done", {"success": 0.5}, "a/round_001")
    assert [c.path for c in crud.list_checkpoints(engine, kind="adapter")] == ["a/round_001"]
    with pytest.raises(ValueError, match="Unknown round status"):
        crud.update_round(engine, round_id=r.id, status="paused")


def test_a_round_whose_process_died_is_marked_failed(engine):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    r = crud.create_round(engine, number=1, config={}, base="ckpt", parent_adapter=None)
    crud.update_round(engine, round_id=r.id, status="running", pid=dead.pid)
    assert crud.fail_stale_rounds(engine) == 1
    row = crud.get_round(engine, round_id=r.id)
    assert row.status == "failed" and "stopped" in row.error
    assert crud.fail_stale_rounds(engine) == 0


def test_evaluations(engine):
    crud.add_evaluation(engine, policy="ckpt", task="plating", mode="easy", episodes=20, success=0.25,
                        ci95=(0.11, 0.47), suite="paper", method="act2goal")
    (e,) = crud.list_evaluations(engine, suite="paper")
    assert (e.success, e.ci_low, e.ci_high, e.episodes) == (0.25, 0.11, 0.47, 20)


def test_several_processes_open_a_new_file_at_once(tmp_path):
    """The lab, an improve command and a policy server may all create the database at once."""
    code = ("import sys; from a2g_core.store import open_db, crud; e = open_db(sys.argv[1]); "
            "crud.add_goal(e, source='expert', images={'head': 'g.png'})")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "lab.db")]) for _ in range(4)]
    assert [p.wait() for p in procs] == [0, 0, 0, 0]
    assert len(crud.list_goals(open_db(tmp_path / "lab.db"))) == 4


def test_a_first_release_database_is_migrated_in_place(tmp_path):
    path = tmp_path / "v1.db"
    crud.add_evaluation(open_db(path), policy="ckpt", task="plating", mode="easy", episodes=2, success=0.5,
                        ci95=(0.1, 0.9))
    con = sqlite3.connect(path)                              # make it what the first release wrote
    con.execute("ALTER TABLE evaluation DROP COLUMN scenario")
    con.execute("PRAGMA user_version=1")
    con.commit()
    con.close()
    engine = open_db(path)
    crud.add_evaluation(engine, policy="ckpt", task="plating", mode="hard", episodes=2, success=0.0,
                        ci95=(0.0, 0.8), scenario=10_003)
    assert [(e.mode, e.scenario) for e in crud.list_evaluations(engine)] == [("easy", None), ("hard", 10_003)]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
