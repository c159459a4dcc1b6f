"""scripts/probe_object.py end to end at toy size: for each target it fits its three readers and prints their errors,
and for the release yaw also the error of a policy's own pose readout (``train --pose-loss``)."""
import importlib.util
import re
from pathlib import Path

import pytest
import torch

from a2g_core.data.generate import generate
from tests.conftest import _tiny_policy

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "probe_object.py"


def _script():
    spec = importlib.util.spec_from_file_location("probe_object", SCRIPT)
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    return probe


@pytest.mark.parametrize("target, unit, pose", [("grasp", "cm", False), ("release-yaw", "deg", True)])
def test_probe_object_prints_each_reader(tmp_path, capsys, target, unit, pose):
    probe = _script()
    policy = _tiny_policy(tmp_path / "policy", keypoints=4, pose_loss_weight=float(pose))
    generate(tmp_path / "train", tasks=["place_shoe"], modes=["easy"], episodes=6, resolution=64)
    generate(tmp_path / "test", tasks=["place_shoe"], modes=["easy"], episodes=2, seed_start=10000, resolution=64)
    assert probe.main(["--policy", str(policy), "--task", "place_shoe", "--train", str(tmp_path / "train"),
                       "--test", str(tmp_path / "test"), "--steps", "3", "--target", target]) == 0
    out = capsys.readouterr().out
    assert "6 training and 2 unseen episodes" in out
    for row in ("the training mean", "policy's keypoint token (ridge)", "head latents (probe network)",
                "head pixels (probe network)") + ("policy's pose readout (no fitting)",) * pose:
        assert re.search(re.escape(row) + r"\s+\d+\.\d " + unit, out), (row, out)
    assert ("pose readout" in out) == pose


def test_yaw_error_is_the_angle_between_headings_modulo_a_half_turn():
    probe = _script()
    doubled = lambda deg: torch.stack([torch.cos(2 * torch.deg2rad(deg)), torch.sin(2 * torch.deg2rad(deg))], 1)
    true = torch.tensor([10.0, 10.0, 80.0, -85.0])
    pred = torch.tensor([190.0, 25.0, -95.0, 85.0])        # a half turn away, 15° off, 5° off (across ±90°), 10° off
    assert torch.allclose(probe.yaw_error(doubled(pred), doubled(true)), torch.tensor([0.0, 15.0, 5.0, 10.0]), atol=1e-3)
