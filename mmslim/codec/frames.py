"""Frame strings: one frame's two index grids to bytes and back, in one of three modes.

- ``"ans"``     ANS against the model's :class:`~mmslim.codec.prior.IndexPrior` (near the ideal
                cross-entropy; :mod:`mmslim.codec.ans`),
- ``"huffman"`` the paper's coder: a canonical Huffman table per frame, sent in the frame and so
                counted in the rate (:mod:`mmslim.codec.prefix`),
- ``"fixed"``   every index in ceil(log2 K) bits (9 for K = 512), the honest baseline.

Byte layouts::

    fixed    bits of hi then lo, ceil(log2 K) bits per index, MSB first, zero-padded to a byte
    huffman  Huffman table of hi, table of lo (see mmslim.codec.prefix), then the codewords of
             hi then lo, MSB first, zero-padded to a byte
    ans      the coarse grid first: a uint16 (little-endian) count of the 32-bit words of lo's
             ANS stream, that stream, then hi's ANS stream to the end; each grid coded with its
             branch's probabilities from the prior. A receiver that has only the first bytes of
             a frame decodes the coarse grid alone (:meth:`FrameCoder.decode_coarse`) to a
             preview (layered decoding); the two streams cost ~6 bytes more than one.

Bounds before work: :func:`payload_bounds` gives the shortest and longest string a frame of n
indices can have in each mode (fixed: exactly ``ceil(n ceil(log2 K) / 8)`` bytes; Huffman: two
tables plus 1 to 15 bits per index; ANS: 2 bytes plus, per stream, at most 24 bits per index plus
64); a string outside them
is refused before it is decoded, and every decoder then consumes exactly its string. A frame
string carries no checksum of its own: ``decode_frames`` checks its structure but cannot detect
all corruption (the file's CRC does, :mod:`mmslim.codec.container`).
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING

import numpy as np

from mmslim.codec import prefix
from mmslim.codec.ans import (
    ans_decode_segments,
    ans_encode_segments,
    categorical_model,
    max_payload_bytes,
)
from mmslim.codec.tables import PriorTables, check_indices
from mmslim.config import BRANCHES, CODING_MODES, MAX_CODES

if TYPE_CHECKING:  # coding only reads a prior's tables: no PyTorch needed here
    from mmslim.codec.prior import IndexPrior

MAX_INDICES_PER_FRAME = 1 << 20  # bounds memory when a hostile header claims huge grids
LO_WORDS = struct.Struct("<H")  # ans frames: 32-bit words of the coarse stream, which comes first


class BitstreamError(ValueError):
    """The one exception raised for any stream that cannot be decoded.

    ``field`` names the part of the file that is wrong (``"version"``, ``"checksum"``,
    ``"shape_hi"``, ``"frame 3 payload"``, ...); the message says what is wrong and what to do.
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def payload_bounds(mode: str, n_hi: int, n_lo: int, num_codes: int) -> tuple[int, int]:
    """(shortest, longest) frame string, in bytes, for n_hi + n_lo indices over K codes."""
    n = n_hi + n_lo
    if mode == "fixed":
        size = math.ceil(n * int(prefix.fixed_lengths(num_codes)[0]) / 8)
        return size, size
    if mode == "huffman":  # per table: the presence bitmap, then 4 bits per present code
        bitmap = math.ceil(num_codes / 8)
        tables_min = sum(bitmap + (1 if m else 0) for m in (n_hi, n_lo))
        tables_max = sum(bitmap + math.ceil(min(num_codes, m) / 2) for m in (n_hi, n_lo))
        return tables_min + math.ceil(n / 8), tables_max + math.ceil(prefix.MAX_CODE_LENGTH * n / 8)
    if mode == "ans":
        return LO_WORDS.size, LO_WORDS.size + max_payload_bytes(n_lo) + max_payload_bytes(n_hi)
    raise ValueError(f"mode must be one of {CODING_MODES}, got {mode!r}")


