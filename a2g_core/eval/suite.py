"""``benchmark --suite paper``: the paper's tables on our simulator, as one resumable command.

Tables (paper §5):
- ``success``: every task × mode × method (Act2Goal and the baselines whose checkpoints are given),
  success with a 95% Wilson interval (paper Tables 1–2);
- ``writing``: word length (short / medium / long) × seen / unseen words × Act2Goal with and without
  MSTH (paper Table 3);
- ``improve``: success per self-improvement round from all / successful / failed rollouts on hard
  tasks (paper Fig. 6), round 0 being the base policy.

Each finished cell is a line of ``OUT/cells.jsonl`` and a row of the store (``suite`` = ``paper:…``);
a rerun skips finished cells, and improvement runs continue from their last finished round. The
report is ``OUT/report.md``, ``OUT/results.csv`` and one plotly figure per table as ``.html`` and,
where a Chromium is installed, ``.png``.
"""
from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

WRITING_LENGTHS = ("short", "medium", "long")
WRITING_SPLITS = ("seen", "unseen")
IMPROVE_SOURCES = ("all", "success", "failure")


@dataclass
class Cell:
    table: str                 # success | writing | improve
    method: str                # act2goal | dp_gc | no_msth
    task: str
    mode: str
    detail: str = ""           # writing: "<length>/<split>"; improve: "<source>/round <n>"
    success: float | None = None
    ci95: list = field(default_factory=list)
    episodes: int = 0
    wins: list = field(default_factory=list)       # success per seed, in seed order (success and writing cells)

    @property
    def source_round(self) -> tuple[str, int]:
        """An improvement cell's rollout source and round number (``detail`` is "<source>/round <n>")."""
        source, n = self.detail.split("/round ")
        return source, int(n)

    @property
    def key(self) -> str:
        return "|".join((self.table, self.method, self.task, self.mode, self.detail))


@dataclass
class SuiteConfig:
    episodes: int = 50                                  # per success cell
    writing_episodes: int | None = None                 # per writing cell (default: episodes)
    tables: tuple = ("success", "writing", "improve")
    tasks: tuple = ()                                   # default: all seven
    modes: tuple = ("easy", "hard")
    writing_lengths: tuple = WRITING_LENGTHS
    writing_splits: tuple = WRITING_SPLITS
    improve_tasks: tuple = ("place_empty_cup", "move_can_pot")
    improve_sources: tuple = IMPROVE_SOURCES
    improve_rounds: int = 3
    improve_eval_episodes: int = 10
    improve: dict = field(default_factory=dict)         # further ImproveConfig fields
    max_steps: int | None = None                        # per episode; None: the task's own limit
    workers: int = 1

    @classmethod
    def quick(cls) -> "SuiteConfig":
        """Every table at toy size (a smoke test of the whole command, minutes on 2 cores)."""
        return cls(episodes=1, tasks=("place_empty_cup",), modes=("easy",), writing_lengths=("short",),
                   writing_splits=("seen",), improve_tasks=("place_empty_cup",), improve_sources=("all",),
                   improve_rounds=1, improve_eval_episodes=1, max_steps=12,
                   improve=dict(mode="easy", buffer_threshold=2, max_rollouts=1, epochs=1, rank=4, batch_size=2))


def _policies(paths: list[str | Path]) -> dict[str, Path]:
    """method name (from each checkpoint's own config) -> folder; one checkpoint per method."""
    from a2g_core.models.act2goal import Act2GoalPolicy
    out: dict[str, Path] = {}
    for p in paths:
        p = Path(p)
        if not (p / "policy.json").exists():
            raise ValueError(f"{p} is not a policy folder (no policy.json).")
        name = Act2GoalPolicy.from_pretrained(p).name
        if name in out:
            raise ValueError(f"Two checkpoints of the same method {name!r}: {out[name]} and {p}; give one per method.")
        out[name] = p
    return out


