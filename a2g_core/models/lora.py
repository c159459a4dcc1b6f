"""LoRA, one entry point (STYLE rule 6): freeze the base, put low-rank adapters on the attention and
feed-forward layers of the world model and the action expert (never the VAE), return the wrapped
policy. Adapters save with peft's own ``save_pretrained`` and load with plain
``peft.PeftModel.from_pretrained`` or ``Act2GoalPolicy.from_pretrained(..., adapter=...)``."""
from __future__ import annotations

from pathlib import Path

import torch

# full-match regex over module names: both transformers' attention projections and MLPs
LORA_TARGETS = (r"(world_model|expert)\.blocks\.\d+\.((attn1|attn2)\.(to_q|to_k|to_v|to_out\.0)"
                r"|ff\.net\.(0\.proj|2))")


def check_adapter(adapter: str | Path) -> Path:
    """``adapter`` as a Path if it is a saved LoRA adapter folder; one sentence otherwise."""
    if not (Path(adapter) / "adapter_config.json").exists():
        raise ValueError(f"{adapter} is not a LoRA adapter folder (no adapter_config.json).")
    return Path(adapter)


def wrap_with_lora(policy: torch.nn.Module, *, rank: int = 64, alpha: float | None = None,
                   adapter: str | Path | None = None):
    """The policy with its base frozen and trainable LoRA adapters: new ones of ``rank``, or the
    saved ``adapter`` to continue training it."""
    from peft import LoraConfig, PeftModel, get_peft_model
    if rank < 1:
        raise ValueError("The LoRA rank must be at least 1.")
    if adapter is not None:
        return PeftModel.from_pretrained(policy, str(check_adapter(adapter)), is_trainable=True)
    config = LoraConfig(r=rank, lora_alpha=alpha or rank, lora_dropout=0.0, target_modules=LORA_TARGETS)
    return get_peft_model(policy, config)
