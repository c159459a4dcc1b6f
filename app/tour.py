"""The whole loop in a real browser: goal → imagine → execute → review → label → improve, with a
screenshot of every tab. The browser test and ``scripts/screenshots.py`` both run it.

Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright (never a downloaded browser)."""
from __future__ import annotations

import shutil
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


def launch(playwright):
    exe = chromium_path()
    if exe is None:
        raise RuntimeError("Chromium is not installed (apt-get install chromium).")
    return playwright.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _wait_text(page, text: str, timeout_s: float) -> None:
    page.get_by_text(text).first.wait_for(timeout=timeout_s * 1000)


def run_tour(url: str, out: str | Path, *, seed: int = 10_000, improve: dict | None = None,
             improve_timeout_s: float = 600, width: int = 1400) -> list[Path]:
    """Drive the lab at ``url``; save one screenshot per step in ``out``; return their paths."""
    from playwright.sync_api import sync_playwright
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []

    def shot(name: str):
        path = out / f"{len(shots) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        shots.append(path)

    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(url)
        _tab(page, "Execute")
        _wait_text(page, "step 0/", 120)                 # the page has loaded its own simulator

        # Goals: the expert's goal for the scene
        _tab(page, "Goals")
        page.locator("#goal-seed input").fill(str(seed))
        page.get_by_role("button", name="Use expert goal").click()
        _wait_text(page, "Current goal:", 120)
        shot("goals")

        # Execute: reset the same scene (seed), so the goal belongs to it
        _tab(page, "Execute")
        page.locator("#exec-seed input").fill(str(seed))
        page.get_by_role("button", name="Reset scene").click()
        _wait_text(page, f"/ seed {seed} · step 0/", 60)

        # Imagine
        _tab(page, "Imagine")
        page.get_by_role("button", name="Imagine", exact=True).click()
        _wait_text(page, "proximal +", 120)
        page.locator(".js-plotly-plot svg").first.wait_for(timeout=60_000)   # the timeline draws after the text
        shot("imagine")

        # Execute one chunk, then stop: the rollout is recorded
        _tab(page, "Execute")
        page.get_by_role("button", name="Step (one chunk)").click()
        _wait_text(page, "recording rollout", 120)
        shot("execute")
        page.get_by_role("button", name="Stop", exact=True).click()
        _wait_text(page, "recorded", 60)

        # Review and label
        _tab(page, "Review")
        page.get_by_role("button", name="Refresh list").click()
        _wait_text(page, "chunks · policy", 120)
        page.get_by_label("failure").check()
        page.get_by_label("note").fill("stopped after one chunk")
        page.get_by_role("button", name="Save label").click()
        _wait_text(page, "labelled failure", 60)
        shot("review")

        # Improve: one round, watched to the end
        _tab(page, "Improve")
        for label, value in (improve or {}).items():
            page.get_by_label(label, exact=True).fill(str(value))
        page.get_by_role("button", name="Start improvement round").click()
        _wait_text(page, "running…", 60)
        page.get_by_text("finished").first.wait_for(timeout=improve_timeout_s * 1000)
        shot("improve")

        _tab(page, "Benchmarks")
        page.get_by_role("button", name="Refresh").click()
        page.wait_for_timeout(1500)
        shot("benchmarks")
        browser.close()
    return shots
