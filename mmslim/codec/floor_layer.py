"""Floor layers: the noise floor's level, and optionally its texture, sent beside an amplitude file.

Why they exist. A radar user keeps the floor's *level*: CFAR thresholds are a multiple of it, and
a detection list is read against it. The learned codec gets that level wrong: on the sample's
held-out frames the decoded floor is on average 1.8 dB too high and off by 3.1 dB from one frame
to the next (5.4 dB on the lab77 scenario), because the coarse branch, trained on the radar
objective, keeps the floor's statistics only loosely. A constant map of each frame's mean is then
closer to the original than the decoded map is (PSNR over a constant map -1.3 dB). Sending the
level costs a few bytes a frame. The floor's *texture* is noise: worthless to a radar user, but
it is most of every map and all that PSNR and SSIM measure; a layer with a texture step also
codes it, coarsely, for those who are judged by them.

Which cells. The floor is every cell the detail layer (:mod:`mmslim.codec.detail`) does not
take: both layers cut each frame on the **decoded amplitude** with the same rule
(:func:`~mmslim.codec.detail.choose_thresholds`, defaults 43 dB below the decoded peak, at most
2 % of the frame), so together they cover every cell once. The threshold and the count of the
cells above it are sent, and a receiver whose decoded amplitude selects another count refuses
the layer (it was decoded with another model or floor), as for the detail layer.

What is sent. Each frame is cut into a ``rows x cols`` grid of blocks (default 8 x 2, edges
rounded from even spacing so any frame size works). For each block that holds floor cells:

- **level**: the mean of the original's floor cells minus the mean of the decoded ones, in steps
  of ``level_step`` dB (default 1 dB). Without texture the receiver shifts its decoded floor by
  it: the decoder's floor keeps its shape (and the weak returns it draws there), at the right
  level.
- **texture** (``texture_step`` > 0): the receiver's floor becomes flat at the block's level
  (the decoded mean plus the correction) plus, per cell, the original's deviation from that
  level truncated towards zero in steps of ``texture_step`` dB (a dead zone of one step each
  side: most cells send 0), drawn at the mean deviation of the cells that sent the same symbol
  (a table in the layer). Entropy coded, so the rate follows the step.

Both symbol streams are coded with ``constriction``'s ANS coder (:mod:`mmslim.codec.ans`) under
categorical models whose counts are in the layer (:mod:`mmslim.codec.layer_format`).

Layout, version 1 (integers little-endian)::

    offset  size      field
    0       4         magic b"MMSF"
    4       1         version, 1
    5       1         rows of the block grid, 1..255
    6       1         cols of the block grid, 1..255
    7       1         reserved, zero
    8       4         N, frames (uint32)
    12      4         H, W (uint16 each)
    16      4         level step (float32 dB, > 0)
    20      4         texture step (float32 dB; 0: level only)
    24      6 N       per frame: threshold (float32 dB), cells above it (uint16)
    ...     table     level symbols: model (uint8), first symbol (int16), K (uint16), and for
                      model 0 K counts (uint32) (:mod:`mmslim.codec.layer_format`)
    ...     table     texture symbols (texture step > 0 only): the same, then K float32 values
    ...     4 words   the ANS payload: level symbols (frames, blocks row-major), then texture
                      symbols (frames, cells row-major)
    end-4   4         CRC32 of every byte before it

numpy and constriction only.
"""

from __future__ import annotations

import struct

import numpy as np

from mmslim.codec.ans import ans_decode_segments, ans_encode_segments
from mmslim.codec.detail import check_layer_maps, choose_thresholds, detail_cells, read_cut
from mmslim.codec.frames import BitstreamError
from mmslim.codec.layer_format import CRC, add_crc, check_crc, check_frames, read_table, write_table

MAGIC = b"MMSF"
VERSION = 1
HEAD = struct.Struct("<4sBBBBIHHff")  # magic, version, rows, cols, reserved, N, H, W, steps
FRAME = struct.Struct("<fH")  # threshold (dB), cells above it
GRID = (8, 2)  # default blocks per frame: (rows, cols)


