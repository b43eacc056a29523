"""The phase detail layer: the phase of the strongest cells, sent beside the phase file.

Why it exists. A radar user reads phase only where there is a target, and there the learned
phase codec is little better than a guess (about 1 rad of mean error on the cells within 40 dB
of the peak; a uniform guess is 1.57): the phase of a target cell is close to random from one
cell to the next, and one 9-bit code per 4 x 4 fine latent (about 0.6 bits per cell) cannot
carry 16 such phases. These cells are few (about 0.2 % of a frame in the sample), so their
phase is cheap to send directly: ``bits`` bits each, uniformly quantised (error at most half a
step, pi / 2**bits).

Which cells. The receiver must find the same cells without being told where they are, so both
ends select them on the **decoded amplitude** (``decompress_maps`` of the amplitude file, with
``floor="none"``): the cells within ``within_db`` of that frame's decoded peak, at most
``max_share`` of the frame. The sender puts each frame's threshold in dB into the layer, in the
middle of the widest gap between decoded values near the target level, so that a receiver whose
decoded amplitude differs by float rounding (another backend: about 1e-4 dB) selects the same
cells; the count of cells is sent too, and a receiver that selects another count refuses the
layer (it was decoded with another model or floor).

Layout, version 1 (integers little-endian)::

    offset   size            field
    0        4               magic b"MMSD"
    4        1               version, 1
    5        1               bits per cell, 1..8
    6        2               reserved, zero
    8        4               N, frames (uint32)
    12       4               H, W (uint16 each)
    16       6 N             per frame: threshold (float32, dB), cells (uint16)
    16+6N    ceil(bits M/8)  the cells' phase codes, M = sum of cells, ``bits`` bits each, MSB
                             first, frames in order, cells in row-major order within a frame
    end - 4  4               CRC32 of every byte before it

The codes are packed, not entropy coded: they are close to uniform (measured 3.9 bits of
entropy per 4-bit code on the sample), so a coder would save about 2 %.

Cost on the sample's held-out frames (``mmslim bench rd``): see the README; numpy only.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from mmslim.codec.frames import BitstreamError

MAGIC = b"MMSD"
VERSION = 1
HEAD = struct.Struct("<4sBBHIHH")  # magic, version, bits, reserved, N, H, W
FRAME = struct.Struct("<fH")  # threshold (dB), cells
CRC = struct.Struct("<I")
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


def encode_detail(
    phase: np.ndarray,
    amplitude_hat: np.ndarray,
    bits: int = 4,
    within_db: float = 43.0,
    max_share: float = 0.02,
) -> bytes:
    """The detail layer of ``phase`` (N, H, W) rad, cells chosen on ``amplitude_hat`` (N, H, W),
    the decoded amplitude in dB (what the receiver will have) -> bytes."""
    phase, amplitude_hat = _check_maps(phase, amplitude_hat)
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be 1..8, got {bits}")
    thresholds = choose_thresholds(amplitude_hat, within_db, max_share)
    cells = detail_cells(amplitude_hat, thresholds)  # (N, H, W)
    counts = cells.sum(axis=(1, 2))
    step = 2 * np.pi / 2**bits
    codes = np.round(phase[cells] / step).astype(np.int64) % 2**bits  # (M,) row-major per frame
    n, h, w = phase.shape
    out = bytearray(HEAD.pack(MAGIC, VERSION, bits, 0, n, h, w))
    for t, c in zip(thresholds, counts):
        out += FRAME.pack(float(t), int(c))
    out += _pack(codes, bits)
    out += CRC.pack(zlib.crc32(out))
    return bytes(out)


def decode_detail(data: bytes, amplitude_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A detail layer and the decoded amplitude it was made against -> (cells (N, H, W) bool,
    phase (M,) float32 rad in (-pi, pi], the cells' values in row-major order per frame).
    Raises ``BitstreamError`` for a damaged layer or one made against another amplitude."""
    amplitude_hat = np.asarray(amplitude_hat, np.float32)
    if len(data) < HEAD.size + CRC.size:
        raise BitstreamError(f"a detail layer has at least {HEAD.size + CRC.size} bytes", "size")
    if zlib.crc32(data[: -CRC.size]) != CRC.unpack(data[-CRC.size :])[0]:
        raise BitstreamError("the detail layer's CRC does not match: it is damaged", "checksum")
    magic, version, bits, reserved, n, h, w = HEAD.unpack_from(data)
    if magic != MAGIC or version != VERSION or reserved or not 1 <= bits <= 8:
        raise BitstreamError("not a version-1 phase detail layer (magic, version or bits)", "head")
    if amplitude_hat.shape != (n, h, w):
        raise BitstreamError(
            f"the layer is for {n} frames of {h} x {w}, the amplitude given is "
            f"{amplitude_hat.shape}: pass the decoded amplitude of the same frames", "frames"
        )  # fmt: skip
    end = HEAD.size + FRAME.size * n
    if len(data) < end + CRC.size:
        raise BitstreamError("the detail layer is truncated", "size")
    table = np.frombuffer(data, dtype=np.dtype([("t", "<f4"), ("c", "<u2")]), count=n,
                          offset=HEAD.size)  # fmt: skip
    thresholds, counts = table["t"].astype(np.float32), table["c"].astype(np.int64)
    if not np.isfinite(thresholds).all():
        raise BitstreamError("a threshold of the detail layer is not finite", "thresholds")
    cells = detail_cells(amplitude_hat, thresholds)
    selected = cells.sum(axis=(1, 2))
    if not np.array_equal(selected, counts):
        k = int(np.flatnonzero(selected != counts)[0])
        raise BitstreamError(
            f"frame {k}: the layer holds {counts[k]} cells, this amplitude selects {selected[k]}; "
            "decode the amplitude file with the model it was made with and floor='none'",
            "cells",
        )  # fmt: skip
    total = int(counts.sum())
    if len(data) - CRC.size - end != -(-total * bits // 8):
        raise BitstreamError("the detail layer's codes do not match its cell counts", "codes")
    codes = _unpack(data[end : -CRC.size], bits, total)
    step = 2 * np.pi / 2**bits
    values = codes * step
    values = np.where(values > np.pi, values - 2 * np.pi, values).astype(np.float32)
    return cells, values


def refine_phase(phase_hat: np.ndarray, data: bytes, amplitude_hat: np.ndarray) -> np.ndarray:
    """``phase_hat`` (N, H, W) rad, decoded by the phase model, with the detail layer's cells
    put in: (N, H, W) float32 (a new array)."""
    cells, values = decode_detail(data, amplitude_hat)
    out = np.array(phase_hat, np.float32)
    if out.shape != cells.shape:
        raise ValueError(f"phase maps {out.shape} and detail layer {cells.shape} differ")
    out[cells] = values
    return out


def _check_maps(phase, amplitude_hat) -> tuple[np.ndarray, np.ndarray]:
    phase, amplitude_hat = np.asarray(phase), np.asarray(amplitude_hat, np.float32)
    if phase.ndim != 3 or phase.shape != amplitude_hat.shape:
        raise ValueError(
            f"phase {phase.shape} and decoded amplitude {amplitude_hat.shape} must be the same "
            "(N, H, W) frames"
        )
    if max(phase.shape[1:]) > 0xFFFF or phase.shape[1] * phase.shape[2] > 0xFFFF:
        raise ValueError(f"frames of {phase.shape[1:]} are too large for a detail layer")
    if not (np.isfinite(phase).all() and np.isfinite(amplitude_hat).all()):
        raise ValueError("phase and amplitude must be finite")
    return phase, amplitude_hat


def _pack(codes: np.ndarray, bits: int) -> bytes:
    """(M,) ints in [0, 2**bits) -> bytes, ``bits`` bits each, MSB first, zero-padded."""
    planes = (codes[:, None] >> np.arange(bits - 1, -1, -1)) & 1  # (M, bits)
    return np.packbits(planes.astype(np.uint8).ravel()).tobytes()


def _unpack(data: bytes, bits: int, count: int) -> np.ndarray:
    """Inverse of :func:`_pack`: (count,) int64."""
    planes = np.unpackbits(np.frombuffer(data, np.uint8))[: count * bits].reshape(count, bits)
    return planes.astype(np.int64) @ (1 << np.arange(bits - 1, -1, -1))


__all__ = ["choose_thresholds", "decode_detail", "detail_cells", "encode_detail", "refine_phase"]
