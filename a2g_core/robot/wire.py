"""The openpi wire format: msgpack, with numpy arrays as maps ``{__ndarray__, data, dtype, shape}``
and numpy scalars as ``{__npgeneric__, data, dtype}`` (byte-string keys). Never pickle: object,
void and complex dtypes are refused both ways."""
from __future__ import annotations

import msgpack
import numpy as np

_BAD_KINDS = ("V", "O", "c")


class WireError(ValueError):
    """A message that decodes but breaks the format's rules."""


def _default(obj):
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind in _BAD_KINDS:
        raise ValueError(f"Arrays of dtype {obj.dtype} cannot be sent.")
    if isinstance(obj, np.ndarray):
        return {b"__ndarray__": True, b"data": np.ascontiguousarray(obj).tobytes(), b"dtype": obj.dtype.str,
                b"shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"Cannot send a {type(obj).__name__}.")


def _hook(obj):
    if b"__ndarray__" in obj:
        dtype = np.dtype(obj[b"dtype"])
        if dtype.kind in _BAD_KINDS:
            raise WireError(f"Arrays of dtype {dtype} are not accepted.")
        shape = tuple(int(s) for s in obj[b"shape"])
        data = obj[b"data"]
        if len(data) != dtype.itemsize * int(np.prod(shape)):
            raise WireError(f"An array's data holds {len(data)} bytes, not the {dtype.itemsize * int(np.prod(shape))} "
                             f"its shape {shape} and dtype {dtype} need.")
        return np.frombuffer(data, dtype=dtype).reshape(shape)
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def packb(obj) -> bytes:
    return msgpack.packb(obj, default=_default, use_bin_type=True)


def unpackb(data: bytes):
    """Decode one message; any malformation is a ValueError with a readable reason."""
    try:
        return msgpack.unpackb(data, object_hook=_hook, raw=False, strict_map_key=False)
    except WireError:
        raise
    except Exception as e:                  # msgpack's own errors, bad dtype strings, bad shapes
        raise ValueError(f"The message is not valid msgpack-numpy ({type(e).__name__}: {e}).") from None
