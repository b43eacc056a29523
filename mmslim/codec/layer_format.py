"""What the layers beside a file share in their bytes (:mod:`mmslim.codec.detail`,
:mod:`mmslim.codec.floor_layer`, :mod:`mmslim.codec.repairs`): a CRC32 of every byte before it
at the end (:func:`check_crc`), a check that a layer is for the frames given
(:func:`check_frames`), and symbol tables: an alphabet of integers and the ``constriction``
model both ends code it with (:mod:`mmslim.codec.ans`).

A table is written as ``model (uint8), first symbol (int16), K (uint16)``, then, for model 0
only, ``K counts (uint32)``: symbol ``first + i`` occurred ``counts[i]`` times in what the layer
codes, and both ends build a categorical model from the counts. Model 1 is uniform over the K
symbols and sends no counts. The sender takes whichever costs fewer bytes, counts included: a
layer of one frame codes a few dozen symbols, for which 4 bytes a count would cost more than
the symbols themselves (the floor layer and the repair list code with these tables).
"""

from __future__ import annotations

import struct
import zlib

import constriction
import numpy as np

from mmslim.codec.ans import categorical_model
from mmslim.codec.frames import BitstreamError

TABLE = struct.Struct("<BhH")  # model (0 counts, 1 uniform), first symbol, K
COUNTS, UNIFORM = 0, 1
MAX_SYMBOLS = 4096  # the largest alphabet a table may hold
CRC = struct.Struct("<I")


def add_crc(out: bytearray) -> bytes:
    """``out`` with the CRC32 of all its bytes appended."""
    return bytes(out + CRC.pack(zlib.crc32(out)))


def check_crc(data: bytes, head_size: int, layer: str) -> None:
    """Raise ``BitstreamError`` unless ``data`` holds a head of ``head_size`` bytes and a CRC32
    at its end that matches every byte before it. ``layer`` names it in the message."""
    if len(data) < head_size + CRC.size:
        raise BitstreamError(f"a {layer} has at least {head_size + CRC.size} bytes", "size")
    if zlib.crc32(data[: -CRC.size]) != CRC.unpack(data[-CRC.size :])[0]:
        raise BitstreamError(f"the {layer}'s CRC does not match: it is damaged", "checksum")


def check_frames(maps: np.ndarray, n: int, h: int, w: int, layer: str) -> None:
    """Raise ``BitstreamError`` unless ``maps`` are the (n, h, w) frames a layer is for."""
    if maps.shape != (n, h, w):
        raise BitstreamError(
            f"the {layer} is for {n} frames of {h} x {w}, the maps given are {maps.shape}: pass "
            "the decoded amplitude of the same frames", "frames"
        )  # fmt: skip


def write_table(out: bytearray, symbols: np.ndarray, what: str = "symbols"):
    """Append the table of ``symbols`` (M,) int to ``out``; returns (``symbols - first`` (M,),
    the model to code them with). ``what`` names them in the error for an alphabet too large."""
    symbols = np.asarray(symbols, np.int64)
    first = int(symbols.min()) if symbols.size else 0
    shifted = symbols - first
    counts = np.bincount(shifted, minlength=2)  # constriction needs two symbols at least
    if len(counts) > MAX_SYMBOLS or not -0x8000 <= first <= 0x7FFF:
        raise ValueError(f"{len(counts)} {what} from {first}: more than a table holds "
                         f"({MAX_SYMBOLS}); use a coarser step")  # fmt: skip
    k, seen = len(counts), counts[counts > 0]
    ideal_bits = float(-(seen * np.log2(seen / max(symbols.size, 1))).sum())
    if 4 * k + ideal_bits / 8 < symbols.size * np.log2(k) / 8:  # the counts pay for themselves
        out += TABLE.pack(COUNTS, first, k) + counts.astype("<u4").tobytes()
        return shifted, categorical_model(counts + (counts.sum() == 0))
    out += TABLE.pack(UNIFORM, first, k)
    return shifted, constriction.stream.model.Uniform(k)


def read_table(data: bytes, at: int, trailer: int = 4):
    """The table at offset ``at`` of ``data`` (``trailer`` bytes at the end are not part of any
    table): (first symbol, K, categorical model, offset after the table). Raises
    ``BitstreamError`` if it is cut short or holds no valid alphabet."""
    if len(data) < at + TABLE.size + trailer:
        raise BitstreamError("the layer is truncated (a symbol table)", "size")
    model, first, k = TABLE.unpack_from(data, at)
    at += TABLE.size
    if model == UNIFORM and 2 <= k <= MAX_SYMBOLS:
        return first, k, constriction.stream.model.Uniform(k), at
    if model != COUNTS or not 2 <= k <= MAX_SYMBOLS or len(data) < at + 4 * k + trailer:
        raise BitstreamError("a symbol table of the layer is not valid", "table")
    counts = np.frombuffer(data, "<u4", count=k, offset=at).astype(np.float64)
    return first, k, categorical_model(counts + (counts.sum() == 0)), at + 4 * k


__all__ = [
    "COUNTS",
    "CRC",
    "MAX_SYMBOLS",
    "TABLE",
    "UNIFORM",
    "add_crc",
    "check_crc",
    "check_frames",
    "read_table",
    "write_table",
]
