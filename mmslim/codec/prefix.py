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

import array
import heapq
import math
from collections.abc import Sequence

import numpy as np

from mmslim.config import MAX_CODES

MAX_CODE_LENGTH = 15
assert MAX_CODES == 2**MAX_CODE_LENGTH  # every code of K <= MAX_CODES fits a length


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
    """Inverse of ``encode_segments``; reads exactly the bits of the codewords, no more.

    segments: [(code lengths (K,) int, n_i), ...].
    Returns [(n_i,) int64, ...]. Raises ValueError on an invalid codeword, on running out of
    bits, on leftover bytes, or on nonzero padding bits. Memory is O(n + len(data)), and a
    payload longer than n codewords of 15 bits can need is refused before any work.
    """
    data = bytes(data)
    total = sum(int(n) for _, n in segments)
    if len(data) > math.ceil(MAX_CODE_LENGTH * total / 8):
        raise ValueError(f"bit stream of {len(data)} bytes is longer than {total} codewords need")
    num_bits = 8 * len(data)
    position, decoded = 0, []
    for lengths, n in segments:
        lengths, n = np.asarray(lengths, dtype=np.int64), int(n)
        if n and (lengths == lengths[0]).all():  # fixed-length code: no walk needed
            symbols, position = _read_fixed(data, int(lengths[0]), n, position)
            if symbols.max() >= lengths.size:
                raise ValueError(f"fixed-length index {symbols.max()} is not below K")
        else:
            symbols, position = _walk(data, lengths, n, position)
        decoded.append(symbols)
    if position > num_bits:
        raise ValueError("bit stream ends inside the last codeword")
    if math.ceil(position / 8) != len(data) or _bits(data, position, num_bits - position):
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


def _read_fixed(data: bytes, width: int, n: int, position: int) -> tuple[np.ndarray, int]:
    """n codes of ``width`` bits from bit ``position``: ((n,) int64, position after them)."""
    if position + n * width > 8 * len(data):
        raise ValueError("bit stream ends before the last index")
    first, last = position // 8, math.ceil((position + n * width) / 8)
    bits = np.unpackbits(np.frombuffer(data, np.uint8, last - first, first))  # (8 (last-first),)
    bits = bits[position - 8 * first :][: n * width].reshape(n, width)  # (n, width), MSB first
    values = np.zeros(n, dtype=np.int64)
    for column in bits.T:  # (n,) each; no (n, width) int64 temporary
        values = (values << 1) | column
    return values, position + n * width


def _walk(data: bytes, lengths: np.ndarray, n: int, position: int) -> tuple[np.ndarray, int]:
    """Decode n symbols by table lookup on the 15-bit window at each codeword's start.

    The window is read from the bytes themselves (3 bytes hold any 15 bits at any bit offset),
    so no per-bit array is built. Returns ((n,) int64 symbols, bit position after them).
    """
    order, widths = _canonical_order(lengths)
    table = np.full(MAX_CODES, -1, dtype=np.int64)
    table[: widths.sum()] = np.repeat(order, widths)  # codes tile the table from 0
    symbol_of = array.array("i", table.astype(np.int32).tobytes())  # 128 KB, fast item access
    length_of = lengths.tolist()
    padded, num_bits = data + bytes(3), 8 * len(data)  # windows near the end read zeros
    out = [0] * n
    for i in range(n):
        if position >= num_bits:
            raise ValueError("bit stream ends before the last index")
        byte, shift = position >> 3, 9 - (position & 7)
        window = ((padded[byte] << 16 | padded[byte + 1] << 8 | padded[byte + 2]) >> shift) & 0x7FFF
        symbol = symbol_of[window]
        if symbol < 0:
            raise ValueError(f"invalid Huffman codeword at bit {position}")
        out[i] = symbol
        position += length_of[symbol]
    if position > num_bits:
        raise ValueError("bit stream ends inside the last codeword")
    return np.array(out, dtype=np.int64), position


def _bits(data: bytes, position: int, count: int) -> int:
    """The ``count`` (< 8 at the end of a stream) bits from bit ``position`` as an int."""
    if count <= 0:
        return 0
    return int.from_bytes(data[position // 8 :], "big") & ((1 << count) - 1)


def _take(data: bytes, offset: int, size: int, what: str) -> bytes:
    if offset + size > len(data):
        raise ValueError(f"{what} truncated: need {size} bytes at offset {offset}")
    return data[offset : offset + size]


def _check_num_codes(num_codes: int) -> None:
    if not 2 <= num_codes <= MAX_CODES:
        raise ValueError(f"K must lie in [2, {MAX_CODES}], got {num_codes}")
