"""Detail layers: the strongest cells' phase, or their amplitude's error, sent beside a file.

Why they exist. A radar user reads a map where there is a target, and there the learned codec
is weakest:

- **phase** (``kind="phase"``): the learned phase codec is little better than a guess on the
  cells within 40 dB of the peak (about 1 rad of mean error; a uniform guess is 1.57): the phase
  of a target cell is close to random from one cell to the next, and one 9-bit code per 4 x 4
  fine latent (about 0.6 bits per cell) cannot carry 16 such phases. The layer sends each
  cell's phase, ``bits`` bits, uniformly quantised (error at most half a step, pi / 2**bits).
- **amplitude** (``kind="amplitude"``): the decoded amplitude is a few dB off on the target
  cells (the fine decoder draws a target a little wider and brighter than it is: on the sample,
  the selected cells' error has a median of -5 dB and a long tail to -35 dB). The layer sends
  each cell's error (original minus decoded, dB) as one of ``2**bits`` levels chosen for the
  layer (one-dimensional k-medians, the levels that minimise the mean absolute error; written
  in the layer), which suits that skewed, long-tailed error far better than a uniform step.

These cells are few (about 0.2 % to 0.5 % of a frame in the sample), so a few bits each cost
little beside the file.

Which cells. The receiver must find the same cells without being told where they are, so both
ends select them on the **decoded amplitude** (``decompress_maps`` of the amplitude file, with
``floor="none"``): the cells within ``within_db`` of that frame's decoded peak, at most
``max_share`` of the frame. The sender puts each frame's threshold in dB into the layer, in the
middle of the widest gap between decoded values near the target level, so that a receiver whose
decoded amplitude differs by float rounding (another backend: about 1e-4 dB) selects the same
cells; the count of cells is sent too, and a receiver that selects another count refuses the
layer (it was decoded with another model or floor).

Layout, version 2 (integers little-endian)::

    offset   size            field
    0        4               magic b"MMSD"
    4        1               version, 2 (1: phase layers only, byte 6 zero; still read)
    5        1               bits per cell, 1..8
    6        1               kind: 0 phase, 1 amplitude
    7        1               reserved, zero
    8        4               N, frames (uint32)
    12       4               H, W (uint16 each)
    16       6 N             per frame: threshold (float32, dB), cells (uint16)
    16+6N    4 L             amplitude only: the L = 2**bits levels (float32 dB, ascending)
    ...      ceil(bits M/8)  the cells' codes, M = sum of cells, ``bits`` bits each, MSB first,
                             frames in order, cells in row-major order within a frame
    end - 4  4               CRC32 of every byte before it

(Version 1 had byte 6 reserved and zero, and was phase only: a version-1 file is a phase layer
of this layout, and a version-1 reader refuses a version-2 file.) The codes are packed, not
entropy coded: they are close to uniform (measured 3.9 bits of entropy per 4-bit phase code,
3.97 per 4-bit amplitude code on the sample), so a coder would save 1 to 3 %.

Cost on the sample's held-out frames (``mmslim bench rd``): see the README; numpy only.
"""

from __future__ import annotations

import struct

import numpy as np

from mmslim.codec.frames import BitstreamError
from mmslim.codec.layer_format import CRC, add_crc, check_crc, check_frames

MAGIC = b"MMSD"
VERSION = 2
READS = (1, 2)  # versions decoded: 1 (phase only) and this one
KINDS = ("phase", "amplitude")  # the kind byte's values, in order
HEAD = struct.Struct("<4sBBBBIHH")  # magic, version, bits, kind, reserved, N, H, W
FRAME = struct.Struct("<fH")  # threshold (dB), cells
LEVEL = struct.Struct("<f")
NEAR = 3  # the threshold goes in the widest of the gaps this many values either side of the level


