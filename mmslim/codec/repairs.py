"""Repair lists: the cells a radar user would read wrongly on the decoded amplitude, set right by
position, beside the file and any other layer.

Why. The layers before it work on cells the receiver can find by itself (the detail layer's
cells near the decoded peak, the floor layer's blocks). What they cannot reach are the cells the
decoder *misses*: a return the model drew as floor (on the lab77 scenario about 13 cells a
frame, spread over the whole Doppler axis, three quarters of the target error there) and the
cells on which the detector the user runs decides otherwise than on the original: a detection
lost, or one invented. The sender has the original and knows exactly
what the receiver will decode, so it finds those cells and sends them by position.

Which cells (:func:`choose_repairs`), on the map the receiver will have before the list:

1. **misses**: cells within ``within_db`` of the frame's peak (the original's target region)
   whose decoded value is more than ``error_db`` (default 3 dB) below the original (from 6 dB
   the list cost 0.001 bits/element less and left 0.09 dB more target error on the held-out
   walkers, 0.12 dB on lab77, after the detail and floor layers);
2. **lost detections**: cells CA-CFAR detects on the original with no detection within one cell
   on the decoded map; both set to the original's value;
3. then, on the map with the list applied, until a round changes nothing or ``rounds`` (4)
   rounds have run (a listed cell moves its neighbours' thresholds, so one pass is not enough):

   - **invented detections**, cells CA-CFAR detects with no original detection within one cell:
     each is set to the lower of its value and 1 dB below the detector's threshold there;
   - detections **still lost**: each is set to the higher of the original's value and 1 dB above
     the threshold there (the decoded neighbourhood can be brighter than the original's, so the
     original's value alone may stay under it). Without this step about 1 % of the original's
     detections stayed lost on the held-out walkers and 3 % on lab77; with it none did, for the
     same number of listed cells and 0.01 to 0.05 dB more target error.

With ``exact=True`` "within one cell" becomes "on the same cell": the detector then finds exactly
the original's detections on the repaired map, so everything derived from them (the walker's
range, velocity and micro-Doppler extent of :mod:`mmslim.metrics.walker`) is the original's
too, for that detector. It costs 1.4 to 2.5 times the bytes on the benchmark's frames (it lists
the cells next to a detection that the detector also finds there, since the decoder draws a
target a little wider than it is). CFAR F1 forgives those cells (it matches within a cell); the
micro-Doppler extent, a spread of detections, does not.

Steps 2 and 3 run for each detector in ``detectors`` (keyword arguments of
:func:`mmslim.metrics.radar.ca_cfar`). The list is made for those detectors: a detector with
other settings sees the listed cells in a neighbourhood the list did not set, and may decide
otherwise. The default, :data:`DETECTORS`, is CA-CFAR with the settings ``mmslim bench rd``
scores with, at its false-alarm rate (1e-6) and at one a hundred times higher: an invented peak
put under the more sensitive threshold stays under the thresholds of detectors the list was not
made for too. Made for the first alone (:data:`BENCH_ONLY`), on the lab77 scenario the list
raised CFAR F1 with that detector but lowered it with two others; with both, it raised it with
all three, for a few more bytes and a little more target error (the README gives the figures).

What is sent: each listed cell's position (a yes/no per cell, entropy coded: about 12 bits a
cell at a dozen cells a frame) and its value as whole ``step`` dB (default 1) above or below the
decoded value there, so the receiver's value does not depend on float rounding of the decoded
map beyond that map's own. Both streams are coded with ``constriction``'s ANS coder under
categorical models whose counts are in the layer (:mod:`mmslim.codec.layer_format`).

Layout, version 1 (integers little-endian)::

    offset  size      field
    0       4         magic b"MMSR"
    4       1         version, 1
    5       3         reserved, zero
    8       4         N, frames (uint32)
    12      4         H, W (uint16 each)
    16      4         step (float32 dB, > 0)
    20      4         M, listed cells (uint32)
    24      table     positions: symbols 0 (kept) and 1 (listed) (a table of
                      :mod:`mmslim.codec.layer_format`: counts, or uniform)
    ...     table     values: steps from the decoded value
    ...     4 words   the ANS payload: N H W position symbols (frames, cells row-major), then one
                      value symbol per listed cell in the same order
    end-4   4         CRC32 of every byte before it

numpy, scipy and constriction only.
"""

from __future__ import annotations

import struct

import numpy as np
from scipy import ndimage

from mmslim.codec.ans import ans_decode_segments, ans_encode_segments
from mmslim.codec.detail import check_layer_maps
from mmslim.codec.frames import BitstreamError
from mmslim.codec.layer_format import CRC, add_crc, check_crc, check_frames, read_table, write_table
from mmslim.metrics.radar import ca_cfar, cfar_with_threshold

MAGIC = b"MMSR"
VERSION = 1
HEAD = struct.Struct("<4sBBHIHHfI")  # magic, version, reserved (u8, u16), N, H, W, step, M
BENCH_ONLY: tuple[dict, ...] = ({},)  # ca_cfar's own settings: those mmslim bench rd scores with
DETECTORS: tuple[dict, ...] = ({}, {"pfa": 1e-4})  # and the same, a hundred times as sensitive
NEAR = np.ones((1, 3, 3), bool)  # "within one cell", as detection_scores matches detections