def plan(cfg: SuiteConfig, methods: list[str]) -> list[Cell]:
    from a2g_core.sim import TASKS
    cells = [Cell("success", m, t, mode) for m in methods for t in (cfg.tasks or tuple(TASKS)) for mode in cfg.modes]
    cells += [Cell("writing", m, "writing", "easy", f"{length}/{split}") for m in methods if m in ("act2goal", "no_msth")
              for length in cfg.writing_lengths for split in cfg.writing_splits]
    mode = cfg.improve.get("mode", "hard")
    cells += [Cell("improve", "act2goal", t, mode, f"{src}/round {n}") for t in cfg.improve_tasks
              for src in cfg.improve_sources for n in range(cfg.improve_rounds + 1)]
    unknown = set(cfg.tables) - {"success", "writing", "improve"}
    if unknown:
        raise ValueError(f"Unknown table(s) {sorted(unknown)}; choose from success, writing, improve.")
    return [c for c in cells if c.table in cfg.tables]


def run_suite(policies: list[str | Path], out: str | Path, cfg: SuiteConfig, *, db: str | Path,
              progress: Callable[[int, int, Cell], None] | None = None) -> list[Cell]:
    """Run every cell not yet in ``OUT/cells.jsonl``; write the report; return all cells."""
    from a2g_core.eval.policy_eval import evaluate
    from a2g_core.sim import font
    from a2g_core.store import crud, open_db
    paths = _policies(policies)
    if "improve" in cfg.tables and "act2goal" not in paths:
        raise ValueError("The improvement table improves Act2Goal: give an act2goal checkpoint with --policy "
                         "(or leave improve out of --tables).")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    engine = open_db(db)
    done_path = out / "cells.jsonl"
    done = {}
    if done_path.exists():
        for line in done_path.read_text().splitlines():
            c = Cell(**json.loads(line))
            done[c.key] = c
    todo = plan(cfg, list(paths))
    for i, cell in enumerate(todo, 1):
        if cell.key in done:
            if progress:
                progress(i, len(todo), done[cell.key])
            continue
        if cell.table == "improve":
            rep = _improve_cell(engine, paths["act2goal"], out, cell, cfg)
        else:
            words = None
            if cell.table == "writing":
                length, split = cell.detail.split("/")
                words = font.WORDS[split][length]
            episodes = cfg.writing_episodes or cfg.episodes if cell.table == "writing" else cfg.episodes
            rep = evaluate(paths[cell.method], task=cell.task, mode=cell.mode, episodes=episodes,
                           workers=cfg.workers, words=words, max_steps=cfg.max_steps)
            crud.add_evaluation(engine, policy=str(paths[cell.method]), method=cell.method, task=cell.task,
                                mode=cell.mode, episodes=rep["episodes"], success=rep["success"],
                                ci95=tuple(rep["ci95"]), suite=f"paper:{cell.table}" + (f":{cell.detail}"
                                                                                         if cell.detail else ""))
            cell.wins = [r["success"] for r in rep["results"]]
        cell.success, cell.ci95, cell.episodes = rep["success"], list(rep["ci95"]), rep["episodes"]
        with open(done_path, "a") as f:
            f.write(json.dumps(asdict(cell)) + "\n")
        done[cell.key] = cell
        if progress:
            progress(i, len(todo), cell)
    cells = [done[c.key] for c in todo]
    write_report(cells, out, methods=list(paths), cfg=cfg)
    return cells


def _improve_cell(engine, base: Path, out: Path, cell: Cell, cfg: SuiteConfig) -> dict:
    """Round 0 is the base policy's success; round n runs the run's rounds up to n (rounds already
    in the store are not run again)."""
    from a2g_core.train.improve import ImproveConfig, run_rounds, baseline_success, improvement_round
    source, n = cell.source_round
    icfg = ImproveConfig(**{"task": cell.task, "source": source, "eval_episodes": cfg.improve_eval_episodes,
                            "workers": cfg.workers, "max_steps": cfg.max_steps, **cfg.improve})
    run = out / "improve" / f"{cell.task}-{icfg.mode}-{source}"
    if n == 0:
        return baseline_success(engine, base, run, icfg)
    rounds = run_rounds(engine, run)
    while len(rounds) < n:
        try:
            improvement_round(engine, base, run, icfg)
        except ValueError as e:                      # e.g. success-only with no successes: the cell is empty
            return {"success": float("nan"), "ci95": [float("nan")] * 2, "episodes": 0, "error": str(e)}
        rounds = run_rounds(engine, run)
    m = rounds[n - 1].metrics
    return {"success": m.get("success", float("nan")), "ci95": m.get("ci95", [float("nan")] * 2),
            "episodes": m.get("eval_episodes", 0)}


