"""Frame strings at their edges (``mmslim.codec.frames``): payload bounds worked out by hand, the
coder's defaults and refusals at their exact limits (written against the mutants that the
round-trip and fuzzing tests let through)."""

from __future__ import annotations

import numpy as np
import pytest

from mmslim.codec import BitstreamError, decode_frames, encode_frames
from mmslim.codec.ans import (
    ans_decode,
    ans_decode_segments,
    ans_encode,
    ans_encode_segments,
    categorical_model,
    max_payload_bytes,
)
from mmslim.codec.frames import MAX_INDICES_PER_FRAME, FrameCoder, payload_bounds
from mmslim.codec.prior import IndexPrior
from mmslim.config import MAX_CODES

K = 16
PRIOR = IndexPrior(K).set_counts(np.arange(1, K + 1), np.arange(K, 0, -1))


def grids(n=2, shape_hi=(4, 2), shape_lo=(1, 1), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, K, (n, *shape_hi)), rng.integers(0, K, (n, *shape_lo))


def test_payload_bounds_by_hand():
    """K = 512 and a 224 x 64 frame: 896 + 56 = 952 indices."""
    assert payload_bounds("fixed", 896, 56, 512) == (1071, 1071)  # 9 bits each: 8568 bits
    # Huffman: a 64-byte bitmap per table plus at least one 4-bit length (1 byte), then at
    # least one bit per index; at most 512 and 56 lengths (256 + 28 bytes), 15 bits per index.
    assert payload_bounds("huffman", 896, 56, 512) == (2 * 65 + 119, 2 * 64 + 284 + 1785)
    assert payload_bounds("huffman", 5, 0, 16) == (2 * 2 + 1 + 1, 2 * 2 + 3 + 10)  # empty lo
    # ANS: the coarse stream's 2-byte length, then two streams of 24 bits per index + 64 bits,
    # in 32-bit words: 56 -> 176 bytes, 896 -> 2696
    assert payload_bounds("ans", 896, 56, 512) == (2, 2 + 176 + 2696)
    assert payload_bounds("fixed", 3, 2, 2) == (1, 1)  # 1 bit each
    with pytest.raises(ValueError, match=r"mode must be one of \('fixed', 'huffman', 'ans'\)"):
        payload_bounds("rle", 1, 1, 16)


def test_ans_is_the_default_mode():
    hi, lo = grids()
    strings = encode_frames(hi, lo, prior=PRIOR)
    assert strings == encode_frames(hi, lo, "ans", PRIOR)
    assert strings != encode_frames(hi, lo, "fixed", PRIOR)
    back_hi, back_lo = decode_frames(strings, (4, 2), (1, 1), prior=PRIOR)
    np.testing.assert_array_equal(back_hi, hi)
    np.testing.assert_array_equal(back_lo, lo)


def test_encode_frames_needs_two_stacks_of_equal_length():
    hi, lo = grids()
    four = grids(4)[1]  # (4, 1, 1): as many frames as hi[0] (4, 2) has rows
    for bad_hi, bad_lo in ((hi[0], lo), (hi, lo[0]), (hi, lo[:1]), (hi[0], lo[0]), (hi[0], four)):
        with pytest.raises(ValueError, match=r"need \(N, h, w\) grids"):
            encode_frames(bad_hi, bad_lo, "fixed", num_codes=K)


def test_frame_coder_refusals():
    with pytest.raises(ValueError, match="mode must be one of"):
        FrameCoder("rle", num_codes=K)
    with pytest.raises(ValueError, match="num_codes=8 but the prior has K=16"):
        FrameCoder("fixed", PRIOR, num_codes=8)
    assert FrameCoder("fixed", PRIOR, num_codes=K).num_codes == K
    for k in (1, MAX_CODES + 1, None):
        with pytest.raises(ValueError, match=rf"need K in \[2, {MAX_CODES}\]"):
            FrameCoder("fixed", num_codes=k)
    for k in (2, MAX_CODES):
        assert FrameCoder("huffman", num_codes=k).num_codes == k
    message = (
        r"^ANS coding needs the model's fitted entropy prior; fit it with mmslim.codec.fit_prior "
        r"\(or `mmslim prior --checkpoint CKPT --data DATA`\)$"
    )
    for prior in (None, IndexPrior(K)):
        with pytest.raises(ValueError, match=message):
            FrameCoder("ans", prior, num_codes=K)


