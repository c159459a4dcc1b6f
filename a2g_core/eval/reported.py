"""The paper's reported success rates, to read ours beside (Act2Goal, Table 1: RoboTwin 2.0 in simulation).

Only the four RoboTwin tasks have simulation figures in the paper. Writing, plating and plug-in are
real-robot tasks there, so nothing of the paper's stands beside our simulated ones."""
from __future__ import annotations

_TABLE_1 = {  # method -> mode -> (move_can_pot, pick_dual_bottles, place_empty_cup, place_shoe)
    "act2goal": {"easy": (0.62, 0.80, 0.64, 0.52), "hard": (0.13, 0.43, 0.13, 0.15)},
    "dp_gc": {"easy": (0.18, 0.04, 0.03, 0.04), "hard": (0.00, 0.00, 0.00, 0.00)},
}
_TASKS = ("move_can_pot", "pick_dual_bottles", "place_empty_cup", "place_shoe")

PAPER_SUCCESS: dict[tuple[str, str, str], float] = {
    (method, task, mode): rate
    for method, modes in _TABLE_1.items() for mode, rates in modes.items() for task, rate in zip(_TASKS, rates)}
