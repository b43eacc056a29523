"""The index coders (mmslim.codec.ans, .prefix), the prior and the file container."""

from __future__ import annotations

import io
import math
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmslim.bench.codec import benchmark_entropy, zipf_probs
from mmslim.codec import (
    BitstreamError,
    decode_file,
    decode_frames,
    encode_file,
    encode_frames,
    rate_report,
    read_header,
)
from mmslim.codec import prefix as huffman
from mmslim.codec.ans import ans_decode, ans_encode, max_payload_bytes
from mmslim.codec.frames import FrameCoder, payload_bounds
from mmslim.codec.prior import IndexPrior
from mmslim.codec.rate import RateReport

K = 512
SHAPE_HI, SHAPE_LO = (56, 16), (14, 4)  # a 224 × 64 map
FINGERPRINT = bytes(range(8))
MODES = ("ans", "huffman", "fixed")


def skewed_frames(n_frames, seed=0, num_codes=K, shape_hi=SHAPE_HI, shape_lo=SHAPE_LO):
    """(hi (N, h1, w1), lo (N, h2, w2), side (N, 2)) drawn from fixed Zipf-skewed laws."""
    laws = np.random.default_rng(1234)  # same laws for every call, so priors transfer
    p_hi, p_lo = zipf_probs(laws, num_codes), zipf_probs(laws, num_codes)
    rng = np.random.default_rng(seed)
    hi = rng.choice(num_codes, size=(n_frames, *shape_hi), p=p_hi)
    lo = rng.choice(num_codes, size=(n_frames, *shape_lo), p=p_lo)
    side = np.sort(rng.uniform(-3.1, 3.1, size=(n_frames, 2)), axis=1).astype(np.float32)
    return hi, lo, side


@pytest.fixture(scope="module")
def prior():
    hi, lo, _ = skewed_frames(500, seed=99)
    return IndexPrior(K).update(hi, lo)


def reseal(data: bytes) -> bytes:
    """Recompute the trailing CRC so that corruption reaches the parser and the decoders."""
    body = data[:-4]
    return body + struct.pack("<I", zlib.crc32(body))


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n_frames", [1, 7])
def test_file_round_trip_is_exact(prior, mode, n_frames):
    hi, lo, side = skewed_frames(n_frames, seed=n_frames)
    data = encode_file(hi, lo, side, prior, FINGERPRINT, "amplitude", mode)
    decoded = decode_file(data, prior, FINGERPRINT)
    np.testing.assert_array_equal(decoded.indices_hi, hi)
    np.testing.assert_array_equal(decoded.indices_lo, lo)
    np.testing.assert_array_equal(decoded.side, side)  # float32 side info is lossless
    assert decoded.indices_hi.dtype == np.int64 and decoded.side.dtype == np.float32
    assert (decoded.kind, decoded.mode) == ("amplitude", mode)
    header = decoded.header
    assert (header.num_frames, header.num_codes) == (n_frames, K)
    assert (header.shape_hi, header.shape_lo) == (SHAPE_HI, SHAPE_LO)
    assert header.file_bytes == len(data) and header.fingerprint == FINGERPRINT


@pytest.mark.parametrize("mode", MODES)
def test_frame_strings_round_trip(prior, mode):
    hi, lo, _ = skewed_frames(5)
    strings = encode_frames(hi, lo, mode, prior)
    assert len(strings) == 5 and all(isinstance(s, bytes) for s in strings)
    hi_back, lo_back = decode_frames(strings, SHAPE_HI, SHAPE_LO, mode, prior)
    np.testing.assert_array_equal(hi_back, hi)
    np.testing.assert_array_equal(lo_back, lo)


@pytest.mark.parametrize("mode", ["huffman", "fixed"])
def test_prior_free_modes_need_only_k(mode):
    hi, lo, side = skewed_frames(3, num_codes=37, shape_hi=(5, 3), shape_lo=(2, 1))
    data = encode_file(hi, lo, side, None, FINGERPRINT, "phase", mode, num_codes=37)
    decoded = decode_file(data, None, FINGERPRINT)
    np.testing.assert_array_equal(decoded.indices_hi, hi)
    np.testing.assert_array_equal(decoded.indices_lo, lo)


