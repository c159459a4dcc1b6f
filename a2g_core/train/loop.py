"""The training loop. It only ever calls ``model(batch) -> (loss, logs)``.

Runs as one process or under ``torchrun`` / ``accelerate launch`` (DDP: gloo on CPU, NCCL on GPU;
each rank samples its own batches, gradients are averaged). On a machine with CUDA the model and
every batch go to the GPU (``device()``); nothing else changes. Rank 0 writes ``log.jsonl`` and
checkpoints ``checkpoints/step_XXXXXXX/`` (network files from ``save_fn``, optimizer and RNG
state, ``trainer_state.json``); a checkpoint folder appears only when complete, and a restarted run
resumes from the newest one.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class TrainConfig:
    steps: int = 1000
    batch_size: int = 16
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup: int = 100
    grad_clip: float = 1.0
    log_every: int = 10
    ckpt_every: int = 200
    keep_checkpoints: int = 2
    seed: int = 0

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch size must be at least 1.")
        if not self.lr > 0:
            raise ValueError("The learning rate must be positive.")


def dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def maybe_init_distributed() -> tuple[int, int]:
    """Join the process group when launched by torchrun / accelerate (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist_info()


def device() -> torch.device:
    """This process's GPU (``LOCAL_RANK`` under torchrun) where CUDA is available, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def latest_checkpoint(out: Path) -> Path | None:
    ckpts = sorted((out / "checkpoints").glob("step_*[0-9]"))
    return ckpts[-1] if ckpts else None


def train(model: torch.nn.Module, sample: Callable[[np.random.Generator, int], dict], cfg: TrainConfig,
          out: str | Path, *, save_fn: Callable[[Path], None], params=None,
          progress: Callable[[int, int, dict], None] | None = None) -> dict:
    """Optimise ``params`` (default: all trainable parameters of ``model``) for ``cfg.steps`` steps.

    ``sample(rng, batch_size)`` returns a batch; ``save_fn(folder)`` writes the networks. Returns the
    last logged metrics.
    """
    out = Path(out)
    rank, world = maybe_init_distributed()
    torch.manual_seed(cfg.seed)
    dev = device()
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    model.to(dev)
    params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    if not params:
        raise ValueError("There is nothing to train: every parameter is frozen.")
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup)) *
                                              0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps)))
    rng = np.random.default_rng([cfg.seed, rank])
    step = 0
    resume = latest_checkpoint(out)
    if resume is not None:
        state = torch.load(resume / "trainer.pt", weights_only=True, map_location="cpu")   # loaders copy to dev
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        if dev.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], dev)
        saved = json.loads((resume / "trainer_state.json").read_text())
        step = saved["step"]
        if rank == 0:                      # rank 0's data stream continues exactly; others re-derive
            rng.bit_generator.state = saved["data_rng"]
        else:
            rng = np.random.default_rng([cfg.seed, rank, step])
    ddp = (torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev] if dev.type == "cuda" else None)
           if world > 1 else model)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1))
    model.train()
    logs: dict = {}
    t_last, n_last = time.perf_counter(), step
    while step < cfg.steps:
        batch = {k: v.to(dev, non_blocking=True) for k, v in sample(rng, cfg.batch_size).items()}
        loss, parts = ddp(batch)
        if not torch.isfinite(loss):
            raise RuntimeError(f"The loss became {loss.item()} at step {step}; lower the learning rate.")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        step += 1
        if step % cfg.log_every == 0 or step == cfg.steps:
            now = time.perf_counter()
            logs = {"step": step, "loss": loss.item(), **{k: float(v) for k, v in parts.items()},
                    "lr": sched.get_last_lr()[0],
                    "samples_per_s": (step - n_last) * cfg.batch_size * world / max(now - t_last, 1e-9),
                    "time": time.time()}
            t_last, n_last = now, step
            if rank == 0:
                with open(out / "log.jsonl", "a") as f:
                    f.write(json.dumps(logs) + "\n")
        if progress and rank == 0:
            progress(step, cfg.steps, logs)
        if rank == 0 and (step % cfg.ckpt_every == 0 or step == cfg.steps):
            _checkpoint(model, opt, sched, step, out, save_fn, cfg.keep_checkpoints, rng)
    if world > 1:
        dist.barrier()
    return logs


def _checkpoint(model, opt, sched, step: int, out: Path, save_fn, keep: int, rng: np.random.Generator) -> Path:
    final = out / "checkpoints" / f"step_{step:07d}"
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_fn(tmp)
    rngs = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():                    # the noise of a GPU run comes from the CUDA generator
        rngs["cuda_rng"] = torch.cuda.get_rng_state()
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                **rngs}, tmp / "trainer.pt")
    (tmp / "trainer_state.json").write_text(json.dumps({"step": step, "data_rng": rng.bit_generator.state}))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in sorted((out / "checkpoints").glob("step_*[0-9]"))[:-keep]:
        shutil.rmtree(old)
    return final
