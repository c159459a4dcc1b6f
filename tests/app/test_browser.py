"""The real-browser smoke test: Debian's Chromium, headless, driven by Playwright through the whole
loop. Screenshots are kept in .cache/test-artifacts/browser/ for a human to look at."""
from pathlib import Path

import pytest

from app.tour import chromium_path, run_tour

ARTIFACTS = Path(".cache/test-artifacts/browser")


@pytest.mark.skipif(chromium_path() is None,
                    reason="SKIPPED LOUDLY: Debian's chromium is not installed and `make test` could not install it "
                           "(needs root + apt); the browser test did not run.")
def test_whole_loop_in_a_real_browser(lab):
    ctrl, url, _ = lab
    shots = run_tour(url, ARTIFACTS, seed=3, improve={"buffer (transitions)": 5, "epochs": 1, "LoRA rank": 4,
                                                      "evaluation episodes": 1, "max rollouts per round": 1},
                     improve_timeout_s=300)
    assert [s.name.split("-", 1)[1] for s in shots] == ["goals.png", "imagine.png", "execute.png", "review.png",
                                                        "improve.png", "benchmarks.png"]
    assert all(s.stat().st_size > 10_000 for s in shots)
    (r,) = ctrl.rollouts(label="failure")
    assert r.note == "stopped after one chunk"
    assert [x.status for x in ctrl.improve_status()["rounds"]] == ["done"]
