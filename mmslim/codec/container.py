"""The ``.mmsl`` file: header, frame records, an optional HMAC tag, checksum.

The model never writes bytes (DESIGN §4): it hands over index grids, ``hi`` (N, h1, w1) and
``lo`` (N, h2, w2) with values in [0, K), plus side info, the per-frame (min, max) used to
normalise the map to [0, 1]. :mod:`mmslim.codec.frames` turns each frame's grids into a string in
one of three modes (``"fixed"``, ``"huffman"``, ``"ans"``); this module wraps the strings in a
file.

File layout, format 3 (all integers little-endian)::

    offset       size          field
    0            4             magic b"MMSL"
    4            1             format version (uint8), 2; other versions are refused
    5            1             coding mode: 0 fixed, 1 huffman, 2 ans
    6            1             map kind: 0 amplitude, 1 phase
    7            1             side-info dtype: 0 float32, 1 float16
    8            1             flags: bit 0 set if an HMAC tag precedes the CRC; other bits 0
    9            3             reserved, zero
    12           8             model fingerprint (model weights + prior, made by the caller)
    20           4             N, number of frames (uint32)
    24           4             K, codebook size (uint32, 2..32768)
    28           4             sequence number of the first frame (uint32)
    32           4             H, W: frame shape (uint16 each; 0 x 0 if not recorded)
    36           8             h1, w1, h2, w2: grid shapes (uint16 each)
    44           N records     per frame: sequence number (uint16, (first + i) mod 2**16),
                               (min, max) side info (2 × s bytes, s = 4 float32 or 2 float16),
                               payload length L (uint32), then the frame string (L bytes)
    end − 36     32            HMAC-SHA256 of every byte before it (only if flag bit 0)
    end − 4      4             CRC32 of every byte before it

Integrity. The CRC catches accidents (flipped bits, truncation). Frame sequence numbers catch
frames dropped, duplicated or reordered inside a file, and the first sequence number lets a
receiver check continuity across files. Neither resists deliberate edits (anyone can recompute
them): for a hostile link, pass a key and every file carries an HMAC tag (:mod:`mmslim.codec.auth`).

Bounded decoding. Everything a decoder will allocate follows from the header, so the header is
checked first: against the decoding model when one is given (:class:`Expected`: fingerprint, K,
kind, frame shape and the grids the model makes for it), then every frame record (sequence number,
side info finite, min < max and within the plausible range of the kind, payload length within what
its index count can need in its mode), all before any frame is decoded. Each entropy decoder then
consumes exactly its payload. Any bad file raises ``BitstreamError`` naming the field.

Side-info precision: float32 by default, so de-normalisation adds **no** error; it costs 64 bits
per frame. ``side_dtype="float16"`` halves that; its rounding error (at most 2**-11 relative)
moves every de-normalised value by at most max(|Δmin|, |Δmax|): ≤ 0.03 dB for a dB map within
±128 dB and ≤ 0.001 rad for phase.
"""

from __future__ import annotations

import dataclasses
import math
import struct
import zlib
from typing import TYPE_CHECKING

import numpy as np

from mmslim.codec import auth
from mmslim.codec.frames import BitstreamError, decode_frames, encode_frames, payload_bounds
from mmslim.codec.header import (
    CRC_BYTES,
    HEADER,
    LENGTH,
    SEQUENCE,
    SIDE_DTYPES,
    Expected,
    Header,
    pack_header,
    parse_header,
)
from mmslim.codec.inputs import VALUE_RANGES
from mmslim.codec.tables import PriorTables
from mmslim.config import KINDS

if TYPE_CHECKING:  # coding only reads a prior's tables: no PyTorch needed here
    from mmslim.codec.prior import IndexPrior

# Without the decoding model's grid sizes (Expected.shape_hi/lo) nothing but the header says how
# many indices a frame holds, and an ANS payload cannot say it either (mmslim.codec.ans): this
# caps what such a decode allocates (512 MB of int64). decompress_maps always passes the grids.
MAX_INDICES_PER_FILE = 1 << 26


@dataclasses.dataclass(frozen=True)
class DecodedFile:
    header: Header
    indices_hi: np.ndarray  # (N, h1, w1) int64
    indices_lo: np.ndarray  # (N, h2, w2) int64
    side: np.ndarray  # (N, 2) float32: per-frame (min, max)

    @property
    def kind(self) -> str:
        return self.header.kind

    @property
    def mode(self) -> str:
        return self.header.mode