def detail_cells(amplitude_hat: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The cells of each frame at or above its threshold: (N, H, W) dB, (N,) -> (N, H, W) bool."""
    return amplitude_hat >= np.asarray(thresholds, np.float32)[:, None, None]


def choose_thresholds(
    amplitude_hat: np.ndarray, within_db: float = 43.0, max_share: float = 0.02
) -> np.ndarray:
    """Each frame's threshold (N,) float32 in dB: near ``peak - within_db`` (and keeping at most
    ``max_share`` of the frame's cells), in the middle of the widest gap between the decoded
    values within ``NEAR`` places of that level, so float rounding cannot move a cell across."""
    n, h, w = amplitude_hat.shape
    cap = max(1, int(max_share * h * w))
    out = np.empty(n, np.float32)
    for k, frame in enumerate(amplitude_hat.astype(np.float32)):
        values = -np.sort(-frame.ravel())  # descending
        level = values[0] - within_db
        last = min(int(np.searchsorted(-values, -level, side="right")), cap)  # cells kept
        lo, hi = max(1, last - NEAR), min(len(values) - 1, last + NEAR)  # gaps after place i-1
        gaps = values[lo - 1 : hi] - values[lo : hi + 1]  # gap between i-1 and i, i in lo..hi
        i = lo + int(np.argmax(gaps))
        out[k] = np.float32((values[i - 1] + values[i]) / 2)
    return out


def read_cut(data: bytes, offset: int, amplitude_hat: np.ndarray, layer: str) -> np.ndarray:
    """The cells above each frame's threshold, from the per-frame table (threshold float32 dB,
    cells above it uint16) at ``offset`` of a layer, on ``amplitude_hat`` (N, H, W): (N, H, W)
    bool. Raises ``BitstreamError`` for a threshold that is not finite, or a frame where this
    amplitude selects another count than the layer's (it was decoded otherwise)."""
    table = np.frombuffer(data, dtype=np.dtype([("t", "<f4"), ("c", "<u2")]),
                          count=len(amplitude_hat), offset=offset)  # fmt: skip
    thresholds, counts = table["t"].astype(np.float32), table["c"].astype(np.int64)
    if not np.isfinite(thresholds).all():
        raise BitstreamError(f"a threshold of the {layer} is not finite", "values")
    cells = detail_cells(amplitude_hat, thresholds)
    selected = cells.sum(axis=(1, 2))
    if not np.array_equal(selected, counts):
        k = int(np.flatnonzero(selected != counts)[0])
        raise BitstreamError(
            f"frame {k}: the {layer} was cut at {counts[k]} cells, this amplitude gives "
            f"{selected[k]}; decode the amplitude file with the model it was made with and "
            "floor='none' (and the same layers, where it was made on them)",
            "cells",
        )  # fmt: skip
    return cells


def error_levels(errors: np.ndarray, count: int, iterations: int = 30) -> np.ndarray:
    """``count`` levels (ascending float32) that minimise the mean absolute difference between
    ``errors`` (M,) and their nearest level: one-dimensional k-medians (Lloyd's iteration with
    medians), started at evenly spaced quantiles."""
    errors = np.sort(np.asarray(errors, np.float64).ravel())
    if errors.size == 0:
        return np.zeros(count, np.float32)
    levels = np.quantile(errors, (np.arange(count) + 0.5) / count)
    for _ in range(iterations):
        groups = np.split(errors, np.searchsorted(errors, (levels[1:] + levels[:-1]) / 2))
        moved = np.array([np.median(g) if g.size else v for g, v in zip(groups, levels)])
        if np.array_equal(moved, levels):
            break
        levels = np.sort(moved)
    return levels.astype(np.float32)