def test_zero_frames_round_trip(prior):
    hi, lo = np.zeros((0, *SHAPE_HI), int), np.zeros((0, *SHAPE_LO), int)
    data = encode_file(hi, lo, np.zeros((0, 2)), prior, FINGERPRINT, "phase")
    decoded = decode_file(data, prior, FINGERPRINT)
    assert decoded.indices_hi.shape == (0, *SHAPE_HI) and decoded.side.shape == (0, 2)


def test_float16_side_info_error_is_small(prior):
    hi, lo, side = skewed_frames(4)
    data = encode_file(hi, lo, side, prior, FINGERPRINT, "amplitude", side_dtype="float16")
    decoded = decode_file(data, prior, FINGERPRINT)
    assert decoded.header.side_dtype == "float16"
    np.testing.assert_allclose(decoded.side, side, rtol=2**-11)
    with pytest.raises(ValueError, match="finite"):  # outside ±1000 dB, and float16 overflows
        encode_file(hi, lo, side * 1e5, prior, FINGERPRINT, "amplitude", side_dtype="float16")


def test_zero_frequency_indices_are_codable():
    hi, lo, side = skewed_frames(50, num_codes=K)
    used = np.isin(np.arange(K), hi)
    prior = IndexPrior(K).update(hi % 256, lo % 256)  # codes 256..511 never seen in training
    assert (prior.counts_hi[256:] == 1).all() and used[256:].any()
    data = encode_file(hi, lo, side, prior, FINGERPRINT, "amplitude", "ans")
    np.testing.assert_array_equal(decode_file(data, prior, FINGERPRINT).indices_hi, hi)
    # the bare ANS functions accept a probability table with exact zeros as well
    probs = np.zeros(K)
    probs[:4] = 0.25
    indices = np.array([0, 1, 511, 3, 300])
    np.testing.assert_array_equal(ans_decode(ans_encode(indices, probs), probs, 5), indices)


def test_ans_payload_must_end_where_the_encoder_ended(prior):
    (string,) = encode_frames(*skewed_frames(1)[:2], "ans", prior)
    for bad in (string + b"\1\0\0\0", string[:-4], string[4:], string + b"\0\0\0\0"):
        with pytest.raises(BitstreamError, match="frame 0"):
            decode_frames([bad], SHAPE_HI, SHAPE_LO, "ans", prior)


def test_empty_ans_payload_is_the_all_zero_frame(prior):
    """constriction's coder starts from state 0, where index 0 costs nothing: an all-zero grid
    codes to an empty stream, so an all-zero frame is just the coarse stream's length, 0 words
    (mmslim.codec.ans explains why grid sizes must come from the model)."""
    zeros_hi, zeros_lo = np.zeros((1, *SHAPE_HI), int), np.zeros((1, *SHAPE_LO), int)
    assert encode_frames(zeros_hi, zeros_lo, "ans", prior) == [b"\0\0"]
    hi, lo = decode_frames([b"\0\0"], SHAPE_HI, SHAPE_LO, "ans", prior)
    assert not hi.any() and not lo.any()


def test_out_of_range_indices_are_refused(prior):
    hi, lo, side = skewed_frames(1)
    hi[0, 0, 0] = K
    with pytest.raises(ValueError, match=r"\[0, 512\)"):
        encode_file(hi, lo, side, prior, FINGERPRINT, "amplitude")


# ---------------------------------------------------------------- rate accounting


@pytest.mark.parametrize("mode", MODES)
def test_reported_bits_are_the_file_bits(prior, mode):
    hi, lo, side = skewed_frames(6)
    data = encode_file(hi, lo, side, prior, FINGERPRINT, "amplitude", mode)
    n_elements = 6 * 224 * 64
    report = rate_report(data, n_elements, prior, FINGERPRINT)
    assert report.file_bits == len(data) * 8
    assert report.bits_per_element == len(data) * 8 / n_elements
    assert report.ratio_vs_float32 == pytest.approx(32 / report.bits_per_element)
    assert report.ratio_vs_int16 == pytest.approx(16 / report.bits_per_element)
    parts = report.header_bytes + report.side_bytes + report.framing_bytes + report.payload_bytes
    assert parts == len(data)
    assert report.num_indices == 6 * (56 * 16 + 14 * 4)
    assert report.fixed_bits_per_element == pytest.approx(9 * report.num_indices / n_elements)
    assert report.paper_ratio == pytest.approx(224 * 64 / 952)


