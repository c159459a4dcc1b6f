"""scripts/probe_object.py end to end at toy size: it fits its three readers and prints their errors."""
import importlib.util
import re
from pathlib import Path

from a2g_core.data.generate import generate
from tests.conftest import _tiny_policy

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "probe_object.py"


def test_probe_object_prints_each_reader(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("probe_object", SCRIPT)
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    policy = _tiny_policy(tmp_path / "policy", keypoints=4)
    generate(tmp_path / "train", tasks=["place_shoe"], modes=["easy"], episodes=6, resolution=64)
    generate(tmp_path / "test", tasks=["place_shoe"], modes=["easy"], episodes=2, seed_start=10000, resolution=64)
    assert probe.main(["--policy", str(policy), "--task", "place_shoe", "--train", str(tmp_path / "train"),
                       "--test", str(tmp_path / "test"), "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "6 training and 2 unseen episodes" in out
    for row in ("the training mean", "policy's keypoint token (ridge)", "head latents (probe network)",
                "head pixels (probe network)"):
        assert re.search(re.escape(row) + r"\s+\d+\.\d cm", out), (row, out)
