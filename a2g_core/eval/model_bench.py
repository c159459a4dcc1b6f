"""Model benchmark: chunk latency, imagine latency, training step time, parameters and FLOPs.

Latencies are medians over repeated runs after a warm-up, and DP-GC is measured in the same run so
the ratio is fair on a shared, noisy machine. Weights are random: speed does not depend on them.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from a2g_core.models.act2goal import PRESETS, Act2GoalPolicy
from a2g_core.models.vae import VAEConfig, VideoVAE


def _policy(preset: str, **kw) -> Act2GoalPolicy:
    """The preset as training builds it: on the default VAE's latents (see ``fit_to_vae``)."""
    vae = VideoVAE(VAEConfig(resolution=PRESETS[preset].resolution)).requires_grad_(False)
    return Act2GoalPolicy(PRESETS[preset].with_(**kw).fit_to_vae(vae.config), vae=vae).eval()


def _inputs(cfg, b: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    img = lambda: rng.integers(0, 255, (b, cfg.resolution, cfg.resolution, 3), dtype=np.uint8)
    return {"images": {v: img() for v in cfg.views}, "state": rng.normal(size=(b, cfg.state_dim)).astype(np.float32)}, \
        {v: img() for v in cfg.views}


def _median_ms(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    return _interleaved_medians_ms([fn], repeats, warmup)[0]


def _interleaved_medians_ms(fns: list[Callable[[], object]], repeats: int, warmup: int = 2) -> list[float]:
    """Median ms of each of ``fns``, called in turn within every repeat: a drift in the machine's load
    then reaches all of them alike, which back-to-back blocks of calls do not (a baseline measured a
    minute later on a shared machine can come out slower than the thing it is the baseline of)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return [1000 * statistics.median(ts) for ts in times]


def _batch(cfg, b: int):
    v, f, h = len(cfg.views), cfg.msth.num_frames, cfg.msth.num_actions
    c, s = cfg.latent_channels, cfg.latent_size
    return {"obs_latents": torch.randn(b, v, c, s, s), "goal_latents": torch.randn(b, v, c, s, s),
            "future_latents": torch.randn(b, v, f, c, s, s), "frame_offsets": torch.randint(1, 100, (b, f)),
            "state": torch.randn(b, 5), "actions": torch.randn(b, h, 5), "action_offsets": torch.randint(1, 100, (b, h))}


def train_step_s(policy, stage: int, batch_size: int, repeats: int) -> float:
    policy.train()
    policy.stage = stage
    opt = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-4)
    batch = _batch(policy.config, batch_size)

    def step():
        loss, _ = policy(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    s = _median_ms(step, repeats, warmup=1) / 1000
    policy.eval()
    return s


def chunk_flops(policy) -> int:
    """FLOPs of one chunk at control time: the goal's latents are already cached."""
    obs, goal = _inputs(policy.config)
    policy.predict_chunk(obs, goal)
    with FlopCounterMode(display=False) as fc:
        policy.predict_chunk(obs, goal)
    return int(fc.get_total_flops())


def run_model_bench(*, repeats: int = 20, presets=("tiny",), log: Callable[[str], None] = print) -> dict:
    torch.manual_seed(0)
    report: dict = {"threads": torch.get_num_threads(), "presets": {}}
    tiny = _policy("tiny")
    dpgc = _policy("tiny", use_world_model=False, use_msth=False)
    obs, goal = _inputs(tiny.config)
    chunk = _median_ms(lambda: tiny.predict_action_chunk(obs, goal), repeats)
    chunk_dp = _median_ms(lambda: dpgc.predict_action_chunk(obs, goal), repeats)
    imagine = _median_ms(lambda: tiny.imagine(obs, goal), max(3, repeats // 4))
    s1 = train_step_s(tiny, 1, 16, max(3, repeats // 4))
    s2 = train_step_s(tiny, 2, 16, max(3, repeats // 4))
    # the same two policies compiled for control (torch.compile), measured after the eager ones
    started = time.perf_counter()
    for p in (tiny, dpgc):
        p.compile_for_control().predict_action_chunk(obs, goal)
    compile_s = (time.perf_counter() - started) / 2
    fast = _median_ms(lambda: tiny.predict_action_chunk(obs, goal), repeats)
    fast_dp = _median_ms(lambda: dpgc.predict_action_chunk(obs, goal), repeats)
    report["tiny"] = {"chunk_ms": chunk, "dp_gc_chunk_ms": chunk_dp, "chunk_ratio_vs_dp_gc": chunk / chunk_dp,
                      "chunk_ms_compiled": fast, "dp_gc_chunk_ms_compiled": fast_dp,
                      "chunk_ratio_vs_dp_gc_compiled": fast / fast_dp, "compile_s": compile_s,
                      "imagine_ms": imagine, "stage1_step_s_b16": s1, "stage2_step_s_b16": s2,
                      "stage1_samples_per_s": 16 / s1, "stage2_samples_per_s": 16 / s2}
    log(f"torch threads: {report['threads']}; medians of {repeats} runs (tiny preset, batch 1, both views)")
    log("| measure | value | target |")
    log("|---|---|---|")
    log(f"| predict_action_chunk, compiled for control | {fast:.1f} ms (eager {chunk:.1f} ms; compiling took "
        f"{compile_s:.0f} s) | ≤ 50 ms |")
    log(f"| DP-GC predict_action_chunk, compiled (same run) | {fast_dp:.1f} ms (Act2Goal / DP-GC = {fast / fast_dp:.2f}; "
        f"eager {chunk_dp:.1f} ms, {chunk / chunk_dp:.2f}) | |")
    log(f"| imagine ({tiny.config.msth.num_frames} frames × {len(tiny.config.views)} views, {tiny.config.imagine_steps} Euler steps) | {imagine:.0f} ms | ≤ 1 s |")
    log(f"| stage-1 step, batch 16 | {s1:.3f} s ({16 / s1:.1f} samples/s) | |")
    log(f"| stage-2 step, batch 16 | {s2:.3f} s ({16 / s2:.1f} samples/s) | ≤ 0.5 s |")
    log("\n| preset | world model params | action expert params | VAE params | FLOPs per chunk |")
    log("|---|---|---|---|---|")
    for name in presets:
        p = _policy(name)          # uncompiled: the FLOP counter reads eager modules
        count = lambda m: sum(x.numel() for x in m.parameters())
        row = {"world_model_params": count(p.world_model), "expert_params": count(p.expert),
               "vae_params": count(p.vae), "flops_per_chunk": chunk_flops(p)}
        report["presets"][name] = row
        log(f"| {name} | {row['world_model_params'] / 1e6:.2f} M | {row['expert_params'] / 1e6:.2f} M | "
            f"{row['vae_params'] / 1e6:.2f} M | {row['flops_per_chunk'] / 1e9:.2f} GFLOP |")
    return report