def test_rate_report_needs_a_positive_element_count(prior):
    hi, lo, side = skewed_frames(1)
    data = encode_file(hi, lo, side, prior, FINGERPRINT, "amplitude", "fixed")
    with pytest.raises(ValueError, match="^num_elements must be positive, got 0$"):
        rate_report(data, 0)
    assert rate_report(data, 1).ideal_bits_per_element is None  # no prior, no ideal rate


def test_rate_report_of_a_tagged_file_field_by_field():
    hi, lo, side = skewed_frames(2)
    prior = IndexPrior(K).set_counts(np.arange(1, K + 1), np.arange(K, 0, -1))
    key = b"k" * 16
    data = encode_file(hi, lo, side, prior, FINGERPRINT, "amplitude", "fixed", key=key)
    report = rate_report(data, 2 * 224 * 64, prior, FINGERPRINT, key=key)
    ideal = prior.cross_entropy_bits(hi, "hi") + prior.cross_entropy_bits(lo, "lo")
    assert report == RateReport(
        mode="fixed",
        num_frames=2,
        num_elements=28672,
        num_indices=1904,  # 2 x (56 x 16 + 14 x 4)
        file_bytes=2250,
        file_bits=18000,
        header_bytes=80,  # 44-byte header, 32-byte tag, 4-byte CRC
        side_bytes=16,
        framing_bytes=12,
        payload_bytes=2142,
        bits_per_element=18000 / 28672,
        ratio_vs_float32=32 * 28672 / 18000,
        ratio_vs_int16=16 * 28672 / 18000,
        bits_per_index=18000 / 1904,
        fixed_bits_per_element=9 * 1904 / 28672,
        ideal_bits_per_element=ideal / 28672,
        paper_ratio=28672 / 1904,
    )
    with pytest.raises(BitstreamError, match="HMAC tag: pass the key"):
        rate_report(data, 1, prior, FINGERPRINT)  # the prior's rate needs the file decoded
    with pytest.raises(BitstreamError, match="made by model 0001020304050607"):
        rate_report(data, 1, prior, bytes(8), key=key)


def test_rate_report_of_a_file_without_frames():
    data = encode_file(
        *(x[:0] for x in skewed_frames(1)), None, FINGERPRINT, "amplitude", "fixed", num_codes=K
    )
    report = rate_report(data, 5)
    assert (report.num_frames, report.num_indices, report.file_bits) == (0, 0, 384)
    assert report.bits_per_index == 384.0 and report.paper_ratio == 5.0  # divided by 1, not 0


def test_ans_is_within_one_percent_of_the_ideal(prior):
    n_frames = 300
    hi, lo, side = skewed_frames(n_frames, seed=5)
    data = encode_file(hi, lo, side, prior, FINGERPRINT, "amplitude", "ans")
    ideal_bits = prior.cross_entropy_bits(hi, "hi") + prior.cross_entropy_bits(lo, "lo")
    report = rate_report(data, n_frames * 224 * 64, prior, FINGERPRINT)
    fixed_overhead_bits = 8 * (report.header_bytes + report.side_bytes + report.framing_bytes)
    assert report.ideal_bits_per_element * report.num_elements == pytest.approx(ideal_bits)
    two_streams_bits = 8 * (2 + 8) * n_frames  # coarse stream's length, a second coder state
    assert len(data) * 8 <= 1.01 * ideal_bits + fixed_overhead_bits + two_streams_bits
    assert 8 * report.payload_bytes >= ideal_bits - 32 * n_frames  # no coder beats the model
    # the prior-free coders are far from it on this data: fixed is 9 bits, Huffman pays tables
    huff = rate_report(encode_file(hi, lo, side, prior, FINGERPRINT, "amplitude", "huffman"), 1)
    assert 8 * report.payload_bytes < 0.85 * 8 * huff.payload_bytes


def test_huffman_tables_are_counted_in_the_frame():
    rng = np.random.default_rng(0)
    hi = rng.choice(K, size=(1, 56, 16), p=zipf_probs(rng, K))
    lo = rng.choice(K, size=(1, 14, 4), p=zipf_probs(rng, K))
    (string,) = encode_frames(hi, lo, "huffman", num_codes=K)
    tables = [huffman.code_lengths(np.bincount(x.reshape(-1), minlength=K)) for x in (hi, lo)]
    table_bytes = sum(len(huffman.encode_table(t)) for t in tables)
    code_bits = sum(int(t[x.reshape(-1)].sum()) for t, x in zip(tables, (hi, lo), strict=True))
    assert len(string) == table_bytes + math.ceil(code_bits / 8)
    assert table_bytes >= 2 * K // 8  # at least the two presence bitmaps


