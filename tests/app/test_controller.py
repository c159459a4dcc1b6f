import threading

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
    finally:
        keep_alive.set()
        holder.join()
        ctrl.close()


def test_missing_checkpoint_is_one_sentence(tmp_path):
    import pytest

    from app.controller import LabError
    with pytest.raises(LabError, match="No policy checkpoint at"):
        LabController(tmp_path / "nothing", tmp_path)
