"""The benchmark's timing helpers (speed itself is measured by `bench-model`, never asserted in tests)."""
from a2g_core.eval.model_bench import _interleaved_medians_ms


def test_interleaved_medians_call_the_measures_in_turn():
    """A baseline and the thing it is the baseline of alternate within every repeat, so a drift in the
    machine's load reaches both alike."""
    calls = []
    medians = _interleaved_medians_ms([lambda: calls.append("a"), lambda: calls.append("b")], repeats=5, warmup=1)
    assert calls == ["a", "b"] * 6
    assert len(medians) == 2 and all(m >= 0 for m in medians)
