"""Run by test_loop.py under torchrun: a few DDP steps on gloo, then each rank saves its weights."""
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from a2g_core.train.loop import TrainConfig, train
from tests.train.test_loop import Regressor, sample

out = Path(sys.argv[1])
torch.manual_seed(0)                                 # same initial weights on both ranks
model = Regressor()
init = {k: v.clone() for k, v in model.state_dict().items()}
cfg = TrainConfig(steps=5, batch_size=8, lr=1e-2, warmup=1, log_every=1, ckpt_every=100, seed=3)
seen = []


def recording(rng, b):
    batch = sample(rng, b)
    seen.append(batch["x"][0, 0].item())
    return batch


train(model, recording, cfg, out / "run", save_fn=lambda folder: None)
rank = dist.get_rank()
if rank == 0:
    torch.save(init, out / "init.pt")
torch.save(model.state_dict(), out / f"rank{rank}.pt")
(out / f"batch{rank}.json").write_text(json.dumps(seen))
dist.barrier()              # leave together: a rank that tears gloo down first can abort the other (SIGABRT)
dist.destroy_process_group()