# ---------------------------------------------------------------- Huffman internals


def test_huffman_code_lengths_are_complete_and_limited():
    fibonacci = [1, 1]
    while len(fibonacci) < 30:
        fibonacci.append(fibonacci[-1] + fibonacci[-2])  # the deepest possible Huffman tree
    freqs = np.zeros(64, dtype=np.int64)
    freqs[:30] = fibonacci
    lengths = huffman.code_lengths(freqs)
    assert lengths.max() <= huffman.MAX_CODE_LENGTH and (lengths[30:] == 0).all()
    assert np.sum(2.0 ** -lengths[:30]) <= 1.0
    unlimited = huffman.code_lengths(freqs, max_length=40)
    assert unlimited.max() == 29 and np.sum(2.0 ** -unlimited[:30]) == 1.0  # complete code
    assert list(huffman.code_lengths(np.array([0, 5, 0]))) == [0, 1, 0]  # one symbol: 1 bit


def test_huffman_table_round_trip_and_validation():
    lengths = huffman.code_lengths(np.array([5, 0, 3, 3, 1, 0, 0, 9, 2]))
    table = huffman.encode_table(lengths)
    parsed, offset = huffman.decode_table(table + b"tail", 0, lengths.size)
    np.testing.assert_array_equal(parsed, lengths)
    assert offset == len(table)
    over = huffman.encode_table(np.array([1, 1, 1, 0, 0, 0, 0, 0, 0]))  # Kraft sum 1.5
    with pytest.raises(ValueError, match="over-subscribed"):
        huffman.decode_table(over, 0, 9)


def test_huffman_rejects_undecodable_bits():
    lengths = np.array([1, 2, 0, 0])  # codes "0" and "10"; "11" is not a codeword
    with pytest.raises(ValueError, match="invalid Huffman codeword"):
        huffman.decode_segments(b"\xc0", [(lengths, 1)])
    with pytest.raises(ValueError, match="ends"):
        huffman.decode_segments(b"\x00", [(lengths, 9)])
    with pytest.raises(ValueError, match="padding"):
        huffman.decode_segments(b"\x01", [(lengths, 1)])


