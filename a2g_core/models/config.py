"""A base for model configs: dataclasses that validate themselves and round-trip through JSON."""
from __future__ import annotations

import dataclasses


class ConfigBase:
    def to_dict(self) -> dict:
        return {"_type": type(self).__name__, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict):
        d = dict(d)
        kind = d.pop("_type", cls.__name__)
        if kind != cls.__name__:
            raise ValueError(f"This config is a {kind}, not a {cls.__name__}; load it with the matching model.")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError(f"Unknown {cls.__name__} field(s) {unknown}; was it written by a newer version?")
        for k, v in d.items():       # JSON turns tuples into lists; nested configs into dicts
            ftype = str(fields[k].type)
            if isinstance(v, list) and "tuple" in ftype:
                d[k] = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        return cls(**d)