def encode_file(
    indices_hi,
    indices_lo,
    side,
    prior: IndexPrior | PriorTables | None,
    model_fingerprint: bytes,
    kind: str,
    mode: str = "ans",
    side_dtype: str = "float32",
    num_codes: int | None = None,
    *,
    frame_shape: tuple[int, int] | None = None,
    first_sequence: int = 0,
    key: bytes | None = None,
) -> bytes:
    """Write a file. indices_hi: (N, h1, w1), indices_lo: (N, h2, w2) int in [0, K);
    side: (N, 2) per-frame (min, max), min < max, within the plausible range of ``kind``;
    model_fingerprint: 8 bytes; frame_shape: (H, W) the grids code (recorded for the decoder);
    first_sequence: number of frame 0; key: add an HMAC tag. Layout in the module doc."""
    if kind not in KINDS or side_dtype not in SIDE_DTYPES:
        raise ValueError(f"kind must be in {KINDS}, side_dtype in {tuple(SIDE_DTYPES)}")
    if len(model_fingerprint) != 8:
        raise ValueError("model_fingerprint must be 8 bytes")
    if not 0 <= first_sequence < 2**32:
        raise ValueError(f"first_sequence must fit 32 bits, got {first_sequence}")
    strings = encode_frames(indices_hi, indices_lo, mode, prior, num_codes)
    num_codes = prior.num_codes if prior is not None else num_codes
    (n, *shape_hi), (_, *shape_lo) = np.shape(indices_hi), np.shape(indices_lo)
    frame_shape = tuple(frame_shape) if frame_shape is not None else (0, 0)
    if max(*shape_hi, *shape_lo, *frame_shape) > 0xFFFF:
        raise ValueError("frame and grid sides must be below 65536")
    side = np.asarray(side, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to inf is refused just below
        side_stored = side.astype(SIDE_DTYPES[side_dtype])  # (N, 2)
    if side.shape != (n, 2) or _bad_side(side_stored.astype(np.float64), kind).any():
        low, high = VALUE_RANGES[kind]
        raise ValueError(
            f"side must be (N, 2) = ({n}, 2) pairs min < max, finite in {side_dtype} and within "
            f"[{low:.6g}, {high:.6g}] for {kind}; got shape {side.shape}"
        )
    shapes = (frame_shape, tuple(shape_hi), tuple(shape_lo))
    header = (mode, kind, side_dtype, key is not None, model_fingerprint, n, num_codes)
    parts = [pack_header(*header, first_sequence, *shapes)]
    for i, string in enumerate(strings):
        sequence = SEQUENCE.pack((first_sequence + i) & 0xFFFF)
        parts += [sequence, side_stored[i].tobytes(), LENGTH.pack(len(string)), string]
    body = b"".join(parts)
    if key is not None:
        body += auth.tag(key, body)
    return body + struct.pack("<I", zlib.crc32(body))


def file_bytes(
    payload_bytes: int, num_frames: int, side_dtype: str = "float32", tagged: bool = False
) -> int:
    """Size of a file of ``num_frames`` frames whose strings total ``payload_bytes``: header,
    per-frame records (sequence number, side info, length), tag and CRC around them. What any
    codec pays to be sent as frames in this container (the rate benchmark charges it)."""
    side = 2 * np.dtype(SIDE_DTYPES[side_dtype]).itemsize
    tag = auth.TAG_BYTES if tagged else 0
    record = SEQUENCE.size + side + LENGTH.size
    return HEADER.size + num_frames * record + payload_bytes + tag + CRC_BYTES


def read_header(data: bytes) -> Header:
    """Parse and check everything but the payloads and the tag; raises BitstreamError."""
    return _parse(bytes(data), Expected(), key=None, verify_tag=False)[0]


def decode_file(
    data: bytes,
    prior: IndexPrior | PriorTables | None,
    model_fingerprint: bytes | None,
    expected: Expected | None = None,
    key: bytes | None = None,
) -> DecodedFile:
    """Read a file made by ``encode_file``. ``prior`` is needed for "ans" files.

    model_fingerprint: the decoding model's 8 bytes; a file made by another model is refused.
    ``None`` skips that check (for tools such as ``rate_report``; reconstructions would then be
    silently wrong if the models differ). expected: what else the decoder knows (see
    :class:`Expected`). key: the HMAC key; a tagged file needs it, and with a key an untagged
    file is refused (its tag may have been stripped).
    """
    expected = expected or Expected()
    if model_fingerprint is not None:
        expected = dataclasses.replace(expected, fingerprint=bytes(model_fingerprint))
    header, side, strings = _parse(bytes(data), expected, key, verify_tag=True)
    if header.mode == "ans" and (prior is None or not prior.is_fitted):
        raise BitstreamError(
            "this file is ANS-coded: decoding needs the model's fitted prior", "mode"
        )
    if prior is not None and header.mode == "ans" and prior.num_codes != header.num_codes:
        raise BitstreamError(
            f"file has K={header.num_codes}, the prior K={prior.num_codes}", "num_codes"
        )
    prior = prior if header.mode == "ans" else None
    hi, lo = decode_frames(
        strings, header.shape_hi, header.shape_lo, header.mode, prior, header.num_codes
    )
    return DecodedFile(header, hi, lo, side)


def _parse(data: bytes, expected: Expected, key, verify_tag: bool):
    """Check every field in file order; return header, side (N, 2) float32, frame strings."""
    fields, end = parse_header(data, expected, key, verify_tag)
    n, first, mode, kind = (fields[k] for k in ("num_frames", "first_sequence", "mode", "kind"))
    n_hi, n_lo = math.prod(fields["shape_hi"]), math.prod(fields["shape_lo"])
    shortest, longest = payload_bounds(mode, n_hi, n_lo, fields["num_codes"])
    side_type = np.dtype(SIDE_DTYPES[fields["side_dtype"]])
    record = SEQUENCE.size + 2 * side_type.itemsize + LENGTH.size
    if expected.shape_hi is None and n * (n_hi + n_lo) > MAX_INDICES_PER_FILE:
        raise BitstreamError(
            f"{n} frames of {n_hi + n_lo} indices exceed {MAX_INDICES_PER_FILE} indices; decode "
            "with the model's grid sizes (decompress_maps, or Expected) to lift the limit",
            "num_frames",
        )
    if HEADER.size + n * (record + shortest) > end:
        raise BitstreamError(
            f"file too short for {n} frames of at least {record + shortest} bytes each",
            "num_frames",
        )
    side, strings, offset = np.empty((n, 2), np.float64), [], HEADER.size
    for i in range(n):
        if offset + record > end:
            raise BitstreamError(f"frame {i}'s record runs past the end of the file", f"frame {i}")
        (sequence,) = SEQUENCE.unpack_from(data, offset)
        if sequence != (first + i) & 0xFFFF:
            raise BitstreamError(
                f"frame {i} has sequence number {sequence}, expected {(first + i) & 0xFFFF}: "
                "frames were dropped, duplicated or reordered",
                f"frame {i} sequence number",
            )
        side[i] = np.frombuffer(data, side_type, 2, offset + SEQUENCE.size)
        (size,) = LENGTH.unpack_from(data, offset + record - LENGTH.size)
        if not shortest <= size <= longest:
            raise BitstreamError(
                f"frame {i} claims {size} payload bytes; {mode} frames of {n_hi + n_lo} indices "
                f"take {shortest} to {longest}",
                f"frame {i} payload length",
            )
        if offset + record + size > end:
            raise BitstreamError(
                f"frame {i} claims {size} bytes, past the end of the file",
                f"frame {i} payload length",
            )
        strings.append(data[offset + record : offset + record + size])
        offset += record + size
    if offset != end:
        raise BitstreamError(f"{end - offset} unexpected bytes after the last frame", "length")
    bad = _bad_side(side, kind)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        low, high = VALUE_RANGES[kind]
        raise BitstreamError(
            f"frame {i} side info ({side[i, 0]:.6g}, {side[i, 1]:.6g}) is not a finite pair "
            f"min < max within [{low:.6g}, {high:.6g}] for {kind}",
            f"frame {i} side info",
        )
    header = Header(**fields, frame_bytes=tuple(map(len, strings)), file_bytes=len(data))
    return header, side.astype(np.float32), strings


def _bad_side(side: np.ndarray, kind: str) -> np.ndarray:
    """(N,) bool: pairs that are not finite, min < max, within the plausible range of kind."""
    low, high = VALUE_RANGES[kind]
    with np.errstate(invalid="ignore"):
        good = np.isfinite(side).all(axis=1) & (side[:, 0] < side[:, 1])
        good &= (side[:, 0] >= low) & (side[:, 1] <= high)
    return ~good


__all__ = [
    "DecodedFile",
    "Expected",
    "Header",
    "decode_file",
    "encode_file",
    "file_bytes",
    "read_header",
]
