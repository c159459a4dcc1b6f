import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from a2g_core.train.loop import TrainConfig, train

WORKER = Path(__file__).with_name("ddp_worker.py")


class Regressor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

    def forward(self, batch):
        loss = torch.nn.functional.mse_loss(self.net(batch["x"]).squeeze(-1), batch["y"])
        return loss, {"loss_fit": loss.detach()}


def sample(rng, b):
    x = rng.normal(size=(b, 4)).astype(np.float32)
    return {"x": torch.from_numpy(x), "y": torch.from_numpy(np.sin(x.sum(1)).astype(np.float32))}


def save(model):
    return lambda folder: torch.save(model.state_dict(), folder / "weights.pt")


CFG = TrainConfig(steps=8, batch_size=8, lr=1e-2, warmup=2, log_every=1, ckpt_every=3, seed=7)


def test_logs_and_checkpoints(tmp_path):
    torch.manual_seed(0)
    m = Regressor()
    logs = train(m, sample, CFG, tmp_path, save_fn=save(m))
    lines = [json.loads(s) for s in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(1, 9)) and logs["step"] == 8
    assert {"loss", "loss_fit", "lr", "samples_per_s"} <= set(lines[0])
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_0000006", "step_0000008"]


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path):
    torch.manual_seed(0)
    ref = Regressor()
    train(ref, sample, CFG, tmp_path / "ref", save_fn=save(ref))

    torch.manual_seed(0)
    m = Regressor()
    calls = {"n": 0}

    def dying(rng, b):
        calls["n"] += 1
        if calls["n"] == 5:                  # killed during step 5; the last checkpoint is step 3
            raise KeyboardInterrupt
        return sample(rng, b)

    with pytest.raises(KeyboardInterrupt):
        train(m, dying, CFG, tmp_path / "run", save_fn=save(m))
    (tmp_path / "run" / "checkpoints" / "step_0000009.tmp").mkdir()     # a half-written checkpoint is ignored
    torch.manual_seed(123)
    fresh = Regressor()
    train(fresh, sample, CFG, tmp_path / "run", save_fn=save(fresh))
    for a, b in zip(ref.state_dict().values(), fresh.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_nothing_to_train(tmp_path):
    m = Regressor().requires_grad_(False)
    with pytest.raises(ValueError, match="nothing to train"):
        train(m, sample, CFG, tmp_path, save_fn=save(m))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes_agree(tmp_path):
    """torchrun, 2 processes, gloo: each rank samples other data, yet the replicas end identical."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
                    f"--master_port={_free_port()}", str(WORKER), str(tmp_path)], check=True, env=env, timeout=300)
    w0, w1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    init = torch.load(tmp_path / "init.pt", weights_only=True)
    for k in w0:
        torch.testing.assert_close(w0[k], w1[k], rtol=0, atol=0)
    assert any(not torch.equal(w0[k], init[k]) for k in w0)
    batches = [json.loads((tmp_path / f"batch{r}.json").read_text()) for r in (0, 1)]
    assert batches[0] != batches[1]                  # the ranks really saw different data
