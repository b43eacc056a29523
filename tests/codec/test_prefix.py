"""Canonical Huffman and fixed-length coding (``mmslim.codec.prefix``) worked out by hand: code
lengths, code values, table bytes and bit streams of a small alphabet, and every refusal."""

from __future__ import annotations

import numpy as np
import pytest

from mmslim.codec import prefix as huffman

# Frequencies of 9 codes. Huffman merges 1+2, 3+3, 3+5, 6+8, 9+14: code 7 gets 1 bit, codes 0,
# 2 and 3 get 3 bits, codes 4 and 8 get 4 bits. Canonical values in (length, code) order:
# 7 -> 0, 0 -> 100, 2 -> 101, 3 -> 110, 4 -> 1110, 8 -> 1111.
FREQS = np.array([5, 0, 3, 3, 1, 0, 0, 9, 2])
LENGTHS = [3, 0, 3, 3, 4, 0, 0, 1, 4]
CODES = [0b100, 0, 0b101, 0b110, 0b1110, 0, 0, 0b0, 0b1111]
TABLE = bytes([0b10111001, 0b10000000, 0x33, 0x34, 0x14])  # bitmap, then lengths 3 3 3 4 1 4
SYMBOLS = np.array([0, 7, 2, 4, 8, 3])
STREAM = bytes([0b10001011, 0b11011111, 0b10000000])  # 100 0 101 1110 1111 110, zero padded


def test_huffman_by_hand():
    lengths = huffman.code_lengths(FREQS)
    assert lengths.tolist() == LENGTHS and lengths.dtype == np.int64
    assert huffman.canonical_codes(lengths).tolist() == CODES
    assert huffman.encode_table(lengths) == TABLE
    parsed, end = huffman.decode_table(b"\xff" + TABLE, 1, 9)
    assert parsed.tolist() == LENGTHS and end == 1 + len(TABLE)
    assert huffman.encode_segments([(SYMBOLS, lengths)]) == STREAM
    (back,) = huffman.decode_segments(STREAM, [(lengths, 6)])
    assert back.tolist() == SYMBOLS.tolist() and back.dtype == np.int64


def test_two_segments_share_one_stream():
    lengths, fixed = np.array(LENGTHS), huffman.fixed_lengths(9)  # 4 bits each
    data = huffman.encode_segments([(SYMBOLS[:2], lengths), (np.array([8, 1]), fixed)])
    assert data == bytes([0b10001000, 0b00010000])  # 100 0 | 1000 0001, then 0 padding
    hi, lo = huffman.decode_segments(data, [(lengths, 2), (fixed, 2)])
    assert hi.tolist() == [0, 7] and lo.tolist() == [8, 1]
    assert huffman.encode_segments([]) == b""


def test_fixed_lengths():
    assert huffman.fixed_lengths(2).tolist() == [1, 1]
    assert huffman.fixed_lengths(3).tolist() == [2, 2, 2]
    assert set(huffman.fixed_lengths(512)) == {9} and set(huffman.fixed_lengths(513)) == {10}
    data = huffman.encode_segments([(np.array([1, 2, 3]), huffman.fixed_lengths(4))])
    assert data == bytes([0b01101100])
    with pytest.raises(ValueError, match=r"^fixed-length index 7 is not below K$"):
        huffman.decode_segments(bytes([0b11100000]), [(huffman.fixed_lengths(5), 1)])
    with pytest.raises(ValueError, match=r"^fixed-length index 5 is not below K$"):
        huffman.decode_segments(bytes([0b10100000]), [(huffman.fixed_lengths(5), 1)])
    with pytest.raises(ValueError, match=r"^K must lie in \[2, 32768\], got 1$"):
        huffman.fixed_lengths(1)
    assert len(huffman.fixed_lengths(32768)) == 32768


def test_code_lengths_edges():
    assert huffman.code_lengths(np.zeros(4, int)).tolist() == [0, 0, 0, 0]
    assert huffman.code_lengths(np.array([0, 0, 7])).tolist() == [0, 0, 1]
    assert huffman.code_lengths(np.ones(4, int)).tolist() == [2, 2, 2, 2]
    assert huffman.code_lengths(np.ones(4, int), max_length=2).tolist() == [2, 2, 2, 2]
    with pytest.raises(ValueError, match="^5 symbols cannot have codes of at most 2 bits$"):
        huffman.code_lengths(np.ones(5, int), max_length=2)
    # Depths 4 4 3 2 1 are too deep for 3 bits; halved (rounding up) the frequencies are
    # 1 1 1 2 4, whose Huffman merges 1+1, 1+2, 2+3, 4+5 give depths 3 3 3 3 1.
    limited = huffman.code_lengths(np.array([1, 1, 2, 4, 8]), max_length=3)
    assert limited.tolist() == [3, 3, 3, 3, 1]
    # Fibonacci-like counts make deep trees: 5 levels, and still 5 once halved to
    # 1 1 1 1 2 3 4 7 11; halved twice, 1 1 1 1 1 2 2 4 6 fit 4 bits.
    fibonacci = np.array([1, 1, 1, 2, 3, 5, 8, 13, 21])
    assert huffman.code_lengths(fibonacci, max_length=4).tolist() == [4, 4, 4, 4, 4, 4, 3, 2, 2]