def block_index(shape: tuple[int, int], grid: tuple[int, int]) -> np.ndarray:
    """(H, W) int64: each cell's block, row-major over a ``grid`` (rows, cols) of blocks whose
    edges are rounded from even spacing."""
    (h, w), (rows, cols) = shape, grid
    r = np.searchsorted(np.linspace(0, h, rows + 1).round()[1:-1], np.arange(h), side="right")
    c = np.searchsorted(np.linspace(0, w, cols + 1).round()[1:-1], np.arange(w), side="right")
    return (r[:, None] * cols + c[None, :]).astype(np.int64)


def _block_means(values: np.ndarray, floor: np.ndarray, blocks: np.ndarray, count: int):
    """Per frame and block, the mean of ``values`` (N, H, W) over the floor cells and their
    number: two (N, count) arrays (mean 0 where a block holds none)."""
    n = values.shape[0]
    ids = (np.arange(n)[:, None, None] * count + blocks[None]).ravel()  # (N H W,)
    keep = floor.ravel()
    sums = np.bincount(ids[keep], values.ravel()[keep].astype(np.float64), n * count)
    cells = np.bincount(ids[keep], minlength=n * count)
    means = np.where(cells > 0, sums / np.maximum(cells, 1), 0.0)
    return means.reshape(n, count), cells.reshape(n, count)


def encode_floor(
    amplitude: np.ndarray,
    amplitude_hat: np.ndarray,
    texture_step: float = 0.0,
    level_step: float = 1.0,
    grid: tuple[int, int] = GRID,
    within_db: float = 43.0,
    max_share: float = 0.02,
) -> bytes:
    """The floor layer of ``amplitude`` (N, H, W) dB, the original, against ``amplitude_hat``
    (N, H, W) dB, what the receiver decodes from the file (``floor="none"``) -> bytes.
    ``texture_step`` 0 sends the level only; otherwise at least 0.5 dB."""
    amplitude, amplitude_hat = check_layer_maps(amplitude, amplitude_hat)
    if not level_step > 0 or not np.isfinite(level_step):
        raise ValueError(f"level_step must be > 0 dB, got {level_step}")
    if texture_step and not (0.5 <= texture_step < 1e6):
        raise ValueError(f"texture_step must be 0 (level only) or at least 0.5 dB, "
                         f"got {texture_step}")  # fmt: skip
    rows, cols = grid
    n, h, w = amplitude.shape
    if not (1 <= rows <= min(h, 255) and 1 <= cols <= min(w, 255)):
        raise ValueError(f"a grid of {rows} x {cols} blocks does not fit frames of {h} x {w}")
    thresholds = choose_thresholds(amplitude_hat, within_db, max_share)
    floor = ~detail_cells(amplitude_hat, thresholds)  # (N, H, W)
    blocks = block_index((h, w), grid)
    orig_mean, cells = _block_means(amplitude, floor, blocks, rows * cols)
    hat_mean, _ = _block_means(amplitude_hat, floor, blocks, rows * cols)
    level = np.round((orig_mean - hat_mean) / np.float32(level_step)).astype(np.int64)
    level_symbols = level[cells > 0]  # (blocks with floor,) frames then blocks row-major

    out = bytearray(HEAD.pack(MAGIC, VERSION, rows, cols, 0, n, h, w, level_step, texture_step))
    for t, c in zip(thresholds, (~floor).sum(axis=(1, 2))):
        out += FRAME.pack(float(t), int(c))
    segments = [write_table(out, level_symbols, "level steps")]
    if texture_step:
        flat = _flat_level(hat_mean, level, level_step, blocks)  # (N, H, W)
        deviation = (amplitude.astype(np.float64) - flat)[floor]  # (M,) dB
        texture = np.trunc(deviation / np.float32(texture_step)).astype(np.int64)
        symbols, model = write_table(out, texture, "texture steps")
        values = np.bincount(symbols, deviation) / np.maximum(np.bincount(symbols), 1)
        out += values.astype("<f4").tobytes()  # each symbol's mean deviation, dB
        segments.append((symbols, model))
    out += ans_encode_segments(segments)
    return add_crc(out)


