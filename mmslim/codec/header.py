"""The fixed header of an ``.mmsl`` file (layout in :mod:`mmslim.codec.container`) and the
checks on it, all made before a single frame record is read.

In order: length, magic, version (format 1 files are refused with the way out), CRC, the mode,
kind and side-dtype codes, flags and reserved bytes, the HMAC tag (:mod:`mmslim.codec.auth`), then
what the decoder knows (:class:`Expected`: model fingerprint, K, kind, frame shape and the grids
the model makes for it), then K and the grid shapes themselves. Each failure is a
``BitstreamError`` naming its field.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib

import numpy as np

from mmslim.codec import auth
from mmslim.codec.frames import BitstreamError
from mmslim.config import CODING_MODES, KINDS, MAX_CODES

MAGIC = b"MMSL"
FORMAT_VERSION = 3
SIDE_DTYPES = {"float32": "<f4", "float16": "<f2"}
HEADER = struct.Struct("<4sBBBBB3s8sIII2H4H")  # magic … grid shapes: 44 bytes
SEQUENCE, LENGTH = struct.Struct("<H"), struct.Struct("<I")  # per-frame fields around the side info
CRC_BYTES = 4
FLAG_TAGGED = 1


@dataclasses.dataclass(frozen=True)
class Header:
    """Everything in a file but the frame payloads (``read_header`` needs no prior or key)."""

    version: int
    mode: str  # "fixed" | "huffman" | "ans"
    kind: str  # "amplitude" | "phase"
    side_dtype: str  # "float32" | "float16"
    tagged: bool  # an HMAC tag precedes the CRC
    fingerprint: bytes  # 8 bytes
    num_frames: int  # N
    num_codes: int  # K
    first_sequence: int  # sequence number of frame 0
    frame_shape: tuple[int, int]  # (H, W); (0, 0) if the writer did not record it
    shape_hi: tuple[int, int]  # (h1, w1)
    shape_lo: tuple[int, int]  # (h2, w2)
    frame_bytes: tuple[int, ...]  # payload length of each frame, without its record fields
    file_bytes: int

    @property
    def side_bytes(self) -> int:
        return self.num_frames * 2 * np.dtype(SIDE_DTYPES[self.side_dtype]).itemsize

    @property
    def framing_bytes(self) -> int:
        """Per-frame sequence number and payload length."""
        return self.num_frames * (SEQUENCE.size + LENGTH.size)

    @property
    def fixed_bytes(self) -> int:
        """Header, HMAC tag (if any) and CRC."""
        return HEADER.size + (auth.TAG_BYTES if self.tagged else 0) + CRC_BYTES


@dataclasses.dataclass(frozen=True)
class Expected:
    """What the decoding side knows before it reads a file (e.g. from its model); every field
    set is checked against the header before anything is allocated. None skips a check."""

    fingerprint: bytes | None = None  # the decoding model's 8 bytes
    num_codes: int | None = None  # K of the model
    kind: str | None = None  # "amplitude" | "phase"
    frame_shape: tuple[int, int] | None = None  # (H, W) the receiver decodes
    shape_hi: tuple[int, int] | None = None  # (h1, w1) the model makes for frame_shape
    shape_lo: tuple[int, int] | None = None  # (h2, w2)
    first_sequence: int | None = None  # where the previous file of a stream ended


def pack_header(
    mode: str,
    kind: str,
    side_dtype: str,
    tagged: bool,
    fingerprint: bytes,
    num_frames: int,
    num_codes: int,
    first_sequence: int,
    frame_shape: tuple[int, int],
    shape_hi: tuple[int, int],
    shape_lo: tuple[int, int],
) -> bytes:
    """The 44 header bytes of a format-2 file."""
    return HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        CODING_MODES.index(mode),
        KINDS.index(kind),
        list(SIDE_DTYPES).index(side_dtype),
        FLAG_TAGGED if tagged else 0,
        bytes(3),
        bytes(fingerprint),
        num_frames,
        num_codes,
        first_sequence,
        *frame_shape,
        *shape_hi,
        *shape_lo,
    )


def parse_header(data: bytes, expected: Expected, key, verify_tag: bool) -> tuple[dict, int]:
    """Check the fixed header of ``data`` (the whole file); return its fields (those of
    :class:`Header` but ``frame_bytes`` and ``file_bytes``) and where the frame records end."""
    if len(data) < HEADER.size + CRC_BYTES:
        raise BitstreamError(f"file of {len(data)} bytes is shorter than the header", "length")
    magic, version, mode, kind, side_code, flags, reserved, fingerprint, n, k, first, *shapes = (
        HEADER.unpack_from(data)
    )
    if magic != MAGIC:
        raise BitstreamError(f"not an mmslim file (magic {magic!r}, expected {MAGIC!r})", "magic")
    _check_version(version)
    (crc,) = struct.unpack_from("<I", data, len(data) - CRC_BYTES)
    if zlib.crc32(memoryview(data)[:-CRC_BYTES]) != crc:
        raise BitstreamError("checksum mismatch: the file is truncated or corrupted", "checksum")
    if mode >= len(CODING_MODES) or kind >= len(KINDS) or side_code >= len(SIDE_DTYPES):
        raise BitstreamError(
            f"unknown mode/kind/side-dtype codes {mode}/{kind}/{side_code}", "codes"
        )
    if flags & ~FLAG_TAGGED or any(reserved):
        raise BitstreamError(f"unknown flags {flags:#04x} or nonzero reserved bytes", "flags")
    tagged, end = bool(flags & FLAG_TAGGED), len(data) - CRC_BYTES
    if tagged:
        end -= auth.TAG_BYTES
        if end < HEADER.size:
            raise BitstreamError("file too short for its HMAC tag", "tag")
    if verify_tag:
        _check_tag(data, end, tagged, key)
    fields = {
        "fingerprint": fingerprint,
        "num_codes": k,
        "kind": KINDS[kind],
        "frame_shape": tuple(shapes[:2]),
        "shape_hi": tuple(shapes[2:4]),
        "shape_lo": tuple(shapes[4:]),
        "first_sequence": first,
    }
    _check_expected(expected, fields)
    if not 2 <= k <= MAX_CODES:
        raise BitstreamError(f"K={k} is outside [2, {MAX_CODES}]", "num_codes")
    frame_shape = fields["frame_shape"]
    if min(shapes[2:]) < 1 or (min(frame_shape) < 1 and max(frame_shape) > 0):
        raise BitstreamError(f"invalid frame shape {frame_shape} or grids {shapes[2:]}", "shapes")
    fields.update(
        version=version,
        mode=CODING_MODES[mode],
        side_dtype=list(SIDE_DTYPES)[side_code],
        tagged=tagged,
        num_frames=n,
    )
    return fields, end


def _check_version(version: int) -> None:
    if version == FORMAT_VERSION:
        return
    if version > FORMAT_VERSION:
        message = (
            f"file format version {version} is newer than this mmslim reads "
            f"({FORMAT_VERSION}): upgrade mmslim"
        )
    elif version in (1, 2):
        message = (
            f"file is in format {version}, which predates format 3 (format 2: frame sequence "
            "numbers, a new model fingerprint; format 3: the coarse grid first in ANS frames); "
            "re-compress the maps with the model (`mmslim compress`)"
        )
    else:
        message = f"unknown file format version {version}"
    raise BitstreamError(message, "version")


def _check_tag(data: bytes, end: int, tagged: bool, key) -> None:
    if tagged and key is None:
        raise BitstreamError(
            "file carries an HMAC tag: pass the key it was made with (--key-file) to decode it",
            "tag",
        )
    if key is not None and not tagged:
        raise BitstreamError(
            "a key was given but the file carries no HMAC tag: it was not made with a key, or "
            "its tag was stripped; refusing it",
            "tag",
        )
    if key is not None and not auth.verify(
        key, memoryview(data)[:end], data[end : end + auth.TAG_BYTES]
    ):
        raise BitstreamError(
            "HMAC tag mismatch: the file was altered, or made with another key", "tag"
        )


def _check_expected(expected: Expected, found: dict) -> None:
    for field in dataclasses.fields(expected):
        name, want = field.name, getattr(expected, field.name)
        if want is None:
            continue
        if name == "fingerprint":
            if found[name] != bytes(want):
                raise BitstreamError(
                    f"file was made by model {found[name].hex()}, this model is "
                    f"{bytes(want).hex()}: load the matching checkpoint",
                    name,
                )
            continue
        if name == "first_sequence" and found[name] != want:
            raise BitstreamError(
                f"file starts at frame {found[name]}, but the stream is at frame {want}: frames "
                "were lost, repeated or reordered between files",
                name,
            )
        want = tuple(want) if isinstance(want, (list, tuple)) else want
        if found[name] != want:
            raise BitstreamError(
                f"file has {name} {found[name]}, but the decoding model expects {want}: "
                "a file for another model or frame size, or an edited header",
                name,
            )


__all__ = [
    "CRC_BYTES",
    "FORMAT_VERSION",
    "HEADER",
    "LENGTH",
    "MAGIC",
    "SEQUENCE",
    "SIDE_DTYPES",
    "Expected",
    "Header",
    "pack_header",
    "parse_header",
]
