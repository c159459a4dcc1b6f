"""`benchmark --suite paper --quick`: every table at toy size, recorded in the store, resumable."""
import csv
import json
import shutil
from pathlib import Path

import pytest

from a2g_core.cli import main
from a2g_core.eval.suite import SuiteConfig, run_suite
from a2g_core.store import crud, open_db


@pytest.fixture(scope="module")
def suite(tiny_policy_dir, tiny_dp_gc_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    rc = main(["benchmark", "--suite", "paper", "--quick", "--policy", str(tiny_policy_dir), "--policy",
               str(tiny_dp_gc_dir), "--out", str(out / "report"), "--db", str(out / "lab.db")])
    assert rc == 0
    return out


def test_every_table_is_reported_and_recorded(suite):
    rows = list(csv.DictReader(open(suite / "report" / "results.csv")))
    assert [(r["table"], r["method"]) for r in rows] == [
        ("success", "act2goal"), ("success", "dp_gc"), ("writing", "act2goal"), ("improve", "act2goal"),
        ("improve", "act2goal")]
    assert all(0 <= float(r["success"]) <= 1 and float(r["ci_low"]) <= float(r["ci_high"]) for r in rows)
    assert [r["detail"] for r in rows[2:]] == ["short/seen", "all/round 0", "all/round 1"]
    report = (suite / "report" / "report.md").read_text()
    assert "| place_empty_cup | easy |" in report and "| short | seen |" in report
    assert report.count(" | 0.64 / 0.03 |") == 1                        # the paper's Table 1 beside place_empty_cup
    assert "Not run (no checkpoint given): no_msth." in report
    cells = [json.loads(line) for line in (suite / "report" / "cells.jsonl").read_text().splitlines()]
    ours, base = (next(c for c in cells if (c["table"], c["method"]) == ("success", m)) for m in ("act2goal", "dp_gc"))
    assert len(ours["wins"]) == len(base["wins"]) == 1                  # each seed's success is kept for the pairing
    only_ours, only_base = int(ours["wins"][0] and not base["wins"][0]), int(base["wins"][0] and not ours["wins"][0])
    assert f"| place_empty_cup | easy | dp_gc | {only_ours} | {only_base} |" in report
    for name in ("success", "writing", "improve"):
        assert "plotly.min.js" in (suite / "report" / f"{name}.html").read_text()
        if Path("/usr/bin/chromium").exists():
            assert (suite / "report" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    engine = open_db(suite / "lab.db")
    suites = sorted(e.suite for e in crud.list_evaluations(engine))
    assert suites.count("paper:success") == 2 and "paper:writing:short/seen" in suites
    (rnd,) = crud.list_rounds(engine, status="done")
    assert rnd.metrics["success"] == float(rows[-1]["success"])


def test_a_rerun_resumes(suite, tiny_policy_dir, tiny_dp_gc_dir):
    engine = open_db(suite / "lab.db")
    before = len(crud.list_evaluations(engine))
    cells = suite / "report" / "cells.jsonl"
    lines = cells.read_text().splitlines()
    cells.write_text("\n".join(lines[:1] + lines[2:]) + "\n")           # forget the dp_gc success cell
    run_suite([tiny_policy_dir, tiny_dp_gc_dir], suite / "report", SuiteConfig.quick(), db=suite / "lab.db")
    after = crud.list_evaluations(engine)
    assert len(after) == before + 1 and after[-1].method == "dp_gc"        # only the forgotten cell ran again
    assert len(crud.list_rounds(engine)) == 1                              # the finished round is not re-run
    assert len(cells.read_text().splitlines()) == len(lines)


def test_bad_policies(tiny_policy_dir, tiny_dp_gc_dir, tmp_path):
    with pytest.raises(ValueError, match="The improvement table improves Act2Goal"):
        run_suite([tiny_dp_gc_dir], tmp_path, SuiteConfig.quick(), db=tmp_path / "lab.db")
    shutil.copytree(tiny_policy_dir, tmp_path / "copy")
    with pytest.raises(ValueError, match="Two checkpoints of the same method 'act2goal'"):
        run_suite([tiny_policy_dir, tmp_path / "copy"], tmp_path, SuiteConfig.quick(), db=tmp_path / "lab.db")
    with pytest.raises(ValueError, match="not a policy folder"):
        run_suite([tmp_path / "nothing"], tmp_path, SuiteConfig.quick(), db=tmp_path / "lab.db")


def test_table_selection():
    from dataclasses import replace

    from a2g_core.eval.suite import plan
    cells = plan(replace(SuiteConfig(), tables=("writing",)), ["act2goal", "dp_gc", "no_msth"])
    assert {c.table for c in cells} == {"writing"} and {c.method for c in cells} == {"act2goal", "no_msth"}
    assert len(cells) == 2 * 3 * 2                       # methods with a world model × lengths × seen/unseen
    with pytest.raises(ValueError, match="Unknown table"):
        plan(replace(SuiteConfig(), tables=("success", "tables")), ["act2goal"])