def decode_floor(data: bytes, amplitude_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A floor layer and the decoded amplitude it was made against -> (floor cells (N, H, W)
    bool, what the receiver puts there: (N, H, W) float32 dB, meaningful on the floor cells).
    Raises ``BitstreamError`` for a damaged layer or one made against another amplitude."""
    amplitude_hat = np.asarray(amplitude_hat, np.float32)
    check_crc(data, HEAD.size, "floor layer")
    magic, version, rows, cols, reserved, n, h, w, level_step, texture_step = HEAD.unpack_from(data)
    if magic != MAGIC or version != VERSION or reserved or not rows or not cols:
        raise BitstreamError("not a floor layer this version reads (magic, version or grid)",
                             "head")  # fmt: skip
    if not (level_step > 0 and np.isfinite(level_step) and np.isfinite(texture_step)
            and texture_step >= 0):  # fmt: skip
        raise BitstreamError("the floor layer's steps are not valid", "head")
    check_frames(amplitude_hat, n, h, w, "floor layer")
    at = HEAD.size + FRAME.size * n
    if len(data) < at + CRC.size:
        raise BitstreamError("the floor layer is truncated", "size")
    floor = ~read_cut(data, HEAD.size, amplitude_hat, "floor layer")
    blocks = block_index((h, w), (rows, cols))
    hat_mean, cells = _block_means(amplitude_hat, floor, blocks, rows * cols)
    first, _, level_model, at = read_table(data, at)
    segments = [(level_model, int((cells > 0).sum()))]
    if texture_step:
        _, k, texture_model, at = read_table(data, at)
        if len(data) < at + 4 * k + CRC.size:
            raise BitstreamError("the floor layer is truncated", "size")
        values = np.frombuffer(data, "<f4", count=k, offset=at).astype(np.float32)  # dB
        if not np.isfinite(values).all():
            raise BitstreamError("a texture value of the floor layer is not finite", "values")
        at += 4 * k
        segments.append((texture_model, int(floor.sum())))
    try:
        decoded = ans_decode_segments(data[at : -CRC.size], segments)
    except ValueError as err:
        raise BitstreamError(
            f"the floor layer's payload does not decode: {err}", "payload"
        ) from err
    level = np.zeros((n, rows * cols), np.int64)
    level[cells > 0] = decoded[0] + first
    if not texture_step:
        shift = (level * np.float32(level_step)).astype(np.float32)[:, blocks]  # (N, H, W)
        return floor, (amplitude_hat + shift).astype(np.float32)
    out = _flat_level(hat_mean, level, level_step, blocks).astype(np.float32)
    out[floor] += values[decoded[1]]
    return floor, out


def refine_floor(maps_hat: np.ndarray, data: bytes, amplitude_hat: np.ndarray) -> np.ndarray:
    """``maps_hat`` (N, H, W) dB, the decoded amplitude (perhaps already refined by an amplitude
    detail layer), with a floor layer's cells put in: (N, H, W) float32 (a new array).
    ``amplitude_hat``: the decoded amplitude (``floor="none"``) the layer was made against."""
    floor, values = decode_floor(data, amplitude_hat)
    out = np.array(maps_hat, np.float32)
    if out.shape != floor.shape:
        raise ValueError(f"amplitude maps {out.shape} and floor layer {floor.shape} differ")
    out[floor] = values[floor]
    return out


def is_floor_layer(data: bytes) -> bool:
    """Whether ``data`` starts as a floor layer does (its magic)."""
    return data[:4] == MAGIC


def _flat_level(hat_mean, level, level_step, blocks) -> np.ndarray:
    """(N, H, W) float64: each block's decoded floor mean (N, blocks) plus its level correction
    (N, blocks), spread over the block's cells."""
    return (hat_mean + level * np.float64(np.float32(level_step)))[:, blocks]


__all__ = ["GRID", "block_index", "decode_floor", "encode_floor", "is_floor_layer",
           "refine_floor"]  # fmt: skip