# ----------------------------------------------------------------------------------------- report

def _fmt(c: Cell) -> str:
    if c.success is None or c.success != c.success:       # NaN: nothing to measure (e.g. an empty buffer)
        return "—"
    return f"{c.success:.2f} [{c.ci95[0]:.2f}, {c.ci95[1]:.2f}]"


def write_report(cells: list[Cell], out: Path, *, methods: list[str], cfg: SuiteConfig) -> Path:
    from a2g_core.eval.plots import evaluation_plot
    from a2g_core.eval.reported import PAPER_SUCCESS
    out = Path(out)
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["table", "method", "task", "mode", "detail", "success", "ci_low", "ci_high", "episodes"])
        for c in cells:
            w.writerow([c.table, c.method, c.task, c.mode, c.detail, c.success, *(c.ci95 or ["", ""]), c.episodes])
    missing = [m for m in ("act2goal", "dp_gc", "no_msth") if m not in methods]
    counts = {"success": f"{cfg.episodes} episodes per success cell",
              "writing": f"{cfg.writing_episodes or cfg.episodes} per writing cell",
              "improve": f"{cfg.improve_eval_episodes} per improvement round"}
    ran = [v for k, v in counts.items() if any(c.table == k for c in cells)]
    if cfg.max_steps:
        ran.append(f"at most {cfg.max_steps} steps per episode")
    lines = ["# Paper suite", "", "Success with 95% Wilson intervals; " + ", ".join(ran) + "."]
    if missing:
        lines += ["", f"Not run (no checkpoint given): {', '.join(missing)}."]
    figures = {}

    success = [c for c in cells if c.table == "success"]
    if success:
        rows = list(dict.fromkeys((c.task, c.mode) for c in success))
        lines += ["", "## Success per task and mode", "",
                  "| task | mode | " + " | ".join(methods) + " | the paper's Act2Goal / DP-GC (Table 1) |",
                  "|---|---|" + "---|" * (len(methods) + 1)]
        for task, mode in rows:
            by = {c.method: c for c in success if (c.task, c.mode) == (task, mode)}
            paper = [PAPER_SUCCESS.get((m, task, mode)) for m in ("act2goal", "dp_gc")]
            lines.append(f"| {task} | {mode} | " + " | ".join(_fmt(by[m]) if m in by else "—" for m in methods) + " | "
                         + (" / ".join(f"{r:.2f}" for r in paper) if None not in paper else "— (a real-robot task)")
                         + " |")
        figures["success"] = evaluation_plot([_row(c, c.task, c.mode) for c in success],
                                             "success per task, mode and method (95% Wilson intervals)",
                                             reported=PAPER_SUCCESS)

    writing = [c for c in cells if c.table == "writing"]
    if writing:
        ms = [m for m in methods if any(c.method == m for c in writing)]
        lines += ["", "## Writing: word length × seen/unseen words", "",
                  "| length | words | " + " | ".join(ms) + " |", "|---|---|" + "---|" * len(ms)]
        for detail in dict.fromkeys(c.detail for c in writing):
            by = {c.method: c for c in writing if c.detail == detail}
            length, split = detail.split("/")
            lines.append(f"| {length} | {split} | " + " | ".join(_fmt(by[m]) if m in by else "—" for m in ms) + " |")
        figures["writing"] = evaluation_plot([_row(c, *c.detail.split("/")) for c in writing],
                                             "writing: success per word length, seen / unseen words")

    improve = [c for c in cells if c.table == "improve"]
    if improve:
        rounds = sorted({c.source_round[1] for c in improve})
        lines += ["", "## Self-improvement: success per round (round 0 = base policy)", "",
                  "| task | mode | source | " + " | ".join(f"round {n}" for n in rounds) + " |",
                  "|---|---|---|" + "---|" * len(rounds)]
        runs = dict.fromkeys((c.task, c.mode, c.source_round[0]) for c in improve)
        for task, mode, src in runs:
            by = {c.source_round[1]: c for c in improve if (c.task, c.mode, c.source_round[0]) == (task, mode, src)}
            lines.append(f"| {task} | {mode} | {src} | " + " | ".join(_fmt(by[n]) if n in by else "—" for n in rounds)
                         + " |")
        figures["improve"] = _improve_plot(improve)

    lines += _paired_lines(cells)
    lines += ["", "Figures: " + ", ".join(f"[{k}]({k}.html)" for k in figures)]
    pngs = _save_figures(figures, out)
    if pngs:
        lines += [""] + [f"![{p.stem}]({p.name})" for p in pngs]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def _paired_lines(cells: list[Cell]) -> list[str]:
    """Act2Goal against each baseline on the same seeds (``compare``'s test), where both cells kept their seeds."""
    from a2g_core.eval.compare import format_p, paired
    by = {(c.table, c.method, c.task, c.mode, c.detail): c for c in cells if c.wins}
    rows = []
    for (table, method, task, mode, detail), base in by.items():
        ours = by.get((table, "act2goal", task, mode, detail))
        if method == "act2goal" or ours is None or len(ours.wins) != len(base.wins):
            continue
        r = paired(ours.wins, base.wins)
        rows.append(f"| {task} | {mode}{f' · {detail}' if detail else ''} | {method} | {r['only_a']} | {r['only_b']} | "
                    f"{r['difference']:+.2f} [{r['ci95'][0]:+.2f}, {r['ci95'][1]:+.2f}] | {format_p(r['p_value'])} |")
    if not rows:
        return []
    return ["", "## Act2Goal against each baseline, seed by seed", "",
            "The same seeds for every method: seeds where only one of the two succeeds decide the order "
            "(difference in success with Newcombe's 95% interval for paired rates; McNemar's exact p).", "",
            "| task | mode | baseline | only Act2Goal | only the baseline | Act2Goal − baseline | p |",
            "|---|---|---|---|---|---|---|", *rows]