def encode_frames(indices_hi, indices_lo, mode="ans", prior=None, num_codes=None) -> list[bytes]:
    """indices_hi: (N, h1, w1), indices_lo: (N, h2, w2) int in [0, K) -> N frame strings.

    prior: the model's IndexPrior (needed for "ans"); num_codes: K when no prior is given.
    """
    indices_hi, indices_lo = np.asarray(indices_hi), np.asarray(indices_lo)
    if indices_hi.ndim != 3 or indices_lo.ndim != 3 or len(indices_hi) != len(indices_lo):
        raise ValueError(f"need (N, h, w) grids, got {indices_hi.shape} and {indices_lo.shape}")
    coder = FrameCoder(mode, prior, num_codes)
    return [coder.encode(hi, lo) for hi, lo in zip(indices_hi, indices_lo, strict=True)]


def decode_frames(strings, shape_hi, shape_lo, mode="ans", prior=None, num_codes=None):
    """N frame strings -> (indices_hi (N, h1, w1) int64, indices_lo (N, h2, w2) int64).

    Raises BitstreamError naming the first frame that cannot be decoded. Memory: the output
    and one frame's work; nothing is allocated from a length before it is checked.
    """
    coder = FrameCoder(mode, prior, num_codes)
    shape_hi, shape_lo = tuple(shape_hi), tuple(shape_lo)
    strings = list(strings)  # already in memory: N is what the caller holds, not a claim
    his = np.empty((len(strings), *shape_hi), np.int64)  # (N, h1, w1)
    los = np.empty((len(strings), *shape_lo), np.int64)  # (N, h2, w2)
    for frame, string in enumerate(strings):
        try:
            his[frame], los[frame] = coder.decode(bytes(string), shape_hi, shape_lo)
        except ValueError as error:  # the coders reject malformed data with ValueError
            raise BitstreamError(
                f"frame {frame}: bad {mode} data: {error}", f"frame {frame} payload"
            ) from error
    return his, los