def nearest_level(errors: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The index (M,) int64 of the nearest of the ascending ``levels`` to each of ``errors``."""
    edges = (levels[1:].astype(np.float64) + levels[:-1]) / 2
    return np.searchsorted(edges, errors).astype(np.int64)


def encode_detail(
    maps: np.ndarray,
    amplitude_hat: np.ndarray,
    bits: int = 4,
    within_db: float = 43.0,
    max_share: float = 0.02,
    kind: str = "phase",
) -> bytes:
    """The detail layer of ``maps`` (N, H, W): phase in rad (``kind="phase"``) or the original
    amplitude in dB (``kind="amplitude"``), cells chosen on ``amplitude_hat`` (N, H, W), the
    decoded amplitude in dB (what the receiver will have) -> bytes."""
    maps, amplitude_hat = check_layer_maps(maps, amplitude_hat)
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be 1..8, got {bits}")
    thresholds = choose_thresholds(amplitude_hat, within_db, max_share)
    cells = detail_cells(amplitude_hat, thresholds)  # (N, H, W)
    counts = cells.sum(axis=(1, 2))
    n, h, w = maps.shape
    out = bytearray(HEAD.pack(MAGIC, VERSION, bits, KINDS.index(kind), 0, n, h, w))
    for t, c in zip(thresholds, counts):
        out += FRAME.pack(float(t), int(c))
    if kind == "phase":
        step = 2 * np.pi / 2**bits
        codes = np.round(maps[cells] / step).astype(np.int64) % 2**bits  # (M,) row-major
    else:
        errors = maps[cells].astype(np.float64) - amplitude_hat[cells]  # (M,) dB
        levels = error_levels(errors, 2**bits)
        codes = nearest_level(errors, levels)
        out += levels.astype("<f4").tobytes()
    out += _pack(codes, bits)
    return add_crc(out)


def detail_kind(data: bytes) -> str:
    """``"phase"`` or ``"amplitude"``: what a detail layer carries (from its head alone)."""
    if len(data) < HEAD.size or data[:4] != MAGIC or data[6] >= len(KINDS):
        raise BitstreamError("not a detail layer (magic or kind)", "head")
    return KINDS[data[6]]


def decode_detail(data: bytes, amplitude_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A detail layer and the decoded amplitude it was made against -> (cells (N, H, W) bool,
    values (M,) float32, the cells' values in row-major order per frame: phase in (-pi, pi]
    rad, or amplitude in dB). Raises ``BitstreamError`` for a damaged layer or one made against
    another amplitude."""
    amplitude_hat = np.asarray(amplitude_hat, np.float32)
    check_crc(data, HEAD.size, "detail layer")
    magic, version, bits, kind, reserved, n, h, w = HEAD.unpack_from(data)
    known_kind = kind < len(KINDS) and (version == VERSION or KINDS[kind] == "phase")
    if magic != MAGIC or version not in READS or reserved or not known_kind or not 1 <= bits <= 8:
        raise BitstreamError("not a detail layer this version reads (magic, version, kind or "
                             "bits)", "head")  # fmt: skip
    check_frames(amplitude_hat, n, h, w, "detail layer")
    end = HEAD.size + FRAME.size * n
    has_levels = KINDS[kind] == "amplitude"
    if len(data) < end + has_levels * LEVEL.size * 2**bits + CRC.size:
        raise BitstreamError("the detail layer is truncated", "size")
    levels = None
    if has_levels:
        levels = np.frombuffer(data, "<f4", count=2**bits, offset=end).astype(np.float32)
        end += LEVEL.size * 2**bits
    if levels is not None and not np.isfinite(levels).all():
        raise BitstreamError("a level of the detail layer is not finite", "values")
    cells = read_cut(data, HEAD.size, amplitude_hat, "detail layer")
    total = int(cells.sum())
    if len(data) - CRC.size - end != -(-total * bits // 8):
        raise BitstreamError("the detail layer's codes do not match its cell counts", "codes")
    codes = _unpack(data[end : -CRC.size], bits, total)
    if levels is not None:
        return cells, (amplitude_hat[cells] + levels[codes]).astype(np.float32)
    step = 2 * np.pi / 2**bits
    values = codes * step
    values = np.where(values > np.pi, values - 2 * np.pi, values).astype(np.float32)
    return cells, values


def refine_phase(phase_hat: np.ndarray, data: bytes, amplitude_hat: np.ndarray) -> np.ndarray:
    """``phase_hat`` (N, H, W) rad, decoded by the phase model, with a phase detail layer's cells
    put in: (N, H, W) float32 (a new array). ``amplitude_hat``: the decoded amplitude (dB,
    ``floor="none"``) the layer's cells were chosen on."""
    return _refine(phase_hat, data, amplitude_hat, "phase")


def refine_amplitude(amplitude_hat: np.ndarray, data: bytes) -> np.ndarray:
    """``amplitude_hat`` (N, H, W) dB, decoded with ``floor="none"``, with an amplitude detail
    layer's corrections put in: (N, H, W) float32 (a new array). Draw any other floor after."""
    return _refine(amplitude_hat, data, amplitude_hat, "amplitude")


def _refine(maps_hat, data: bytes, amplitude_hat, kind: str) -> np.ndarray:
    if detail_kind(data) != kind:
        raise ValueError(f"this is a {detail_kind(data)} detail layer; it refines {kind} maps only "
                         f"with a {kind} layer")  # fmt: skip
    cells, values = decode_detail(data, amplitude_hat)
    out = np.array(maps_hat, np.float32)
    if out.shape != cells.shape:
        raise ValueError(f"{kind} maps {out.shape} and detail layer {cells.shape} differ")
    out[cells] = values
    return out


def check_layer_maps(maps, amplitude_hat) -> tuple[np.ndarray, np.ndarray]:
    """``maps`` and the decoded amplitude a layer is made against, as arrays, checked: the same
    (N, H, W) frames, small enough for the layers' uint16 fields, finite. Raises ValueError."""
    maps, amplitude_hat = np.asarray(maps), np.asarray(amplitude_hat, np.float32)
    if maps.ndim != 3 or maps.shape != amplitude_hat.shape:
        raise ValueError(
            f"maps {maps.shape} and decoded amplitude {amplitude_hat.shape} must be the same "
            "(N, H, W) frames"
        )
    if max(maps.shape[1:]) > 0xFFFF or maps.shape[1] * maps.shape[2] > 0xFFFF:
        raise ValueError(f"frames of {maps.shape[1:]} are too large for a layer beside a file")
    if not (np.isfinite(maps).all() and np.isfinite(amplitude_hat).all()):
        raise ValueError("maps and decoded amplitude must be finite")
    return maps, amplitude_hat


def _pack(codes: np.ndarray, bits: int) -> bytes:
    """(M,) ints in [0, 2**bits) -> bytes, ``bits`` bits each, MSB first, zero-padded."""
    planes = (codes[:, None] >> np.arange(bits - 1, -1, -1)) & 1  # (M, bits)
    return np.packbits(planes.astype(np.uint8).ravel()).tobytes()


def _unpack(data: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`_pack`: (count,) int64."""
    planes = np.unpackbits(np.frombuffer(data, np.uint8))[: count * bits].reshape(count, bits)
    return planes.astype(np.int64) @ (1 << np.arange(bits - 1, -1, -1))


__all__ = [
    "check_layer_maps",
    "choose_thresholds",
    "decode_detail",
    "detail_cells",
    "detail_kind",
    "encode_detail",
    "error_levels",
    "nearest_level",
    "read_cut",
    "refine_amplitude",
    "refine_phase",
]
