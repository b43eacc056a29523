"""Canonical Huffman coding of codebook indices, bit-packed with numpy (the paper's coder).

The reference release Huffman-codes the index tensor but leaves the table out of its rate. Here
the table is built from the data being coded and **sent with it** (``encode_table``), so its size
is part of every rate we report. A fixed-length code (every index in ``ceil(log2 K)`` bits) is the
same machinery with equal code lengths and no table.

Canonical codes
---------------
A canonical Huffman code is fully described by its code lengths: sort the used symbols by
(length, symbol) and hand out consecutive code values, shifting left whenever the length grows.
Viewed as intervals of a ``2**MAX_CODE_LENGTH`` lookup table, the codes in that order tile the
table from 0 without gaps, which makes both the encoder (code = interval start >> shift) and the
decoder (table = symbols repeated by interval width) two numpy lines.

Code lengths are limited to ``MAX_CODE_LENGTH = 15`` bits (so K ≤ 2**15): when Huffman's
construction goes deeper, frequencies are halved (rounding up, so none reaches zero) and the
code rebuilt; this costs a little rate only on very skewed data.

Table layout (``encode_table``), for K codes
--------------------------------------------
::

    ceil(K/8) bytes   presence bitmap, bit k (MSB first) set if code k has a codeword
    ceil(U/2) bytes   code length of each of the U present codes, 4 bits each, in code order,
                      high nibble first; zero padding

For K = 512 that is 64 + U/2 bytes. Bit streams are MSB first, zero-padded to whole bytes.
Malformed input raises ``ValueError``; ``mmslim.codec.container`` turns it into ``BitstreamError``.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mmslim.config import MAX_CODES

MAX_CODE_LENGTH = 15
assert MAX_CODES == 2**MAX_CODE_LENGTH  # every code of K <= MAX_CODES fits a length
_WINDOW_WEIGHTS = 1 << np.arange(MAX_CODE_LENGTH - 1, -1, -1)  # (15,) MSB first


def fixed_lengths(num_codes: int) -> np.ndarray:
    """(K,) code lengths of the fixed-length code: ceil(log2 K) bits for every index."""
    _check_num_codes(num_codes)
    return np.full(num_codes, max(1, math.ceil(math.log2(num_codes))), dtype=np.int64)


def code_lengths(freqs: np.ndarray, max_length: int = MAX_CODE_LENGTH) -> np.ndarray:
    """Huffman code lengths for symbol frequencies, limited to ``max_length`` bits.

    freqs: (K,) nonnegative ints; symbols with frequency 0 get length 0 (no codeword).
    Returns (K,) int64. A single used symbol gets length 1.
    """
    freqs = np.asarray(freqs, dtype=np.int64)
    _check_num_codes(freqs.size)
    used = np.flatnonzero(freqs > 0)
    lengths = np.zeros(freqs.size, dtype=np.int64)
    if used.size == 0:
        return lengths
    if used.size > 2**max_length:
        raise ValueError(f"{used.size} symbols cannot have codes of at most {max_length} bits")
    weights = freqs[used]
    while True:
        depths = _huffman_depths(weights)
        if depths.max() <= max_length:
            break
        weights = (weights + 1) // 2  # flatten the distribution; all ones gives depth log2(U)
    lengths[used] = depths
    return lengths


def _huffman_depths(weights: np.ndarray) -> np.ndarray:
    """Leaf depths of a Huffman tree over (U,) positive weights (ties broken by node id)."""
    if weights.size == 1:
        return np.ones(1, dtype=np.int64)
    heap = [(int(w), node) for node, w in enumerate(weights)]
    heapq.heapify(heap)
    parent = np.zeros(2 * weights.size - 1, dtype=np.int64)
    next_node = weights.size
    while len(heap) > 1:
        w1, a = heapq.heappop(heap)
        w2, b = heapq.heappop(heap)
        parent[a] = parent[b] = next_node
        heapq.heappush(heap, (w1 + w2, next_node))
        next_node += 1
    depth = np.zeros(next_node, dtype=np.int64)
    for node in range(next_node - 2, -1, -1):  # parents have larger ids than their children
        depth[node] = depth[parent[node]] + 1
    return depth[: weights.size]


def _canonical_order(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Used symbols sorted by (length, symbol), and the width of each one's lookup interval."""
    used = np.flatnonzero(lengths > 0)
    order = used[np.lexsort((used, lengths[used]))]  # (U,)
    widths = 1 << (MAX_CODE_LENGTH - lengths[order])  # (U,) table slots per codeword
    if widths.sum() > MAX_CODES:
        raise ValueError("code lengths are over-subscribed (Kraft sum > 1)")
    return order, widths


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """(K,) int64 canonical code values for (K,) code lengths (0 where length is 0)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order, widths = _canonical_order(lengths)
    starts = np.cumsum(widths) - widths  # (U,) interval starts, contiguous from 0
    codes = np.zeros(lengths.size, dtype=np.int64)
    codes[order] = starts >> (MAX_CODE_LENGTH - lengths[order])
    return codes


def encode_table(lengths: np.ndarray) -> bytes:
    """Serialise (K,) code lengths in 0..15 as presence bitmap + 4-bit lengths (see module doc)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.min() < 0 or lengths.max() > MAX_CODE_LENGTH:
        raise ValueError(f"code lengths must lie in [0, {MAX_CODE_LENGTH}]")
    present = lengths > 0
    nibbles = lengths[present].astype(np.uint8)  # (U,)
    if nibbles.size % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    packed = (nibbles[0::2] << 4) | nibbles[1::2]
    return np.packbits(present).tobytes() + packed.astype(np.uint8).tobytes()


