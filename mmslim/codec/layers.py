"""The amplitude a receiver shows: its decoded file with the layers sent beside it applied, in the
one order they are made in.

1. the amplitude detail layer (:mod:`mmslim.codec.detail`): the cells near the decoded peak;
2. the floor layer (:mod:`mmslim.codec.floor_layer`): the floor's level, and its texture;
3. the repair list (:mod:`mmslim.codec.repairs`): cells set by position, made against the map
   the first two leave.

The detail and floor layers are read against the decoded map itself (``floor="none"``); the
repair list against what they leave. A sender makes each layer against what the receiver will
have at that point, which is why the order is fixed. The phase detail layer may then choose its
cells on the map returned here (both ends have it), rather than on the decoded map alone.
"""

from __future__ import annotations

import numpy as np


def apply_amplitude_layers(
    amplitude_hat: np.ndarray,
    detail: bytes | None = None,
    floor: bytes | None = None,
    repairs: bytes | None = None,
) -> np.ndarray:
    """``amplitude_hat`` (N, H, W) dB, decoded with ``floor="none"``, with the layers given
    applied in order: (N, H, W) float32 (a new array, or ``amplitude_hat`` as float32 if no
    layer is given). Raises ``BitstreamError`` for a layer made against other maps."""
    from mmslim.codec.detail import refine_amplitude
    from mmslim.codec.floor_layer import refine_floor
    from mmslim.codec.repairs import apply_repairs

    shown = np.asarray(amplitude_hat, np.float32)
    if detail:
        shown = refine_amplitude(shown, detail)
    if floor:
        shown = refine_floor(shown, floor, amplitude_hat)
    if repairs:
        shown = apply_repairs(shown, repairs)
    return shown


__all__ = ["apply_amplitude_layers"]
