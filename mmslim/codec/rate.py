"""Rate accounting: every byte of a file, and the rates we report.

Every bits-per-element figure is ``8 len(file)`` divided by the number of input map values, so
header, side info, framing (per-frame sequence numbers and lengths), an HMAC tag if any, and
Huffman tables are all counted and all figures are comparable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mmslim.codec import prefix
from mmslim.codec.container import decode_file, read_header

if TYPE_CHECKING:  # coding only reads a prior's tables: no PyTorch needed here
    from mmslim.codec.prior import IndexPrior


@dataclass(frozen=True)
class RateReport:
    """Rates of one file. Every bits-per-element figure divides by the number of input
    elements (e.g. N × 224 × 64 map values), so all of them are comparable."""

    mode: str
    num_frames: int
    num_elements: int  # input map values the file represents
    num_indices: int  # N × (h1·w1 + h2·w2)
    file_bytes: int  # len(file): everything counted
    file_bits: int  # 8 × file_bytes
    header_bytes: int  # fixed header + HMAC tag (if any) + CRC
    side_bytes: int  # per-frame (min, max)
    framing_bytes: int  # per frame: 2-byte sequence number and 4-byte payload length
    payload_bytes: int  # frame strings (Huffman tables included)
    bits_per_element: float  # file_bits / num_elements — the rate we report
    ratio_vs_float32: float  # 32 / bits_per_element
    ratio_vs_int16: float  # 16 / bits_per_element
    bits_per_index: float  # file_bits / num_indices
    fixed_bits_per_element: float  # ceil(log2 K) bits per index, payload only
    ideal_bits_per_element: float | None  # prior cross-entropy of the indices, payload only
    paper_ratio: float  # the reference's (#inputs × 32) / (#indices × 32): ignores bit widths


def rate_report(
    data: bytes,
    num_elements: int,
    prior: IndexPrior | None = None,
    model_fingerprint: bytes | None = None,
    key: bytes | None = None,
) -> RateReport:
    """Account for every byte of ``data``. num_elements: input values coded (N × H × W).
    With a prior, the file is decoded to add the ideal cross-entropy rate (``key``: the HMAC key
    of a tagged file, needed to decode it)."""
    if num_elements <= 0:
        raise ValueError(f"num_elements must be positive, got {num_elements}")
    header = read_header(data)
    n_idx = header.num_frames * (math.prod(header.shape_hi) + math.prod(header.shape_lo))
    fixed_bits = n_idx * int(prefix.fixed_lengths(header.num_codes)[0])  # 9 per index at K=512
    ideal = None
    if prior is not None:
        decoded = decode_file(data, prior, model_fingerprint, key=key)
        ideal = prior.cross_entropy_bits(decoded.indices_hi, "hi")
        ideal += prior.cross_entropy_bits(decoded.indices_lo, "lo")
    bits = 8 * header.file_bytes
    return RateReport(
        mode=header.mode,
        num_frames=header.num_frames,
        num_elements=num_elements,
        num_indices=n_idx,
        file_bytes=header.file_bytes,
        file_bits=bits,
        header_bytes=header.fixed_bytes,
        side_bytes=header.side_bytes,
        framing_bytes=header.framing_bytes,
        payload_bytes=sum(header.frame_bytes),
        bits_per_element=bits / num_elements,
        ratio_vs_float32=32 * num_elements / bits,
        ratio_vs_int16=16 * num_elements / bits,
        bits_per_index=bits / max(n_idx, 1),
        fixed_bits_per_element=fixed_bits / num_elements,
        ideal_bits_per_element=None if ideal is None else ideal / num_elements,
        paper_ratio=num_elements / max(n_idx, 1),
    )


__all__ = ["RateReport", "rate_report"]