@pytest.mark.parametrize("mode", ["fixed", "huffman"])
def test_prefix_decoding_memory_is_linear_in_the_indices(mode):
    """The decoder once built a (8 len, 15) int64 array: ~1000x its payload."""
    rng = np.random.default_rng(0)
    n = 20_000
    x = rng.choice(K, size=n, p=zipf_probs(rng, K))
    lengths = (
        huffman.fixed_lengths(K)
        if mode == "fixed"
        else huffman.code_lengths(np.bincount(x, minlength=K))
    )
    data = huffman.encode_segments([(x, lengths)])
    tracemalloc.start()
    try:
        (back,) = huffman.decode_segments(data, [(lengths, n)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(back, x)
    # the (n,) int64 output is 8 n bytes, the Huffman lookup table 0.4 MB; the per-bit int64
    # windows of the old decoder took 120 bytes per payload bit (~1000 per index)
    assert peak < 32 * n + 2**19


def test_payloads_longer_than_their_indices_need_are_refused_before_work():
    lengths = huffman.fixed_lengths(K)
    with pytest.raises(ValueError, match="longer than 10 codewords"):
        huffman.decode_segments(bytes(1 << 24), [(lengths, 10)])
    probs = np.full(K, 1.0 / K)
    with pytest.raises(ValueError, match="longer than 10 indices"):
        ans_decode(bytes(4 * 1024), probs, 10)


def test_ans_worst_case_fits_its_bound():
    """The rarest code of a skewed prior costs close to 24 bits: the bound is tight, not loose."""
    probs = np.full(K, 1.0)
    probs[0] = 1e9
    for n in (1, 5, 952, 5000):
        data = ans_encode(np.full(n, K - 1), probs / probs.sum())
        assert len(data) <= max_payload_bytes(n)
    assert len(data) >= 0.95 * max_payload_bytes(n)


@pytest.mark.parametrize("mode", MODES)
def test_frame_strings_lie_within_their_payload_bounds(prior, mode):
    hi, lo, _ = skewed_frames(20, seed=3)
    shortest, longest = payload_bounds(mode, hi[0].size, lo[0].size, K)
    for string in encode_frames(hi, lo, mode, prior):
        assert shortest <= len(string) <= longest


# ---------------------------------------------------------------- the prior


def test_prior_travels_in_a_weights_only_state_dict(prior):
    buffer = io.BytesIO()
    torch.save(prior.state_dict(), buffer)
    buffer.seek(0)
    loaded = IndexPrior(K)
    assert not loaded.is_fitted
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    assert loaded.is_fitted
    torch.testing.assert_close(loaded.counts_hi, prior.counts_hi, rtol=0, atol=0)
    np.testing.assert_array_equal(loaded.probs("lo"), prior.probs("lo"))


def test_prior_refuses_counts_that_leave_a_code_uncodable():
    with pytest.raises(ValueError, match="smoothing"):
        IndexPrior(4).update(np.array([0]), np.array([1]), smoothing=0)
    with pytest.raises(ValueError, match="zero counts"):
        IndexPrior(2).set_counts(np.array([3, 0]), np.array([1, 1]))


def test_cross_entropy_bits_is_the_ideal_code_length():
    prior = IndexPrior(2).set_counts(np.array([3, 1]), np.array([1, 1]))
    assert prior.cross_entropy_bits(np.array([0, 1, 1]), "hi") == pytest.approx(
        -math.log2(0.75) + 2 * 2
    )


# ---------------------------------------------------------------- refusing bad streams


def test_other_model_is_refused(prior):
    hi, lo, side = skewed_frames(2)
    data = encode_file(hi, lo, side, prior, FINGERPRINT, "amplitude")
    with pytest.raises(BitstreamError, match="made by model 0001020304050607"):
        decode_file(data, prior, b"\xff" * 8)
    decode_file(data, prior, None)  # an explicit opt-out, e.g. for rate reports


def test_newer_and_older_versions_are_refused(prior):
    hi, lo, side = skewed_frames(1)
    data = bytearray(encode_file(hi, lo, side, prior, FINGERPRINT, "amplitude"))
    assert data[4] == 3
    data[4] = 4
    for stream in (bytes(data), reseal(bytes(data))):
        with pytest.raises(BitstreamError, match="upgrade mmslim") as error:
            read_header(stream)
        assert error.value.field == "version"
    for old in (1, 2):
        data[4] = old
        for stream in (bytes(data), reseal(bytes(data))):
            with pytest.raises(BitstreamError, match=f"in format {old}.*predates format 3.*re-"):
                decode_file(stream, prior, FINGERPRINT)


def test_ans_file_needs_the_matching_prior(prior):
    hi, lo, side = skewed_frames(1)
    data = encode_file(hi, lo, side, prior, FINGERPRINT, "amplitude")
    with pytest.raises(BitstreamError, match="fitted prior"):
        decode_file(data, None, FINGERPRINT)
    with pytest.raises(BitstreamError, match="fitted prior"):
        decode_file(data, IndexPrior(K), FINGERPRINT)
    small = IndexPrior(16).set_counts(np.ones(16, np.int64), np.ones(16, np.int64))
    with pytest.raises(BitstreamError, match="K=512"):
        decode_file(data, small, FINGERPRINT)


def _small_file(prior16: IndexPrior, mode: str) -> bytes:
    """A 3-frame file with small grids, so that fuzzing reaches every field quickly."""
    hi, lo, side = skewed_frames(3, num_codes=16, shape_hi=(6, 4), shape_lo=(2, 1))
    return encode_file(hi, lo, side, prior16, FINGERPRINT, "phase", mode)


PRIOR16 = IndexPrior(16).update(
    *skewed_frames(20, num_codes=16, shape_hi=(6, 4), shape_lo=(2, 1))[:2]
)
VALID = {mode: _small_file(PRIOR16, mode) for mode in MODES}
FUZZ = settings(max_examples=700, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decodes_cleanly_or_refuses(data: bytes) -> None:
    """Either BitstreamError, or a decode whose indices have the header's shapes and are < K."""
    try:
        decoded = decode_file(data, PRIOR16, FINGERPRINT)
    except BitstreamError as error:
        assert str(error)
        return
    header = decoded.header
    assert decoded.indices_hi.shape == (header.num_frames, *header.shape_hi)
    assert decoded.indices_lo.shape == (header.num_frames, *header.shape_lo)
    for x in (decoded.indices_hi, decoded.indices_lo):
        assert x.size == 0 or (0 <= x.min() and x.max() < header.num_codes)


@FUZZ
@given(mode=st.sampled_from(MODES), data=st.data())
def test_truncated_streams_are_refused(mode, data):
    valid = VALID[mode]
    cut = data.draw(st.integers(0, len(valid) - 1))
    with pytest.raises(BitstreamError):
        decode_file(valid[:cut], PRIOR16, FINGERPRINT)


@FUZZ
@given(mode=st.sampled_from(MODES), data=st.data())
def test_bit_flipped_streams_are_refused(mode, data):
    valid = bytearray(VALID[mode])
    for bit in data.draw(st.lists(st.integers(0, 8 * len(valid) - 1), min_size=1, max_size=3)):
        valid[bit // 8] ^= 1 << (bit % 8)
    if bytes(valid) == VALID[mode]:  # flips cancelled out
        return
    with pytest.raises(BitstreamError):
        decode_file(bytes(valid), PRIOR16, FINGERPRINT)


@FUZZ
@given(blob=st.binary(max_size=400), keep_magic=st.booleans())
def test_random_streams_are_refused(blob, keep_magic):
    if keep_magic:  # get past the magic and version checks, and sometimes the CRC too
        blob = reseal(b"MMSL\x02" + blob + b"\0\0\0\0")
    with pytest.raises(BitstreamError):
        read_header(blob)
    _decodes_cleanly_or_refuses(blob)


@FUZZ
@given(mode=st.sampled_from(MODES), data=st.data())
def test_corruption_behind_a_valid_checksum_never_escapes(mode, data):
    """With the CRC recomputed, corruption reaches every length field and every decoder."""
    valid = bytearray(VALID[mode])
    start = data.draw(st.integers(5, len(valid) - 5))  # past magic and version
    junk = data.draw(st.binary(min_size=1, max_size=6))
    valid[start : start + len(junk)] = junk
    if data.draw(st.booleans()):
        del valid[data.draw(st.integers(5, len(valid) - 5)) :]
        valid += b"\0\0\0\0"
    _decodes_cleanly_or_refuses(reseal(bytes(valid)))


@FUZZ
@given(mode=st.sampled_from(MODES), strings=st.lists(st.binary(max_size=60), max_size=3))
def test_random_frame_strings_raise_only_bitstream_error(mode, strings):
    try:
        hi, lo = decode_frames(strings, (6, 4), (2, 1), mode, PRIOR16)
    except BitstreamError:
        return
    assert hi.shape == (len(strings), 6, 4) and (hi < 16).all() and (lo < 16).all()


def test_benchmark_runs():
    result = benchmark_entropy(n_frames=4)
    assert set(result) == {"ans", "huffman", "fixed", "ideal_bits_per_index"}
    assert result["fixed"]["bits_per_index"] == 9.0
    assert result["ans"]["bits_per_index"] < result["huffman"]["bits_per_index"]


def test_the_coarse_grid_decodes_from_the_first_bytes_of_an_ans_frame(prior):
    hi, lo, _ = skewed_frames(3)
    coder = FrameCoder("ans", prior)
    for h, c in zip(hi, lo, strict=True):
        string = coder.encode(h, c)
        words = int.from_bytes(string[:2], "little")
        coarse_end = 2 + 4 * words
        assert coarse_end < len(string)  # the fine stream follows
        np.testing.assert_array_equal(coder.decode_coarse(string[:coarse_end], c.shape), c)
        np.testing.assert_array_equal(coder.decode_coarse(string, c.shape), c)
        with pytest.raises(ValueError, match="coarse stream needs"):
            coder.decode_coarse(string[: coarse_end - 1], c.shape)
        full_hi, full_lo = coder.decode(string, h.shape, c.shape)
        np.testing.assert_array_equal(full_hi, h)
        np.testing.assert_array_equal(full_lo, c)


def test_an_ans_frame_whose_coarse_length_overruns_is_refused(prior):
    hi, lo, _ = skewed_frames(1)
    coder = FrameCoder("ans", prior)
    string = bytearray(coder.encode(hi[0], lo[0]))
    string[:2] = (len(string)).to_bytes(2, "little")  # claims more words than the frame holds
    with pytest.raises(ValueError, match="coarse ANS stream of"):
        coder.decode(bytes(string), hi[0].shape, lo[0].shape)
