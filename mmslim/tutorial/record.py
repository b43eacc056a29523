"""Recording a notebook's key numbers so that a headless run can check them.

A notebook calls ``record("val_ssim", 0.83)``. When the environment variable ``MMSLIM_RECORD``
names a file (the papermill runner in :mod:`mmslim.tutorial.runner` sets it, one file per notebook),
the value is added to that JSON file, an object ``{name: value}``; recording a name again
replaces its value. Without the variable nothing is written. Either way the value is printed and
returned, so a notebook reads the same interactively and headlessly.

Only scalars are recorded: ``float``, ``int``, ``str``, ``bool`` (numpy scalars and one-element
tensors are converted). Non-finite floats are kept (JSON ``NaN``/``Infinity``), so that a check
can see them and fail, rather than the notebook failing while recording.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

ENV_VAR = "MMSLIM_RECORD"
Scalar = float | int | str | bool


def _scalar(name: str, value) -> Scalar:
    if isinstance(value, bool | int | float | str):
        return value
    size = getattr(value, "size", None)  # numpy: an attribute; torch: a method
    size = value.numel() if hasattr(value, "numel") else size
    if size == 1 and hasattr(value, "item"):  # numpy scalar or array, tensor, of one element
        return value.item()
    raise TypeError(
        f"record({name!r}, ...) takes a float, int, str or bool, got {type(value).__name__}; "
        "record summary numbers, not arrays."
    )


def record(name: str, value) -> Scalar:
    """Record ``value`` under ``name`` (see the module doc) and return it as a plain scalar."""
    if not isinstance(name, str) or not name:
        raise ValueError("record() needs a non-empty name")
    value = _scalar(name, value)
    print(f"recorded {name} = {value!r}")
    path = os.environ.get(ENV_VAR)
    if path:
        path = Path(path)
        values = read_records(path) if path.exists() else {}
        values[name] = value
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file, then rename: a killed kernel leaves the old file intact.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(values, f, indent=1)
        os.replace(tmp, path)
    return value


def read_records(path: str | Path) -> dict[str, Scalar]:
    """The ``{name: value}`` recorded in ``path``; ``{}`` when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return {}
    with open(path) as f:
        values = json.load(f)
    if not isinstance(values, dict):
        raise ValueError(f"{path} is not a record file (expected a JSON object)")
    return values


__all__ = ["ENV_VAR", "read_records", "record"]