def test_the_longest_codeword_has_15_bits():
    # Powers of two make a chain: code k gets k + 1 bits, the last two both get 15, exactly the
    # limit, so nothing is flattened; the two 15-bit codes are 111...10 and 111...11.
    lengths = huffman.code_lengths(np.append(2 ** np.arange(14, -1, -1), 1))
    assert lengths.tolist() == [*range(1, 16), 15]
    table = huffman.encode_table(lengths)
    assert table == bytes([0xFF, 0xFF, 0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xFF])
    assert huffman.decode_table(table, 0, 16)[0].tolist() == lengths.tolist()
    stream = huffman.encode_segments([(np.array([15, 0]), lengths)])
    assert stream == bytes([0xFF, 0xFE])  # fifteen ones, then code 0's single zero
    assert huffman.decode_segments(stream, [(lengths, 2)])[0].tolist() == [15, 0]
    # Eight 15-bit codewords fill 15 bytes, the most 8 indices can need; a 16th byte is refused.
    assert huffman.decode_segments(b"\xff" * 15, [(lengths, 8)])[0].tolist() == [15] * 8
    with pytest.raises(ValueError, match="^bit stream of 16 bytes is longer than 8 codewords need"):
        huffman.decode_segments(b"\xff" * 16, [(lengths, 8)])


def test_counts_and_lengths_of_any_integer_dtype_give_the_same_code():
    """The coder works in int64: in uint8, 255 + 1 wraps to 0 and 1 << 14 overflows."""
    counts = np.array([1, 1, 2, 4, 255], np.uint8)  # halved like 1 1 2 4 8 above
    assert huffman.code_lengths(counts, max_length=3).tolist() == [3, 3, 3, 3, 1]
    lengths = np.array(LENGTHS, np.uint8)
    assert huffman.canonical_codes(lengths).tolist() == CODES
    (back,) = huffman.decode_segments(STREAM, [(lengths, 6)])
    assert back.tolist() == SYMBOLS.tolist()


def test_tables_are_refused_when_malformed():
    with pytest.raises(ValueError, match=r"^code lengths must lie in \[0, 15\]$"):
        huffman.encode_table(np.array([16, 1]))
    with pytest.raises(ValueError, match=r"^code lengths must lie in \[0, 15\]$"):
        huffman.encode_table(np.array([-1, 1]))
    with pytest.raises(ValueError, match="^Huffman table bitmap truncated: need 2 bytes at offs"):
        huffman.decode_table(TABLE[:1], 0, 9)
    with pytest.raises(ValueError, match="^Huffman code lengths truncated: need 3 bytes at off"):
        huffman.decode_table(TABLE[:4], 0, 9)
    with pytest.raises(ValueError, match="^Huffman table bitmap has nonzero padding bits$"):
        huffman.decode_table(bytes([0b10111001, 0b11000000]) + TABLE[2:], 0, 9)
    with pytest.raises(ValueError, match="^Huffman code-length table has nonzero padding$"):
        huffman.decode_table(bytes([0b11100000, 0x00, 0x22, 0x21]), 0, 9)  # 3 codes, 4 nibbles
    with pytest.raises(ValueError, match="^Huffman table marks a code present but gives it len"):
        huffman.decode_table(bytes([0b11000000, 0x00, 0x10]), 0, 9)
    with pytest.raises(ValueError, match=r"^code lengths are over-subscribed \(Kraft sum > 1\)$"):
        huffman.canonical_codes(np.array([1, 1, 1]))


def test_bit_streams_are_refused_when_malformed():
    lengths = np.array(LENGTHS)
    with pytest.raises(ValueError, match="^bit stream of 3 bytes is longer than 1 codewords need"):
        huffman.decode_segments(STREAM, [(lengths, 1)])
    with pytest.raises(ValueError, match="^bit stream has leftover bytes or nonzero padding after"):
        huffman.decode_segments(STREAM, [(lengths, 5)])  # 15 of the 18 bits
    with pytest.raises(ValueError, match="^bit stream has leftover bytes or nonzero padding after"):
        huffman.decode_segments(STREAM[:2] + b"\x81", [(lengths, 6)])
    with pytest.raises(ValueError, match="^bit stream ends before the last index$"):
        huffman.decode_segments(bytes([0b11101111]), [(lengths, 3)])  # codes 4 and 8, then none
    with pytest.raises(ValueError, match="^bit stream ends inside the last codeword$"):
        huffman.decode_segments(STREAM[:2], [(lengths, 6)])  # code 3 cut after its first bit
    with pytest.raises(ValueError, match="^bit stream ends before the last index$"):
        huffman.decode_segments(b"\x00", [(huffman.fixed_lengths(16), 3)])
    with pytest.raises(ValueError, match="^bit stream ends before the last index$"):
        huffman.decode_segments(b"\x00\x00", [(huffman.fixed_lengths(8), 6)])  # 18 of 16 bits
    seven_bits = huffman.fixed_lengths(128)
    assert huffman.decode_segments(bytes([0b00000010]), [(seven_bits, 1)])[0].tolist() == [1]
    with pytest.raises(ValueError, match="^bit stream has leftover bytes or nonzero padding after"):
        huffman.decode_segments(bytes([0b00000011]), [(seven_bits, 1)])  # one padding bit set
    with pytest.raises(ValueError, match="^an index has no codeword in the Huffman table$"):
        huffman.encode_segments([(np.array([1]), lengths)])
