"""What may enter the codec: maps in physical units, checked before anything is computed.

``compress_maps`` normalises every frame by its own (min, max) and the file keeps that pair as
side info, so a frame that is constant, non-finite, complex or in the wrong units cannot be coded
honestly. :func:`check_maps` names the real problem and the fix instead of letting it surface as
NaN deep inside the model. The same plausible ranges bound the side info a decoder accepts
(:mod:`mmslim.codec.container`).

Plausible ranges (:data:`VALUE_RANGES`):

- amplitude in dB: ±1000 dB. Any float32 power or magnitude in dB lies within it
  (10 log10 and 20 log10 of 1.4e-45 … 3.4e38 span −897 … +771 dB); a value outside is not a dB
  value (e.g. linear power, or a sentinel such as ±1e38).
- phase in radians: (−π, π], with 1e-4 of slack for float32 rounding of π; maps in [0, 2π) or
  in degrees are refused with the conversion to use.
"""

from __future__ import annotations

import math

import numpy as np

from mmslim.config import KINDS
from mmslim.data.arrays import DataError

VALUE_RANGES = {"amplitude": (-1000.0, 1000.0), "phase": (-math.pi - 1e-4, math.pi + 1e-4)}
UNITS = {"amplitude": "dB", "phase": "rad"}


def check_maps(maps, kind: str, name: str = "maps") -> np.ndarray:
    """Return ``maps`` (N, H, W) as float32 after checking they can be coded as ``kind``.

    Refused, each with its own message: a non-numeric, complex, integer or boolean dtype; not
    3-D; zero frames; NaN or inf; values outside :data:`VALUE_RANGES`; a constant frame
    (nothing to normalise). Whether the model can code H x W is the model's to say.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    array = np.asarray(maps)
    unit = UNITS[kind]
    if np.iscomplexobj(array):
        raise DataError(
            f"{name} hold complex values ({array.dtype}); mmslim codes amplitude and phase as two "
            "real maps: pass 20*np.log10(np.abs(x)) as amplitude (dB) and np.angle(x) as phase"
        )
    if array.dtype.kind in "iub":
        raise DataError(
            f"{name} hold {array.dtype} values, not floats; if they are {kind} in {unit}, convert "
            "them with maps.astype(np.float32)"
        )
    if array.dtype.kind != "f":
        raise DataError(f"{name} have dtype {array.dtype}; expected float {kind} maps in {unit}")
    if array.ndim != 3:
        raise DataError(f"{name} have shape {array.shape}; expected (N, H, W): N frames of H x W")
    n = len(array)
    if n == 0 or array.size == 0:
        raise DataError(f"{name} hold no frames (shape {array.shape}); there is nothing to code")
    flat = array.reshape(n, -1)  # (N, H*W)
    finite = np.isfinite(flat).all(axis=1)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        raise DataError(
            f"{name}: frame {i} holds NaN or inf; replace those cells (e.g. clip a log of zero to "
            "the noise floor) or drop the frame"
        )
    lo, hi = flat.min(axis=1), flat.max(axis=1)  # (N,)
    low, high = VALUE_RANGES[kind]
    outside = (lo < low) | (hi > high)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise DataError(
            f"{name}: frame {i} holds values in [{lo[i]:.6g}, {hi[i]:.6g}], outside the plausible "
            f"range of {kind} in {unit} [{low:.6g}, {high:.6g}]; {_range_hint(kind)}"
        )
    constant = lo == hi
    if constant.any():
        i = int(np.flatnonzero(constant)[0])
        raise DataError(
            f"{name}: frame {i} is constant (every value {lo[i]:.6g} {unit}), so it cannot be "
            "normalised to [0, 1]; drop it, it carries no information beyond that value"
        )
    return array.astype(np.float32, copy=False)


def _range_hint(kind: str) -> str:
    if kind == "phase":
        return "wrap radians into (-pi, pi] with np.angle(np.exp(1j * x)); convert degrees first"
    return "convert linear values to dB (10*np.log10 of power) and replace sentinel values"


__all__ = ["UNITS", "VALUE_RANGES", "check_maps"]