def test_frames_beyond_the_index_limit_are_refused_before_decoding():
    coder = FrameCoder("fixed", num_codes=2)
    side = MAX_INDICES_PER_FRAME // 2
    hi, lo = coder.decode(bytes(side // 8 * 2), (1, side), (1, side))  # just at the limit
    assert hi.shape == lo.shape == (1, side) and not hi.any()
    with pytest.raises(ValueError, match="^a frame of 1048577 indices exceeds the sanity limit$"):
        coder.decode(bytes(side // 8 * 2 + 1), (1, side), (1, side + 1))


def test_a_bad_frame_is_named_by_its_number():
    hi, lo = grids(3)
    strings = encode_frames(hi, lo, "fixed", num_codes=K)
    strings[2] = strings[2] + b"\0"
    with pytest.raises(BitstreamError, match="frame 2: bad fixed data") as error:
        decode_frames(strings, (4, 2), (1, 1), "fixed", num_codes=K)
    assert error.value.field == "frame 2 payload"


def test_bad_indices_are_named_by_their_grid():
    hi, lo = grids()
    for name, bad_hi, bad_lo in (("indices_hi", hi + K, lo), ("indices_lo", hi, lo - K)):
        with pytest.raises(ValueError, match=rf"^{name} must lie in \[0, 16\), got range"):
            encode_frames(bad_hi, bad_lo, "huffman", num_codes=K)
    with pytest.raises(ValueError, match="^indices_lo must be integers, got dtype float64"):
        encode_frames(hi, lo.astype(float), "fixed", num_codes=K)


def test_ans_payload_refusals_by_message():
    probs = PRIOR.probs("hi")
    indices = np.random.default_rng(2).integers(0, K, 40)  # (40,)
    data = ans_encode(indices, probs)
    back = ans_decode(data, probs, 40)
    np.testing.assert_array_equal(back, indices)
    assert back.dtype == np.int64
    at_bound = b"\1" * 40  # exactly the longest payload 10 indices can need: not refused as long
    with pytest.raises(ValueError, match="^ANS payload holds more data than the expected"):
        ans_decode(at_bound, probs, 10)
    with pytest.raises(ValueError, match=rf"^ANS payload of {len(data) - 1} bytes is not a whole"):
        ans_decode(data[:-1], probs, 40)
    with pytest.raises(ValueError, match=r"^ANS payload of 44 bytes is longer than 10 indices can "
                       r"need \(40 bytes\)$"):  # fmt: skip
        ans_decode(bytes(44), probs, 10)
    for bad, n in ((data, 39), (data[4:], 40), (data + b"\1\0\0\0", 40)):
        with pytest.raises(ValueError, match="^ANS payload holds more data than the expected"):
            ans_decode(bad, probs, n)


def test_strings_outside_their_bounds_are_refused_before_decoding():
    coder = FrameCoder("huffman", num_codes=K)
    hi, lo = grids(1)
    string = coder.encode(hi[0], lo[0])
    shortest, longest = payload_bounds("huffman", 8, 1, K)
    assert shortest <= len(string) <= longest
    for bad in (bytes(shortest - 1), bytes(longest + 1)):
        with pytest.raises(ValueError, match=rf"^{len(bad)} bytes for 9 indices; huffman frames "
                           rf"of that size take {shortest} to {longest} bytes$"):  # fmt: skip
            coder.decode(bad, (4, 2), (1, 1))


def test_categorical_models_need_a_usable_probability_table():
    message = "^probs must be a 1-D array of finite, nonnegative, not-all-zero values$"
    for probs in ([[0.5, 0.5]], [0.5, np.nan], [1.5, -0.5], [0.0, 0.0], [0.5, np.inf]):
        with pytest.raises(ValueError, match=message):
            categorical_model(np.array(probs))
    model = categorical_model(np.array([0, 2]))  # integers, unnormalised, a zero: still usable
    data = ans_encode_segments([(np.array([1, 1]), model)])
    (back,) = ans_decode_segments(data, [(model, 2)])
    assert back.tolist() == [1, 1]
    assert max_payload_bytes(0) == 8 and max_payload_bytes(1) == 12  # the termination alone
