"""What the layers beside a file share: symbol tables (counts, or uniform when counts would cost
more), the CRC and the frames check."""

from __future__ import annotations

import numpy as np
import pytest

from mmslim.codec import BitstreamError
from mmslim.codec.ans import ans_decode_segments, ans_encode_segments
from mmslim.codec.layer_format import (
    COUNTS,
    UNIFORM,
    add_crc,
    check_crc,
    check_frames,
    read_table,
    write_table,
)


def _round_trip(symbols):
    out = bytearray()
    shifted, model = write_table(out, symbols)
    payload = ans_encode_segments([(shifted, model)])
    first, k, read_model, at = read_table(bytes(out) + b"\0" * 4, 0)
    assert at == len(out)
    (decoded,) = ans_decode_segments(payload, [(read_model, len(symbols))])
    np.testing.assert_array_equal(decoded + first, symbols)
    return out[0], len(out), len(payload)


def test_few_symbols_of_a_wide_alphabet_go_without_counts():
    rng = np.random.default_rng(0)
    mode, table, payload = _round_trip(rng.integers(-40, 40, size=12))
    assert mode == UNIFORM and table == 5  # no counts: model, first, K
    assert payload <= 4 * np.ceil((12 * np.log2(80) + 64) / 32)


def test_many_peaked_symbols_pay_for_their_counts():
    rng = np.random.default_rng(1)
    symbols = np.round(rng.laplace(0, 0.7, size=20000)).astype(np.int64)
    mode, table, payload = _round_trip(symbols)
    k = symbols.max() - symbols.min() + 1
    assert mode == COUNTS and table == 5 + 4 * k
    assert table + payload < len(symbols) * np.log2(k) / 8  # less than the uniform code


def test_a_table_that_is_not_one_is_refused():
    out = bytearray()
    write_table(out, np.array([3, 4, 4, 5]))
    bad = bytearray(out)
    bad[0] = 7  # no such model
    with pytest.raises(BitstreamError, match="not valid"):
        read_table(bytes(bad) + b"\0" * 4, 0)
    with pytest.raises(BitstreamError, match="truncated"):
        read_table(bytes(out[:3]), 0)
    with pytest.raises(ValueError, match="more than a table holds"):
        write_table(bytearray(), np.array([0, 10_000]))


def test_crc_and_frames_checks_name_the_layer():
    data = add_crc(bytearray(b"head" * 4))
    check_crc(data, 16, "test layer")
    with pytest.raises(BitstreamError, match="test layer's CRC"):
        check_crc(data[:-1] + bytes([data[-1] ^ 1]), 16, "test layer")
    with pytest.raises(BitstreamError, match="at least 20 bytes"):
        check_crc(data[:10], 16, "test layer")
    check_frames(np.zeros((2, 4, 3)), 2, 4, 3, "test layer")
    with pytest.raises(BitstreamError, match="test layer is for 2 frames of 4 x 3"):
        check_frames(np.zeros((1, 4, 3)), 2, 4, 3, "test layer")
