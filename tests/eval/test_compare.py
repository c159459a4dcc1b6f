import json

import numpy as np
import pytest

from a2g_core.cli import main
from a2g_core.eval.compare import mcnemar_exact, paired_difference


def test_mcnemar_exact_values():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 2 ** 10)
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 2 ** 10)        # C(10,0) + C(10,1) on one tail
    assert mcnemar_exact(3, 7) == mcnemar_exact(7, 3)


def test_paired_difference_is_antisymmetric_and_brackets_the_estimate():
    d, lo, hi = paired_difference(40, 7, 2, 1)
    assert d == pytest.approx(0.10) and lo < d < hi
    d2, lo2, hi2 = paired_difference(40, 2, 7, 1)
    assert (d2, lo2, hi2) == pytest.approx((-d, -hi, -lo))
    assert paired_difference(50, 0, 0, 0)[0] == 0.0
    with pytest.raises(ValueError, match="No shared seeds"):
        paired_difference(0, 0, 0, 0)


def test_paired_interval_covers_the_true_difference():
    """Correlated pairs (the shared scene makes both policies succeed or fail together): the 95% interval
    holds the true difference in about 95% of 2000 simulated comparisons of 50 seeds."""
    rng = np.random.default_rng(0)
    p_both, p_a, p_b = 0.75, 0.12, 0.05                      # A 0.87, B 0.80: true difference 0.07
    hits = 0
    for _ in range(2000):
        k = rng.multinomial(50, [p_both, p_a, p_b, 1 - p_both - p_a - p_b])
        _, lo, hi = paired_difference(*k)
        hits += lo <= p_a - p_b <= hi
    assert 0.93 <= hits / 2000 <= 0.98


def _eval_json(path, policy, successes, seed_start=10000, execute=4):
    results = [{"seed": seed_start + i, "noise_seed": seed_start + i, "success": s} for i, s in enumerate(successes)]
    path.write_text(json.dumps({"policy": policy, "cells": [
        {"task": "place_empty_cup", "mode": "easy", "execute": execute, "results": results}]}))
    return str(path)


def test_compare_command_pairs_seeds_and_joins_blocks(tmp_path, capsys):
    a1 = _eval_json(tmp_path / "a1.json", "a2g", [True] * 10)
    a2 = _eval_json(tmp_path / "a2.json", "a2g", [True] * 9 + [False], seed_start=10010)
    b = _eval_json(tmp_path / "b.json", "dp_gc", [True, False] * 10, execute=8)
    out = tmp_path / "cmp.json"
    assert main(["compare", f"{a1},{a2}", b, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "A = a2g (E=4)" in printed and "B = dp_gc (E=8)" in printed
    row = json.loads(out.read_text())["comparisons"][0]["cells"][0]
    assert (row["seeds"], row["a"], row["b"], row["only_a"], row["only_b"]) == (20, 19, 10, 9, 0)
    assert row["p_value"] == pytest.approx(mcnemar_exact(9, 0)) and row["p_value"] < 0.05
    assert row["ci95"][0] > 0


def test_compare_bad_inputs_are_one_sentence(tmp_path, capsys):
    a = _eval_json(tmp_path / "a.json", "a2g", [True] * 5)
    other_seeds = _eval_json(tmp_path / "b.json", "dp_gc", [True] * 5, seed_start=20000)
    (tmp_path / "junk.json").write_text("{}")
    for argv, message in [([a, str(tmp_path / "missing.json")], "does not exist"),
                          ([a, str(tmp_path / "junk.json")], "is not a file written by `eval --json`"),
                          ([a, other_seeds], "share no task and mode played on the same seeds")]:
        assert main(["compare", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err


def test_compare_reads_a_report_written_before_execute_was_recorded(tmp_path):
    from a2g_core.eval.compare import load_results
    cell = {"task": "move_can_pot", "mode": "easy", "results": [{"seed": 1, "noise_seed": 0, "success": True}]}
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"policy": "P", "cells": [cell]}))
    label, cells = load_results(str(old))
    assert label == "P" and cells[("move_can_pot", "easy")] == {(1, 0): True}
    old.write_text(json.dumps({"policy": "P", "cells": [{**cell, "execute": 4}]}))
    assert load_results(str(old))[0] == "P (E=4)"