def decode_table(data: bytes, offset: int, num_codes: int) -> tuple[np.ndarray, int]:
    """Parse a table written by ``encode_table`` at ``data[offset:]``.

    Returns ((K,) int64 code lengths, offset just past the table). Raises ValueError if the
    table is truncated, has nonzero padding, a zero length, or over-subscribed lengths.
    """
    _check_num_codes(num_codes)
    bitmap_bytes = math.ceil(num_codes / 8)
    bitmap = np.frombuffer(_take(data, offset, bitmap_bytes, "Huffman table bitmap"), np.uint8)
    bits = np.unpackbits(bitmap)  # (8 * bitmap_bytes,)
    if bits[num_codes:].any():
        raise ValueError("Huffman table bitmap has nonzero padding bits")
    present = bits[:num_codes].astype(bool)  # (K,)
    num_present = int(present.sum())
    offset += bitmap_bytes
    packed = np.frombuffer(
        _take(data, offset, (num_present + 1) // 2, "Huffman code lengths"), np.uint8
    )
    nibbles = np.stack([packed >> 4, packed & 15], axis=1).reshape(-1)  # (2 * ceil(U/2),)
    if nibbles[num_present:].any():
        raise ValueError("Huffman code-length table has nonzero padding")
    if (nibbles[:num_present] == 0).any():
        raise ValueError("Huffman table marks a code present but gives it length 0")
    lengths = np.zeros(num_codes, dtype=np.int64)
    lengths[present] = nibbles[:num_present]
    _canonical_order(lengths)  # raises if over-subscribed
    return lengths, offset + packed.size


def encode_segments(segments: Sequence[tuple[np.ndarray, np.ndarray]]) -> bytes:
    """Concatenate the prefix codes of several index arrays into one zero-padded bit stream.

    segments: [(indices (n_i,) int, code lengths (K,) int), ...]; every index must have a
        nonzero code length in its segment's table.
    Returns ceil(total_bits / 8) bytes.
    """
    all_codes, all_lengths = [], []
    for indices, lengths in segments:
        lengths = np.asarray(lengths, dtype=np.int64)
        symbol_lengths = lengths[indices]  # (n_i,)
        if (symbol_lengths == 0).any():
            raise ValueError("an index has no codeword in the Huffman table")
        all_codes.append(canonical_codes(lengths)[indices])
        all_lengths.append(symbol_lengths)
    codes = np.concatenate(all_codes) if all_codes else np.zeros(0, np.int64)  # (n,)
    lengths = np.concatenate(all_lengths) if all_lengths else np.zeros(0, np.int64)  # (n,)
    left_aligned = codes << (MAX_CODE_LENGTH - lengths)  # (n,) codes as 15-bit windows
    bits = (left_aligned[:, None] >> np.arange(MAX_CODE_LENGTH - 1, -1, -1)) & 1  # (n, 15)
    keep = np.arange(MAX_CODE_LENGTH) < lengths[:, None]  # (n, 15) the first len bits of a row
    return np.packbits(bits[keep].astype(np.uint8)).tobytes()


def decode_segments(data: bytes, segments: Sequence[tuple[np.ndarray, int]]) -> list[np.ndarray]:
    """Inverse of ``encode_segments``.

    segments: [(code lengths (K,) int, n_i), ...].
    Returns [(n_i,) int64, ...]. Raises ValueError on an invalid codeword, on running out of
    bits, on leftover bytes, or on nonzero padding bits.
    """
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))  # (8 * len(data),)
    padded = np.concatenate([bits, np.zeros(MAX_CODE_LENGTH, np.uint8)])
    windows = sliding_window_view(padded, MAX_CODE_LENGTH)[: bits.size] @ _WINDOW_WEIGHTS  # (nb,)
    position, decoded = 0, []
    for lengths, n in segments:
        lengths = np.asarray(lengths, dtype=np.int64)
        if n and (lengths == lengths[0]).all():  # fixed-length code: no walk needed
            width = int(lengths[0])
            if position + n * width > bits.size:
                raise ValueError("bit stream ends before the last index")
            values = (
                bits[position : position + n * width].reshape(n, width)
                @ _WINDOW_WEIGHTS[MAX_CODE_LENGTH - width :]
            )  # (n,)
            if values.max() >= lengths.size:
                raise ValueError(f"fixed-length index {values.max()} is not below K")
            decoded.append(values.astype(np.int64))
            position += n * width
            continue
        symbols, position = _walk(windows, lengths, int(n), position, bits.size)
        decoded.append(symbols)
    if math.ceil(position / 8) != len(data) or bits[position:].any():
        raise ValueError("bit stream has leftover bytes or nonzero padding after the last index")
    return decoded


