"""Recording a notebook's key numbers so that a headless run can check them.

A notebook calls ``record("val_ssim", 0.83)``. When the environment variable ``MMSLIM_RECORD``
names a file (the papermill runner in :mod:`mmslim.tutorial.runner` sets it, one file per notebook),
the value is added to that JSON file, an object ``{name: value}``; recording a name again
replaces its value. Without the variable nothing is written. Either way one rounded line with the
value's unit is printed (``recorded target_db = 2.94 dB``) and the exact value is returned, so a
notebook reads the same interactively and headlessly.

Only scalars are recorded: ``float``, ``int``, ``str``, ``bool`` (numpy scalars and one-element
tensors become plain Python ones). Non-finite floats are kept (JSON ``NaN``/``Infinity``), so
that a check can see them and fail, rather than the notebook failing while recording.

Units follow the name (:func:`unit_of`, one table for the printed lines and ``make demo``'s
summary): ``_db`` is dB, ``_rad`` radians, ``_seconds`` seconds, ``bpe_``/``bits_per_element``
bits per element, and so on; ``record(name, value, unit="...")`` overrides it.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path

ENV_VAR = "MMSLIM_RECORD"
Scalar = float | int | str | bool

# (pattern searched in the name, unit), first match wins; "" is a dimensionless number
UNIT_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"_db$|psnr", "dB"),
    (r"_rad$", "rad"),
    (r"_seconds$", "s"),
    (r"^bpe_|bits_per_element", "bits/element"),
    (r"(^|_)bits(_|$)", "bits"),
    (r"(^|_)ratio(_|$)", "×"),
    (r"perplexity", "codes"),
    (r"^params_", "parameters"),
    (r"^receptive_field", "cells"),
    (r"^indices_per_frame$", "indices"),
)


def unit_of(name: str) -> str:
    """The unit of a recorded value, from its name (see :data:`UNIT_PATTERNS`); "" if none."""
    for pattern, unit in UNIT_PATTERNS:
        if re.search(pattern, name):
            return unit
    return ""


def format_value(value: Scalar, unit: str = "") -> str:
    """``value`` rounded for reading (4 significant digits without trailing zeros, no exponent
    between 1e-3 and 1e7, thousands separated) followed by ``unit``:
    ``format_value(2.9381, "dB")`` is ``"2.938 dB"``, ``format_value(1827300, "parameters")`` is
    ``"1,827,300 parameters"``."""
    if isinstance(value, bool) or isinstance(value, str):
        shown = str(value)
    elif isinstance(value, int):
        shown = f"{value:,}"
    elif not math.isfinite(value) or value == 0:
        shown = str(value)
    elif 1e-3 <= abs(value) < 1e7:
        decimals = max(0, 3 - math.floor(math.log10(abs(value))))
        shown = f"{value:,.{decimals}f}"
        shown = shown.rstrip("0").rstrip(".") if "." in shown else shown  # 0.7490 -> 0.749
    else:
        shown = f"{value:.3e}"
    return f"{shown} {unit}" if unit else shown


def _scalar(name: str, value) -> Scalar:
    for plain in (bool, int, float, str):  # bool before int: True is an int too
        if isinstance(value, plain):
            return plain(value)  # np.float64 is a float: keep no numpy repr
    size = getattr(value, "size", None)  # numpy: an attribute; torch: a method
    size = value.numel() if hasattr(value, "numel") else size
    if size == 1 and hasattr(value, "item"):  # numpy scalar or array, tensor, of one element
        return value.item()
    raise TypeError(
        f"record({name!r}, ...) takes a float, int, str or bool, got {type(value).__name__}; "
        "record summary numbers, not arrays."
    )


def record(name: str, value, unit: str | None = None) -> Scalar:
    """Record ``value`` under ``name`` (see the module doc) and return it as a plain scalar.

    unit: printed after the rounded value; None takes it from the name (:func:`unit_of`).
    """
    if not isinstance(name, str) or not name:
        raise ValueError("record() needs a non-empty name, e.g. record('val_ssim', 0.83)")
    value = _scalar(name, value)
    print(f"recorded {name} = {format_value(value, unit_of(name) if unit is None else unit)}")
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


__all__ = ["ENV_VAR", "UNIT_PATTERNS", "format_value", "read_records", "record", "unit_of"]
