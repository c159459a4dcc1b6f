import fcntl
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from a2g_core.cli import build_parser, main

COMMANDS = ["gen-data", "bench-sim", "sim-strip", "goal", "train", "cache-latents", "eval", "bench-model", "plot-log",
            "improve", "serve", "robot-run", "bench-bridge", "vae-strip", "export-lerobot", "import-lerobot", "benchmark",
            "diagnose", "compare", "imagine-strip"]


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "a2g_core", "--help"], capture_output=True, text=True, check=True).stdout
    for c in COMMANDS:
        assert c in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([command, "--help"])
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_user_errors_are_one_sentence(capsys, tmp_path):
    assert main(["gen-data", "--task", "juggling", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Unknown task 'juggling'") and "\n" not in err
    assert main(["train", "--stage", "1", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                 "--state-noise", "0.5", "--state-noise-dims", "x,y"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --state-noise-dims takes comma-separated whole numbers") and "\n" not in err
    assert main(["train", "--stage", "2", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                 "--init", str(tmp_path), "--keypoint-contrast"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --keypoint-contrast is for a new policy") and "\n" not in err
    assert main(["gen-data", "--task", "plug_in", "--handover-from", str(tmp_path), "--handover-steps", "40",
                 "--out", str(tmp_path / "ds")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --handover-steps is FIRST,LAST") and "\n" not in err


def test_gen_data_goal_vae_strip_and_cache_latents(tmp_path, capsys):
    assert main(["gen-data", "--task", "move_can_pot", "--mode", "easy", "--episodes", "1", "--resolution", "96",
                 "--out", str(tmp_path / "ds")]) == 0
    assert "wrote 1 episodes" in capsys.readouterr().out
    from a2g_core.models.io import save_network
    from a2g_core.models.vae import VideoVAE
    from tests.models.conftest import TINY_VAE
    save_network(VideoVAE(TINY_VAE.__class__(resolution=64, block_out_channels=(8, 16), norm_num_groups=8,
                                             latent_channels=4)), tmp_path / "vae")
    assert main(["vae-strip", "--vae", f"toy={tmp_path / 'vae'}", "--data", str(tmp_path / "ds"),
                 "--out", str(tmp_path / "v.png")]) == 0
    from PIL import Image
    # frames | reconstructions, 4 frames each, at the dataset's 96 px though the VAE was saved for 64
    assert Image.open(tmp_path / "v.png").size == (2 * 4 * 96 * 3, 96 * 3)
    psnr = float(capsys.readouterr().out.split("toy: PSNR ")[1].split(" dB")[0])
    assert 0 < psnr < 30                                                          # an untrained VAE: poor but finite
    cache = ["cache-latents", "--vae", str(tmp_path / "vae"), "--data", str(tmp_path / "ds")]
    assert main(cache) == 0
    (cached,) = (tmp_path / "ds" / "latents").glob("*/*/head.npy")
    shutil.copytree(tmp_path / "ds", tmp_path / "copy", copy_function=os.link)      # as `cp -al` copies a dataset
    root = cached.parent.parent
    held = os.open(root, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        (root / "in-progress.tmp").mkdir()
        assert main(cache) == 0                           # a complete cache is only read: no lock needed
        shutil.rmtree(cached.parent)
        assert main(cache) == 2                           # another writer holds it: refused, nothing touched
        assert "Another process is writing the latent cache" in capsys.readouterr().err
        assert (root / "in-progress.tmp").exists() and not cached.exists()
        shutil.rmtree(tmp_path / "copy" / cached.relative_to(tmp_path / "ds").parent)
        assert main(cache[:-1] + [str(tmp_path / "copy")]) == 0            # a hard-linked copy has a lock of its own
    finally:
        os.close(held)
    assert main(cache) == 0 and not (root / "in-progress.tmp").exists()
    assert np.load(cached).shape[1:] == (4, 48, 48)                # 96 px through the VAE's one 2x downsampling
    assert main(["vae-strip", "--vae", "nothing", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "w.png")]) == 2
    assert main(["goal", "--task", "writing", "--word", "ok", "--resolution", "64", "--out", str(tmp_path / "g")]) == 0
    assert (tmp_path / "g" / "goal_head.png").exists() and (tmp_path / "g" / "goal_wrist.png").exists()


def test_plot_log(tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(f'{{"step": {i}, "loss": {1 / i}, "loss_action": {2 / i}}}' for i in range(1, 20)))
    assert main(["plot-log", "--log", f"run={log}", "--out", str(tmp_path / "p.png")]) == 0
    from PIL import Image
    assert Image.open(tmp_path / "p.png").size == (900, 300)
    assert main(["plot-log", "--log", str(log), "--out", str(tmp_path / "q.png")]) == 2


def test_imagine_strip(tmp_path, capsys, tiny_policy_dir, tiny_dp_gc_dir):
    """Real frames at the MSTH offsets above what the policy imagines at them, with its PSNR against them."""
    assert main(["gen-data", "--task", "place_empty_cup", "--mode", "easy", "--episodes", "1", "--resolution", "64",
                 "--out", str(tmp_path / "ds")]) == 0
    out = tmp_path / "i.png"
    assert main(["imagine-strip", "--policy", f"toy={tiny_policy_dir}", "--data", str(tmp_path / "ds"), "--at", "0.5",
                 "--out", str(out)]) == 0
    psnr = float(capsys.readouterr().out.split("toy: PSNR ")[1].split(" dB")[0])
    assert 0 < psnr < 30                                               # an untrained world model: poor but finite
    from PIL import Image

    from a2g_core import msth
    from a2g_core.data.episodes import EpisodeStore
    from a2g_core.models.act2goal import Act2GoalPolicy
    cfg = Act2GoalPolicy.from_pretrained(tiny_policy_dir).config
    offsets = msth.frame_offsets(cfg.msth, cfg.inference_horizon)[: cfg.num_future_frames]
    ep = EpisodeStore(tmp_path / "ds")[0]
    t, head = int(0.5 * ep.length), ep.frames("head")
    img = np.asarray(Image.open(out))
    assert img.shape == (2 * 64 * 3, 150 + (len(offsets) + 2) * 64 * 3, 3)      # real | imagined; now, offsets, goal
    real = img[: 64 * 3: 3, 150::3]                                    # the real row back at 64 px
    want = [t] + [min(t + int(o), ep.length) for o in offsets] + [ep.length]
    np.testing.assert_array_equal(real, np.concatenate([head[i] for i in want], axis=1))
    assert main(["imagine-strip", "--policy", f"b={tiny_dp_gc_dir}", "--data", str(tmp_path / "ds"),
                 "--out", str(out)]) == 2
    assert "has no world model (DP-GC), so it cannot imagine" in capsys.readouterr().err
    assert main(["imagine-strip", "--policy", f"toy={tiny_policy_dir}", "--data", str(tmp_path / "ds"), "--at", "1",
                 "--out", str(out)]) == 2
    assert "from a point in [0, 1)" in capsys.readouterr().err

