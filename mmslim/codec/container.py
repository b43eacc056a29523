"""The ``.mmsl`` file: header, side info, frame strings, checksum.

The model never writes bytes (DESIGN §4): it hands over index grids, ``hi`` (N, h1, w1) and
``lo`` (N, h2, w2) with values in [0, K), plus side info, the per-frame (min, max) used to
normalise the map to [0, 1]. :mod:`mmslim.codec.frames` turns each frame's grids into a string in
one of three modes (``"fixed"``, ``"huffman"``, ``"ans"``); this module wraps the strings in a
file.

File layout (all integers little-endian)::

    offset       size          field
    0            4             magic b"MMSL"
    4            1             format version (uint8), currently 1; newer versions are refused
    5            1             coding mode: 0 fixed, 1 huffman, 2 ans
    6            1             map kind: 0 amplitude, 1 phase
    7            1             side-info dtype: 0 float32, 1 float16
    8            8             model fingerprint (model weights + prior, made by the caller)
    16           4             N, number of frames (uint32)
    20           4             K, codebook size (uint32, 2..32768)
    24           8             h1, w1, h2, w2: grid shapes (uint16 each)
    32           N × 2 × s     side info: (min, max) per frame, s = 4 (float32) or 2 (float16)
    ...          N × (4 + L)   frames: uint32 payload length L, then the frame string
    end − 4      4             CRC32 of every byte before it

Side-info precision: float32 by default. The map pipeline works in float32, so the decoder gets
exactly the encoder's (min, max) and de-normalisation adds **no** error; it costs 64 bits per frame
(about 1% of the rate at 6 bits/index). ``side_dtype="float16"`` halves that; its rounding error
(at most 2**-11 relative) moves every de-normalised value by at most max(|Δmin|, |Δmax|):
≤ 0.03 dB for a dB map within ±128 dB and ≤ 0.001 rad for phase in (−π, π]. float16 overflows
above 65504 (e.g. linear power), so encoding refuses non-finite results.

Any bad stream (truncated, corrupted, random, other model, newer version) raises
``BitstreamError`` saying what is wrong. The CRC catches corruption before anything is parsed;
every length and shape is still checked before use, and every decoded index is checked < K.
A single frame string carries no checksum of its own: ``decode_frames`` checks its structure
but cannot detect all corruption (the file's CRC does).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from mmslim.codec.frames import BitstreamError, decode_frames, encode_frames
from mmslim.codec.prior import IndexPrior
from mmslim.config import CODING_MODES, KINDS, MAX_CODES

MAGIC = b"MMSL"
FORMAT_VERSION = 1
SIDE_DTYPES = {"float32": "<f4", "float16": "<f2"}
HEADER = struct.Struct("<4sBBBB8sII4H")  # magic … shapes: 32 bytes
CRC_BYTES = 4
MAX_INDICES_PER_FILE = 1 << 26  # ~70k frames of 952 indices; bounds memory on hostile headers


# ---------------------------------------------------------------- the file


@dataclass(frozen=True)
class Header:
    """Everything in a file but the frame payloads (``read_header`` needs no prior)."""

    version: int
    mode: str  # "fixed" | "huffman" | "ans"
    kind: str  # "amplitude" | "phase"
    side_dtype: str  # "float32" | "float16"
    fingerprint: bytes  # 8 bytes
    num_frames: int  # N
    num_codes: int  # K
    shape_hi: tuple[int, int]  # (h1, w1)
    shape_lo: tuple[int, int]  # (h2, w2)
    frame_bytes: tuple[int, ...]  # payload length of each frame, without its 4-byte prefix
    file_bytes: int

    @property
    def side_bytes(self) -> int:
        return self.num_frames * 2 * np.dtype(SIDE_DTYPES[self.side_dtype]).itemsize


@dataclass(frozen=True)
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
    prior: IndexPrior | None,
    model_fingerprint: bytes,
    kind: str,
    mode: str = "ans",
    side_dtype: str = "float32",
    num_codes: int | None = None,
) -> bytes:
    """Write a file. indices_hi: (N, h1, w1), indices_lo: (N, h2, w2) int in [0, K);
    side: (N, 2) per-frame (min, max); model_fingerprint: 8 bytes. Layout in the module doc."""
    if kind not in KINDS or side_dtype not in SIDE_DTYPES:
        raise ValueError(f"kind must be in {KINDS}, side_dtype in {tuple(SIDE_DTYPES)}")
    if len(model_fingerprint) != 8:
        raise ValueError("model_fingerprint must be 8 bytes")
    strings = encode_frames(indices_hi, indices_lo, mode, prior, num_codes)
    num_codes = prior.num_codes if prior is not None else num_codes
    (n, *shape_hi), (_, *shape_lo) = np.shape(indices_hi), np.shape(indices_lo)
    if max(*shape_hi, *shape_lo) > 0xFFFF:
        raise ValueError("grid sides must be below 65536")
    side = np.asarray(side, dtype=np.float64)
    with np.errstate(over="ignore"):  # overflow to inf is refused just below
        side_stored = side.astype(SIDE_DTYPES[side_dtype])  # (N, 2)
    if side.shape != (n, 2) or not np.isfinite(side_stored).all():
        raise ValueError(f"side must be finite (N, 2) = ({n}, 2) in {side_dtype}, got {side.shape}")
    parts = [
        HEADER.pack(
            MAGIC,
            FORMAT_VERSION,
            CODING_MODES.index(mode),
            KINDS.index(kind),
            list(SIDE_DTYPES).index(side_dtype),
            bytes(model_fingerprint),
            n,
            num_codes,
            *shape_hi,
            *shape_lo,
        ),
        side_stored.tobytes(),
    ]
    for string in strings:
        parts += [struct.pack("<I", len(string)), string]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def file_bytes(payload_bytes: int, num_frames: int, side_dtype: str = "float32") -> int:
    """Size of a file of ``num_frames`` frames whose strings total ``payload_bytes``: header,
    side info, a 4-byte length per frame and the CRC around them. What any codec pays to be
    sent as frames in this container (the rate benchmark charges the classical codecs this)."""
    side = num_frames * 2 * np.dtype(SIDE_DTYPES[side_dtype]).itemsize
    return HEADER.size + side + 4 * num_frames + payload_bytes + CRC_BYTES


def read_header(data: bytes) -> Header:
    """Parse and check everything but the payloads; raises BitstreamError on any problem."""
    return _parse(data)[0]


def decode_file(
    data: bytes, prior: IndexPrior | None, model_fingerprint: bytes | None
) -> DecodedFile:
    """Read a file made by ``encode_file``. ``prior`` is needed for "ans" files.

    model_fingerprint: the decoding model's 8 bytes; a file made by another model is refused.
    ``None`` skips that check (for tools such as ``rate_report``; reconstructions would then be
    silently wrong if the models differ).
    """
    header, side, strings = _parse(data)
    if model_fingerprint is not None and header.fingerprint != bytes(model_fingerprint):
        raise BitstreamError(
            f"file was made by model {header.fingerprint.hex()}, this model is "
            f"{bytes(model_fingerprint).hex()}: load the matching checkpoint"
        )
    if header.mode == "ans" and (prior is None or not prior.is_fitted):
        raise BitstreamError("this file is ANS-coded: decoding needs the model's fitted prior")
    if prior is not None and header.mode == "ans" and prior.num_codes != header.num_codes:
        raise BitstreamError(f"file has K={header.num_codes}, the prior K={prior.num_codes}")
    prior = prior if header.mode == "ans" else None
    hi, lo = decode_frames(
        strings, header.shape_hi, header.shape_lo, header.mode, prior, header.num_codes
    )
    return DecodedFile(header, hi, lo, side)


def _parse(data: bytes) -> tuple[Header, np.ndarray, list[bytes]]:
    """Check magic, version, CRC and every field; return header, side (N, 2), frame strings."""
    data = bytes(data)
    if len(data) < HEADER.size + CRC_BYTES:
        raise BitstreamError(f"file of {len(data)} bytes is shorter than the fixed header")
    magic, version, mode, kind, side_code, fingerprint, n, k, *shapes = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise BitstreamError(f"not an mmslim file (magic {magic!r}, expected {MAGIC!r})")
    if version > FORMAT_VERSION:
        raise BitstreamError(
            f"file format version {version} is newer than this mmslim reads "
            f"({FORMAT_VERSION}): upgrade mmslim"
        )
    if version != FORMAT_VERSION:
        raise BitstreamError(f"unknown file format version {version}")
    (crc,) = struct.unpack_from("<I", data, len(data) - CRC_BYTES)
    if zlib.crc32(data[:-CRC_BYTES]) != crc:
        raise BitstreamError("checksum mismatch: the file is truncated or corrupted")
    if mode >= len(CODING_MODES) or kind >= len(KINDS) or side_code >= len(SIDE_DTYPES):
        raise BitstreamError(f"unknown mode/kind/side-dtype codes {mode}/{kind}/{side_code}")
    if not 2 <= k <= MAX_CODES or min(shapes) < 1:
        raise BitstreamError(f"invalid K={k} or grid shapes {shapes}")
    if n * (shapes[0] * shapes[1] + shapes[2] * shapes[3]) > MAX_INDICES_PER_FILE:
        raise BitstreamError(f"{n} frames of grids {shapes} exceed the sanity limit on indices")
    side_dtype = list(SIDE_DTYPES)[side_code]
    end = len(data) - CRC_BYTES
    side_size = n * 2 * np.dtype(SIDE_DTYPES[side_dtype]).itemsize
    if HEADER.size + side_size + 4 * n > end:
        raise BitstreamError(f"file too short for {n} frames")
    side = np.frombuffer(data, SIDE_DTYPES[side_dtype], 2 * n, HEADER.size).reshape(n, 2)
    if not np.isfinite(side).all():
        raise BitstreamError("side info holds non-finite values")
    offset, strings = HEADER.size + side_size, []
    for frame in range(n):
        if offset + 4 > end:
            raise BitstreamError(f"frame {frame}'s length field runs past the end of the file")
        (size,) = struct.unpack_from("<I", data, offset)
        if offset + 4 + size > end:
            raise BitstreamError(f"frame {frame} claims {size} bytes, past the end of the file")
        strings.append(data[offset + 4 : offset + 4 + size])
        offset += 4 + size
    if offset != end:
        raise BitstreamError(f"{end - offset} unexpected bytes after the last frame")
    header = Header(
        version=version,
        mode=CODING_MODES[mode],
        kind=KINDS[kind],
        side_dtype=side_dtype,
        fingerprint=fingerprint,
        num_frames=n,
        num_codes=k,
        shape_hi=(shapes[0], shapes[1]),
        shape_lo=(shapes[2], shapes[3]),
        frame_bytes=tuple(len(s) for s in strings),
        file_bytes=len(data),
    )
    return header, side.astype(np.float32), strings
