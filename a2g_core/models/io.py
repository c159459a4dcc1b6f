"""Save and load networks as ``config.json`` + ``model.safetensors`` (never pickles).

A network class declares ``config_class`` (a dataclass with ``to_dict``/``from_dict``) and takes the
config as its only constructor argument; loading checks the weights match that config exactly.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def save_network(model: torch.nn.Module, directory: str | Path) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``directory`` (atomically per file)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    for name, writer in (("model.safetensors", lambda p: save_file(state, p)),
                         ("config.json", lambda p: Path(p).write_text(json.dumps(model.config.to_dict(), indent=1)))):
        fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{name}.")
        os.close(fd)
        writer(tmp)
        os.replace(tmp, d / name)
    return d


def load_network(cls, directory: str | Path, *, config=None) -> torch.nn.Module:
    """Build ``cls`` from ``config.json`` (or ``config``) and load ``model.safetensors`` strictly."""
    d = Path(directory)
    if not (d / "model.safetensors").exists():
        raise ValueError(f"No checkpoint at {d}: model.safetensors is missing.")
    if config is None:
        if not (d / "config.json").exists():
            raise ValueError(f"No checkpoint at {d}: config.json is missing.")
        config = cls.config_class.from_dict(json.loads((d / "config.json").read_text()))
    model = cls(config)
    state = load_file(d / "model.safetensors")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    bad_shape = sorted(k for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or bad_shape:
        what = (f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}" if unexpected
                else f"shape mismatch in {bad_shape[:3]}")
        raise ValueError(f"The checkpoint at {d} does not match its config ({what}); was it saved by another "
                         f"version or preset?")
    model.load_state_dict(state, strict=True)
    return model
