"""What every part of mmslim agrees on about map arrays, importable without PyTorch (the
exported codec of :mod:`mmslim.export.sensor` runs on boards that have none): the frame shape,
the one per-frame normalisation, and the error raised for data that cannot be used.
"""

from __future__ import annotations

import numpy as np

FRAME_SHAPE = (224, 64)  # Doppler rows x range bins


class DataError(ValueError):
    """Radar data that cannot be used; the message names the file and the fix."""


def normalize(x, lo=None, hi=None):
    """Per-frame min-max normalisation of maps ``(..., H, W)`` to [0, 1]: the one normalisation
    that the model, the codec, the baselines and the metrics share.

    ``x``: a numpy array or a torch tensor (the result is of the same kind, the arithmetic the
    same IEEE float32 either way). Returns ``(x01, lo, hi)`` with ``lo``/``hi`` of shape
    ``(...)``: each frame's min and max, unless given (e.g. to scale a reconstruction by its
    original's range).
    """
    numpy = isinstance(x, np.ndarray)
    if lo is None:
        lo = x.min(axis=(-2, -1)) if numpy else x.amin(dim=(-2, -1))
    if hi is None:
        hi = x.max(axis=(-2, -1)) if numpy else x.amax(dim=(-2, -1))
    x01 = (x - lo[..., None, None]) / (hi - lo)[..., None, None]
    return x01, lo, hi


def denormalize(x01, lo, hi):
    """Inverse of :func:`normalize`: ``(..., H, W)`` in [0, 1] back to physical units."""
    return x01 * (hi - lo)[..., None, None] + lo[..., None, None]


__all__ = ["FRAME_SHAPE", "DataError", "denormalize", "normalize"]
