"""The real-browser smoke test: Debian's Chromium, headless, driven by Playwright through the whole
loop. Screenshots are kept in .cache/test-artifacts/browser/ for a human to look at."""
import socket
from pathlib import Path

import pytest

from app.tour import chromium_path, run_tour

ARTIFACTS = Path(".cache/test-artifacts/browser")


@pytest.fixture(scope="module")
def lab_url(tmp_path_factory, tiny_policy_dir):
    from app.controller import LabController
    from app.ui import build_app
    mp = pytest.MonkeyPatch()
    mp.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
    ctrl = LabController(tiny_policy_dir, tmp_path_factory.mktemp("lab"))
    demo = build_app(ctrl)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", ctrl
    demo.close()
    ctrl.close()
    mp.undo()


@pytest.mark.skipif(chromium_path() is None,
                    reason="SKIPPED LOUDLY: Debian's chromium is not installed and `make test` could not install it "
                           "(needs root + apt); the browser test did not run.")
def test_whole_loop_in_a_real_browser(lab_url):
    url, ctrl = lab_url
    shots = run_tour(url, ARTIFACTS, seed=3, improve={"buffer (transitions)": 5, "epochs": 1, "LoRA rank": 4,
                                                      "evaluation episodes": 1, "max rollouts per round": 1},
                     improve_timeout_s=300)
    assert [s.name.split("-", 1)[1] for s in shots] == ["goals.png", "imagine.png", "execute.png", "review.png",
                                                        "improve.png", "benchmarks.png"]
    assert all(s.stat().st_size > 10_000 for s in shots)
    (r,) = ctrl.rollouts(label="failure")
    assert r.note == "the arm stopped short of the cup"
    assert [x.status for x in ctrl.improve_status()["rounds"]] == ["done"]