def encode_with_tables(arrays: Sequence[np.ndarray], num_codes: int) -> bytes:
    """The paper's Huffman coding of several index arrays, each with a table built from itself.

    arrays: [(n_i,) int in [0, K), ...]. Returns every table (``encode_table``) followed by one
    bit stream of all codewords (``encode_segments``), so the tables are counted in the size.
    """
    tables = [code_lengths(np.bincount(x, minlength=num_codes)) for x in arrays]
    coded = encode_segments(list(zip(arrays, tables, strict=True)))
    return b"".join(encode_table(t) for t in tables) + coded


def decode_with_tables(data: bytes, sizes: Sequence[int], num_codes: int) -> list[np.ndarray]:
    """Inverse of ``encode_with_tables``: sizes are the n_i; returns [(n_i,) int64, ...]."""
    tables, offset = [], 0
    for _ in sizes:
        table, offset = decode_table(data, offset, num_codes)
        tables.append(table)
    return decode_segments(data[offset:], list(zip(tables, sizes, strict=True)))


def _walk(windows, lengths, n, position, num_bits) -> tuple[np.ndarray, int]:
    """Decode n symbols by table lookup on the 15-bit window at each bit position."""
    order, widths = _canonical_order(lengths)
    table_symbol = np.full(MAX_CODES, -1, dtype=np.int64)
    table_symbol[: widths.sum()] = np.repeat(order, widths)  # codes tile the table from 0
    symbol_at = table_symbol[windows].tolist()  # symbol whose codeword starts at each bit
    length_of = lengths.tolist()
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        if position >= num_bits:
            raise ValueError("bit stream ends before the last index")
        symbol = symbol_at[position]
        if symbol < 0:
            raise ValueError(f"invalid Huffman codeword at bit {position}")
        out[i] = symbol
        position += length_of[symbol]
    if position > num_bits:
        raise ValueError("bit stream ends inside the last codeword")
    return out, position


def _take(data: bytes, offset: int, size: int, what: str) -> bytes:
    if offset + size > len(data):
        raise ValueError(f"{what} truncated: need {size} bytes at offset {offset}")
    return data[offset : offset + size]


def _check_num_codes(num_codes: int) -> None:
    if not 2 <= num_codes <= MAX_CODES:
        raise ValueError(f"K must lie in [2, {MAX_CODES}], got {num_codes}")