def _row(c: Cell, x: str, group: str):
    lo, hi = (c.ci95 if c.ci95 and c.success == c.success and c.success is not None else [0.0, 0.0])
    return SimpleNamespace(method=c.method, task=x, mode=group, success=c.success if c.success == c.success else 0.0,
                           ci_low=lo, ci_high=hi)


def _improve_plot(cells: list[Cell]):
    from a2g_core.eval.plots import success_lines
    runs: dict[str, list] = {}
    for c in cells:
        src, n = c.source_round
        if c.success is not None and c.success == c.success:
            runs.setdefault(f"{c.task} · {c.mode} · {src}", []).append((n, c.success))
    return success_lines(runs, "success per improvement round (round 0 = base policy)")


def _save_figures(figures: dict, out: Path) -> list[Path]:
    """Each figure as standalone HTML, and as PNG through headless Chromium where one is installed."""
    for name, fig in figures.items():
        fig.write_html(out / f"{name}.html", include_plotlyjs="directory", full_html=True)   # one plotly.min.js beside them
    chromium = Path("/usr/bin/chromium")
    if not figures or not chromium.exists():
        return []
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return []
    pngs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 900, "height": 400})
        for name in figures:
            page.goto((out / f"{name}.html").resolve().as_uri())
            page.wait_for_selector(".main-svg")
            pngs.append(out / f"{name}.png")
            page.screenshot(path=str(pngs[-1]), full_page=True)
        browser.close()
    return pngs
