import json
import threading
from pathlib import Path

from app.controller import LabController


def _in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.update(result=fn()))
    t.start()
    t.join()
    return out["result"]


def test_a_session_can_be_driven_from_any_thread(tiny_policy_dir, tmp_path):
    """Gradio calls back on arbitrary worker threads; the EGL context must not care (EGL_BAD_ACCESS)."""
    ctrl = LabController(tiny_policy_dir, tmp_path)
    sid = ctrl.new_session()
    keep_alive = threading.Event()
    holder = threading.Thread(target=lambda: (ctrl.sim_reset(sid, "place_empty_cup", "easy", 0), keep_alive.wait()))
    holder.start()                                  # the resetting thread stays alive, as a pool thread does
    try:
        view = _in_thread(lambda: ctrl.sim_step_expert(sid, 3))
        assert "step 3/" in view["status"]
        view = _in_thread(lambda: ctrl.sim_reset(sid, "place_empty_cup", "easy", 1))
        assert "step 0/" in view["status"] and "seed 1" in view["status"]
        off = float(view["status"].split("cup_off_cm ")[1].split()[0])     # how far the cup is from the coaster
        assert off > 8
    finally:
        keep_alive.set()
        holder.join()
        ctrl.close()


def test_missing_checkpoint_is_one_sentence(tmp_path):
    import pytest

    from app.controller import LabError
    with pytest.raises(LabError, match="No policy checkpoint at"):
        LabController(tmp_path / "nothing", tmp_path)


def test_benchmarks_include_the_shipped_paper_suite(tiny_policy_dir, tmp_path):
    import json
    bench = tmp_path / "bench"
    bench.mkdir()
    cells = [{"table": "success", "method": "dp_gc", "task": "plating", "mode": "hard", "detail": "",
              "success": 0.25, "ci95": [0.1, 0.5], "episodes": 8},
             {"table": "writing", "method": "act2goal", "task": "writing", "mode": "easy", "detail": "short/seen",
              "success": 0.5, "ci95": [0.2, 0.8], "episodes": 8}]
    (bench / "cells.jsonl").write_text("\n".join(json.dumps(c) for c in cells) + "\n")
    ctrl = LabController(tiny_policy_dir, tmp_path / "lab", benchmark_dir=bench, checkpoints_dir=tmp_path / "none")
    try:
        (row,) = ctrl.evaluations()                  # success cells only; the database is empty
        assert (row.method, row.task, row.mode, row.success, row.ci_low) == ("dp_gc", "plating", "hard", 0.25, 0.1)
    finally:
        ctrl.close()


def test_benchmarks_include_the_shipped_checkpoints_own_evaluations(tiny_policy_dir, tmp_path):
    """The shipped single-task checkpoints carry `eval --json`'s report: the lab lists their figures."""
    ctrl = LabController(tiny_policy_dir, tmp_path / "lab", benchmark_dir=tmp_path / "none")
    try:
        rows = {(Path(e.policy).name, e.task, e.mode): e for e in ctrl.evaluations()}
        can = rows["move_can_pot", "move_can_pot", "easy"]
        shipped = json.loads((Path(__file__).resolve().parents[2] / "assets/checkpoints/move_can_pot/eval.json").read_text())["cells"][0]
        assert (can.method, can.episodes, can.success) == ("act2goal", 50, shipped["success"]) and 0 < can.success < 1
        assert can.ci_low < can.success < can.ci_high and can.suite.endswith("move_can_pot/eval.json")
    finally:
        ctrl.close()


def test_the_benchmark_plot_keeps_two_checkpoints_of_one_method_apart():
    from a2g_core.eval.plots import evaluation_plot
    from a2g_core.store.tables import Evaluation
    rows = [Evaluation(policy="assets/benchmark/paper", method="act2goal", task="move_can_pot", mode="easy", success=0.0),
            Evaluation(policy="assets/checkpoints/move_can_pot", method="act2goal", task="move_can_pot", mode="easy",
                       success=0.84),
            Evaluation(policy="assets/benchmark/paper", method="dp_gc", task="move_can_pot", mode="easy", success=0.0)]
    assert [t.name for t in evaluation_plot(rows).data] == ["act2goal (paper) · easy", "act2goal (move_can_pot) · easy",
                                                            "dp_gc · easy"]


def test_the_benchmark_plot_puts_the_papers_figures_beside_ours():
    """Hatched bars for the paper's Table 1 where it has the method, task and mode; none for a real-robot task."""
    from a2g_core.eval.plots import evaluation_plot
    from a2g_core.eval.reported import PAPER_SUCCESS
    from a2g_core.store.tables import Evaluation
    rows = [Evaluation(policy="p", method="act2goal", task="move_can_pot", mode="easy", success=0.84),
            Evaluation(policy="p", method="act2goal", task="plug_in", mode="easy", success=0.2),
            Evaluation(policy="q", method="dp_gc", task="pick_dual_bottles", mode="hard", success=0.0)]
    traces = {t.name: t for t in evaluation_plot(rows, reported=PAPER_SUCCESS).data}
    assert list(traces) == ["act2goal · easy", "dp_gc · hard", "act2goal, the paper's · easy", "dp_gc, the paper's · hard"]
    assert list(traces["act2goal, the paper's · easy"].x) == ["move_can_pot"]
    assert list(traces["act2goal, the paper's · easy"].y) == [0.62]
    assert list(traces["dp_gc, the paper's · hard"].y) == [0.0]