class FrameCoder:
    """Codes one frame's (hi, lo) index grids to a byte string ("frame string") and back.

    mode: "ans" (against ``prior``), "huffman" (tables sent in the string) or "fixed"
        (ceil(log2 K) bits per index). Byte layouts: see the module doc.
    prior: needed for "ans", optional otherwise; num_codes: K when no prior is given.
    Build one per stream: the ANS models are quantised once here, identically on both sides.
    """

    def __init__(
        self, mode: str, prior: IndexPrior | PriorTables | None = None, num_codes: int | None = None
    ):
        if mode not in CODING_MODES:
            raise ValueError(f"mode must be one of {CODING_MODES}, got {mode!r}")
        if prior is not None:
            if num_codes is not None and num_codes != prior.num_codes:
                raise ValueError(f"num_codes={num_codes} but the prior has K={prior.num_codes}")
            num_codes = prior.num_codes
        if num_codes is None or not 2 <= num_codes <= MAX_CODES:
            raise ValueError(f"need K in [2, {MAX_CODES}] from a prior or num_codes")
        if mode == "ans" and (prior is None or not prior.is_fitted):
            raise ValueError(
                "ANS coding needs the model's fitted entropy prior; fit it with "
                "mmslim.codec.fit_prior (or `mmslim prior --checkpoint CKPT --data DATA`)"
            )
        self.mode, self.num_codes = mode, num_codes
        self.fixed = prefix.fixed_lengths(num_codes)  # (K,) all ceil(log2 K)
        if mode == "ans":
            self.models = [categorical_model(prior.probs(branch)) for branch in BRANCHES]

    def encode(self, hi: np.ndarray, lo: np.ndarray) -> bytes:
        """hi: (h1, w1), lo: (h2, w2) int in [0, K) -> frame string."""
        hi = check_indices(hi, self.num_codes, "indices_hi").reshape(-1)  # (h1*w1,)
        lo = check_indices(lo, self.num_codes, "indices_lo").reshape(-1)  # (h2*w2,)
        if self.mode == "ans":  # coarse first: a preview needs only the first bytes
            coarse = ans_encode_segments([(lo, self.models[1])])
            fine = ans_encode_segments([(hi, self.models[0])])
            return LO_WORDS.pack(len(coarse) // 4) + coarse + fine
        if self.mode == "fixed":
            return prefix.encode_segments([(hi, self.fixed), (lo, self.fixed)])
        return prefix.encode_with_tables([hi, lo], self.num_codes)

    def decode(self, data: bytes, shape_hi, shape_lo) -> tuple[np.ndarray, np.ndarray]:
        """Frame string -> (hi (h1, w1) int64, lo (h2, w2) int64) in [0, K).

        Raises ValueError on malformed data (``decode_frames`` reports it as BitstreamError).
        """
        n_hi, n_lo = math.prod(shape_hi), math.prod(shape_lo)
        if n_hi + n_lo > MAX_INDICES_PER_FRAME:
            raise ValueError(f"a frame of {n_hi + n_lo} indices exceeds the sanity limit")
        shortest, longest = payload_bounds(self.mode, n_hi, n_lo, self.num_codes)
        if not shortest <= len(data) <= longest:
            raise ValueError(
                f"{len(data)} bytes for {n_hi + n_lo} indices; {self.mode} frames of that size "
                f"take {shortest} to {longest} bytes"
            )
        if self.mode == "ans":
            coarse, fine = self._ans_streams(data, n_lo)
            (lo,) = ans_decode_segments(coarse, [(self.models[1], n_lo)])
            (hi,) = ans_decode_segments(fine, [(self.models[0], n_hi)])
        elif self.mode == "fixed":
            hi, lo = prefix.decode_segments(data, [(self.fixed, n_hi), (self.fixed, n_lo)])
        else:
            hi, lo = prefix.decode_with_tables(data, [n_hi, n_lo], self.num_codes)
        for x in (hi, lo):
            if x.size and (x.min() < 0 or x.max() >= self.num_codes):
                raise ValueError(f"decoded index out of range [0, {self.num_codes})")
        return hi.reshape(shape_hi), lo.reshape(shape_lo)  # (h1, w1), (h2, w2)

    def decode_coarse(self, data: bytes, shape_lo) -> np.ndarray:
        """The coarse grid (h2, w2) int64 of an ANS frame string from its first bytes only:
        ``data`` may stop anywhere after the coarse stream (layered decoding)."""
        if self.mode != "ans":
            raise ValueError(f"layered decoding needs ans frames; these are {self.mode}")
        n_lo = math.prod(shape_lo)
        if len(data) < LO_WORDS.size:
            raise ValueError(f"{len(data)} bytes: not even the coarse stream's length")
        (words,) = LO_WORDS.unpack_from(data)
        if len(data) < LO_WORDS.size + 4 * words:
            raise ValueError(f"{len(data)} bytes: the coarse stream needs {4 * words} more")
        coarse = data[LO_WORDS.size : LO_WORDS.size + 4 * words]
        return ans_decode_segments(coarse, [(self.models[1], n_lo)])[0].reshape(shape_lo)

    @staticmethod
    def _ans_streams(data: bytes, n_lo: int) -> tuple[bytes, bytes]:
        """Split an ANS frame string into its coarse and fine streams (bounds checked)."""
        (words,) = LO_WORDS.unpack_from(data)
        end = LO_WORDS.size + 4 * words
        if 4 * words > max_payload_bytes(n_lo) or end > len(data):
            raise ValueError(
                f"coarse ANS stream of {4 * words} bytes does not fit: {n_lo} indices take at "
                f"most {max_payload_bytes(n_lo)}, the frame has {len(data) - LO_WORDS.size}"
            )
        return data[LO_WORDS.size : end], data[end:]


__all__ = [
    "BitstreamError",
    "FrameCoder",
    "MAX_INDICES_PER_FRAME",
    "decode_frames",
    "encode_frames",
    "payload_bounds",
]
