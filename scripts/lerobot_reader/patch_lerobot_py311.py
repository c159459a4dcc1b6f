"""Make lerobot 0.6.1 (Requires-Python >=3.12) importable on Python 3.11 + CPU torch 2.13.0.

lerobot 0.6.1 uses PEP 695 syntax (``type X = ...`` and ``class C[T]`` /
``def f[T]``) in exactly 5 files; everything else is 3.11-compatible. This
rewrites those 8 spots into the equivalent TypeVar/Generic/plain-alias form.

Also patches torchvision 0.28.0 (PyPI build, linked against CUDA libtorch, so its
_C.so cannot load beside the CPU torch 2.13.0 wheel): its _meta_registrations.py
registers fake kernels for torchvision::nms/qnms without checking that the ops
exist, which makes `import torchvision` fail. The patch guards those two
registrations the same way torchvision already guards all the others
(`extension._has_ops()`). torchvision's pure-Python parts (transforms.v2, which
lerobot.configs -> lerobot.transforms imports) then work; its C ops
(nms, roi_align, io.decode_image/encode_jpeg) remain unavailable.

Idempotent. Usage: <venv>/bin/python patch_lerobot_py311.py
"""
import sys
from pathlib import Path

import importlib.util


def pkg_dir(name):
    return Path(importlib.util.find_spec(name).submodule_search_locations[0])


EDITS = {
    "torchvision:_meta_registrations.py": [
        ('@torch.library.register_fake("torchvision::nms")',
         '@(torch.library.register_fake("torchvision::nms") if torchvision.extension._has_ops() else (lambda f: f))'),
        ('@torch.library.register_fake("torchvision::qnms")',
         '@(torch.library.register_fake("torchvision::qnms") if torchvision.extension._has_ops() else (lambda f: f))'),
    ],
    "datasets/aggregate.py": [
        ("type FeatureDict = ", "FeatureDict = "),
        ("type ChunkFile = ", "ChunkFile = "),
        ("type VideoIndexState = ", "VideoIndexState = "),
    ],
    "motors/motors_bus.py": [
        ("type NameOrID = ", "NameOrID = "),
        ("type Value = ", "Value = "),
    ],
    "datasets/streaming_dataset.py": [
        ("class Backtrackable[T]:",
         "from typing import Generic as _Generic, TypeVar as _TypeVar  # py311 patch\n"
         "T = _TypeVar(\"T\")\n\n\nclass Backtrackable(_Generic[T]):"),
    ],
    "processor/pipeline.py": [
        ("class DataProcessorPipeline[TInput, TOutput](HubMixin):",
         "class DataProcessorPipeline(HubMixin, __import__(\"typing\").Generic[TInput, TOutput]):  # py311 patch"),
    ],
    "utils/io_utils.py": [
        ("def deserialize_json_into_object[T: JsonLike](fpath: Path, obj: T) -> T:",
         "from typing import TypeVar as _TypeVar  # py311 patch\n"
         "T = _TypeVar(\"T\", bound=JsonLike)\n\n\n"
         "def deserialize_json_into_object(fpath: Path, obj: T) -> T:"),
    ],
}

for rel, edits in EDITS.items():
    pkg, _, rel = rel.rpartition(":")
    p = pkg_dir(pkg or "lerobot") / rel
    src = p.read_text(encoding="utf-8")
    new = src
    for old, rep in edits:
        if old in new:
            new = new.replace(old, rep, 1)
            print(f"patched {rel}: {old!r}")
        elif rep.splitlines()[-1].split("  #")[0] in new:
            print(f"already patched {rel}: {old!r}")
        else:
            sys.exit(f"pattern not found in {rel}: {old!r}")
    if new != src:
        p.write_text(new, encoding="utf-8")
        for c in (p.parent / "__pycache__").glob(p.stem + ".*.pyc"):
            c.unlink()