def test_expert_goals_follow_the_policys_goal_frame(tmp_path):
    """A policy trained on task-done frames (goal_frame="success") gets those as its expert goals, stored
    apart from the final-frame goals of the same seed."""
    import numpy as np
    from PIL import Image

    from a2g_core.sim.rollout import expert_goal
    from tests.conftest import _tiny_policy
    ctrl = LabController(_tiny_policy(tmp_path / "policy", goal_frame="success"), tmp_path / "lab")
    try:
        sid = ctrl.new_session()
        ctrl.goal_expert(sid, "place_empty_cup", "easy", 2)
        goal = ctrl.goal_library()[0]
        assert "expert place_empty_cup 2 (task done)" in goal["label"]
        want, _ = expert_goal("place_empty_cup", "easy", 2, 64, frame="success")
        final, _ = expert_goal("place_empty_cup", "easy", 2, 64)
        stored = np.asarray(Image.open(goal["images"]["head"]).convert("RGB"))
        np.testing.assert_array_equal(stored, want["head"])
        assert not np.array_equal(stored, final["head"])
    finally:
        ctrl.close()


def test_the_lab_switches_its_base_policy(tiny_policy_dir, tiny_dp_gc_dir, tmp_path):
    import pytest

    from a2g_core.store import crud
    from app.controller import LabError
    ctrl = LabController(tiny_policy_dir, tmp_path / "lab")
    try:
        sid = ctrl.new_session()
        ctrl.sim_reset(sid, "place_empty_cup", "easy", 3)
        ctrl.goal_expert(sid, "place_empty_cup", "easy", 3)
        ctrl.exec_step(sid, False)                         # a rollout of the first base is open
        assert ctrl.default_task == "place_empty_cup"         # a checkpoint that does not record its tasks
        assert ctrl.use_policy(str(tiny_dp_gc_dir)).endswith("dp_gc64 (no adapter), trained on tasks its checkpoint "
                                                              "does not record.")
        assert not ctrl.policy.config.use_world_model and ctrl.adapter is None
        ctrl.exec_step(sid, False)                         # the switch closed it; this chunk opens the next
        ctrl.exec_stop(sid)
        assert [r.policy for r in sorted(crud.list_rollouts(ctrl.engine), key=lambda r: r.id)] == [str(tiny_policy_dir), str(tiny_dp_gc_dir)]
        assert {str(tiny_policy_dir), str(tiny_dp_gc_dir)} <= set(ctrl.policies())

        with pytest.raises(LabError, match="is not a policy checkpoint"):
            ctrl.use_policy(str(tmp_path / "nothing"))
        adapter = tmp_path / "round_001"                   # a round of the first base, its adapter on the second
        adapter.mkdir()
        (adapter / "adapter_config.json").write_text("{}")
        r = crud.create_round(ctrl.engine, number=1, config={"run": "r"}, base=str(tiny_policy_dir), parent_adapter=None)
        crud.update_round(ctrl.engine, round_id=r.id, status="done", adapter=str(adapter), metrics={"success": 0.5})
        with pytest.raises(LabError, match="That adapter was trained on .*tiny64, not on .*dp_gc64"):
            ctrl.use_policy(str(tiny_dp_gc_dir), str(adapter))
        assert ctrl.adapters() == [] and ctrl.adapters(tiny_policy_dir)[0][1] == str(adapter)
        assert ctrl.policy_dir == tiny_dp_gc_dir           # nothing changed by the refusals
    finally:
        ctrl.close()


def test_a_reset_scene_plays_as_eval_plays_its_seed(tiny_policy_dir, tmp_path):
    """The lab's first chunk on seed S is `eval`'s: the policy's noise is reset to S with the scene."""
    import numpy as np

    from a2g_core.eval.policy_eval import load_policy, run_episode
    from a2g_core.sim import make_env
    from a2g_core.sim.rollout import expert_goal
    ctrl = LabController(tiny_policy_dir, tmp_path)
    try:
        sid = ctrl.new_session()
        ctrl.goal_expert(sid, "place_empty_cup", "easy", 5)
        ctrl.policy.reset(123)                       # whatever noise the lab's policy was at before
        ctrl.sim_reset(sid, "place_empty_cup", "easy", 5)
        ctrl.exec_step(sid, imagine=False)
        lab = np.array(ctrl._sessions[sid].rec.actions)
        e = len(lab)
        want = run_episode(load_policy(tiny_policy_dir), make_env("place_empty_cup", "easy", 64), 5,
                           expert_goal("place_empty_cup", "easy", 5, 64)[0], max_steps=e, record=True)["episode"]
        np.testing.assert_allclose(lab, want.actions, atol=1e-5)
    finally:
        ctrl.close()


def test_the_lab_opens_on_the_task_its_policy_was_trained_on(tiny_policy_dir, tmp_path):
    import shutil
    policy = tmp_path / "can64"
    shutil.copytree(tiny_policy_dir, policy)
    (policy / "policy.json").write_text('{"type": "act2goal", "trained_on": [["move_can_pot", "easy"], '
                                        '["move_can_pot", "hard"]]}')
    ctrl = LabController(policy, tmp_path / "lab")
    try:
        assert ctrl.default_task == "move_can_pot"
        assert ctrl.describe_policy() == f"{policy} (no adapter), trained on move_can_pot (easy, hard)"
    finally:
        ctrl.close()