def choose_repairs(
    amplitude: np.ndarray,
    decoded: np.ndarray,
    error_db: float = 3.0,
    within_db: float = 40.0,
    detectors: tuple[dict, ...] = DETECTORS,
    rounds: int = 4,
    step: float = 1.0,
    exact: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The cells to list and their symbols (see the module's docstring): (listed (N, H, W)
    bool, symbols (N, H, W) int64, each listed cell's value in whole ``step`` dB from
    ``decoded``; 0 elsewhere). ``amplitude``: the original, ``decoded``: what the receiver will
    have before the list, both (N, H, W) dB."""
    amplitude = np.asarray(amplitude, np.float64)
    decoded = np.asarray(decoded, np.float32)
    near = (lambda d: d) if exact else (lambda d: ndimage.binary_dilation(d, NEAR))
    peak = amplitude.max(axis=(1, 2), keepdims=True)
    listed = (amplitude >= peak - within_db) & (amplitude - decoded > error_db)
    found = [ca_cfar(amplitude, **d) for d in detectors]  # the original's detections
    for detector, original in zip(detectors, found):
        listed |= original & ~near(ca_cfar(decoded, **detector))
    target = amplitude.copy()  # the value each listed cell should take, dB

    def applied():
        symbols = np.where(listed, np.round((target - decoded) / step), 0).astype(np.int64)
        shown = np.where(listed, decoded + symbols * np.float32(step), decoded)
        return symbols, shown.astype(np.float32)  # as the receiver computes it

    symbols, shown = applied()
    originals = [near(original) for original in found]
    for _ in range(rounds):
        before = symbols
        for detector, original, near_original in zip(detectors, found, originals):
            detected, threshold = cfar_with_threshold(shown, **detector)
            invented = detected & ~near_original
            lost = original & ~near(detected) & ~invented
            target = np.where(invented, np.minimum(target, threshold - 1.0), target)
            target = np.where(lost, np.maximum(amplitude, threshold + 1.0), target)
            listed |= invented | lost
            symbols, shown = applied()
        if np.array_equal(symbols, before):  # a round that changed nothing: the list is done
            break
    return listed, symbols


def encode_repairs(amplitude: np.ndarray, decoded: np.ndarray, step: float = 1.0, **rules) -> bytes:
    """The repair list of ``amplitude`` (N, H, W) dB against ``decoded`` (N, H, W) dB, what the
    receiver will have before it (the decoded file with any detail and floor layers applied)
    -> bytes. ``rules``: the other arguments of :func:`choose_repairs`."""
    amplitude, decoded = check_layer_maps(amplitude, decoded)
    if not (step > 0 and np.isfinite(step)):
        raise ValueError(f"step must be > 0 dB, got {step}")
    listed, symbols = choose_repairs(amplitude, decoded, step=step, **rules)
    n, h, w = amplitude.shape
    out = bytearray(HEAD.pack(MAGIC, VERSION, 0, 0, n, h, w, step, int(listed.sum())))
    positions = write_table(out, listed.ravel().astype(np.int64), "positions")
    values = write_table(out, symbols[listed], "value steps")
    out += ans_encode_segments([positions, values])
    return add_crc(out)


def decode_repairs(data: bytes, decoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A repair list and the map it was made against -> (listed (N, H, W) bool, values (M,)
    float32 dB of the listed cells, row-major per frame). Raises ``BitstreamError`` for a
    damaged list or one made for other frames."""
    decoded = np.asarray(decoded, np.float32)
    check_crc(data, HEAD.size, "repair list")
    magic, version, reserved, reserved2, n, h, w, step, count = HEAD.unpack_from(data)
    if magic != MAGIC or version != VERSION or reserved or reserved2:
        raise BitstreamError("not a repair list this version reads (magic or version)", "head")
    if not (step > 0 and np.isfinite(step)):
        raise BitstreamError("the repair list's step is not valid", "head")
    check_frames(decoded, n, h, w, "repair list")
    if count > n * h * w:
        raise BitstreamError(f"the repair list claims {count} cells of {n * h * w}", "head")
    position_first, _, position_model, at = read_table(data, HEAD.size)
    first, _, value_model, at = read_table(data, at)
    try:
        positions, values = ans_decode_segments(
            data[at : -CRC.size], [(position_model, n * h * w), (value_model, count)]
        )
    except ValueError as err:
        raise BitstreamError(
            f"the repair list's payload does not decode: {err}", "payload"
        ) from err
    positions = positions + position_first  # 0 kept, 1 listed
    listed = positions.reshape(n, h, w).astype(bool)
    if not (0 <= positions.min(initial=0) <= positions.max(initial=0) <= 1) or (
        int(listed.sum()) != count
    ):
        raise BitstreamError("the repair list's positions do not match its count", "payload")
    return listed, (decoded[listed] + (values + first) * np.float32(step)).astype(np.float32)


def apply_repairs(shown: np.ndarray, data: bytes) -> np.ndarray:
    """``shown`` (N, H, W) dB, the map the list was made against (the decoded file with the same
    detail and floor layers applied), with the list's cells set: (N, H, W) float32 (a new
    array)."""
    listed, values = decode_repairs(data, shown)
    out = np.array(shown, np.float32)
    out[listed] = values
    return out


def is_repair_list(data: bytes) -> bool:
    """Whether ``data`` starts as a repair list does (its magic)."""
    return data[:4] == MAGIC


__all__ = [
    "BENCH_ONLY",
    "DETECTORS",
    "apply_repairs",
    "choose_repairs",
    "decode_repairs",
    "encode_repairs",
    "is_repair_list",
]
