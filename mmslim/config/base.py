"""What every config shares: named presets, validation against its allowed values at
construction, and a plain-dict round trip for checkpoints (dicts written before a field existed
still load)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

from mmslim.config.choices import PRESETS


def _check_preset(name: str) -> None:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


class _Config:
    """Shared helpers: presets by name, plain-dict round trip (for checkpoints)."""

    _presets: ClassVar[dict[str, dict[str, Any]]] = {}
    _choices: ClassVar[dict[str, tuple]] = {}  # field -> allowed values, checked at construction
    _legacy: ClassVar[dict[str, Any]] = {}  # field -> value meant by dicts written without it

    @classmethod
    def preset(cls, name: str, **overrides: Any):
        _check_preset(name)
        return cls(**{**cls._presets.get(name, {}), **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def same_as(self, d: dict[str, Any]) -> bool:
        """Whether a stored config dict describes this config (fields it lacks take defaults,
        so checkpoints written before a field was added still match)."""
        canon = lambda c: json.dumps(c.to_dict(), sort_keys=True)  # noqa: E731 (tuples -> lists)
        return canon(self) == canon(type(self).from_dict(d))

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        """The config a stored dict describes. A field the dict lacks takes its value from
        ``_legacy`` (what configs written before the field existed meant), else its default."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
        return cls(**{**{k: v for k, v in cls._legacy.items() if k not in d}, **d})

    def __post_init__(self) -> None:
        """Validate every field with a set of allowed values (``_choices``) at construction."""
        for name, allowed in self._choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{type(self).__name__}.{name} = {getattr(self, name)!r}; "
                    f"choose one of {', '.join(map(str, allowed))}"
                )
