"""The container's edges, one by one: what ``encode_file`` refuses and at which value, the sizes
``file_bytes`` promises, the header's defaults, and what the header parser refuses field by
field (written against the mutants that the round-trip and fuzzing tests let through)."""

from __future__ import annotations

import struct
import warnings
import zlib

import numpy as np
import pytest

from mmslim.codec import BitstreamError, decode_file, encode_file, read_header
from mmslim.codec.ans import ans_decode, ans_encode
from mmslim.codec.container import MAX_INDICES_PER_FILE, file_bytes
from mmslim.codec.header import HEADER, Expected
from mmslim.codec.prior import IndexPrior
from mmslim.config import MAX_CODES

K = 16
FINGERPRINT = bytes(range(8))
PRIOR = IndexPrior(K).set_counts(np.arange(1, K + 1), np.arange(K, 0, -1))


def grids(n=2, shape_hi=(4, 2), shape_lo=(1, 1), seed=0):
    """(hi (n, h1, w1), lo (n, h2, w2), side (n, 2)): indices in [0, K), side in dB."""
    rng = np.random.default_rng(seed)
    hi = rng.integers(0, K, (n, *shape_hi))
    lo = rng.integers(0, K, (n, *shape_lo))
    side = np.tile([[-60.0, 20.0]], (n, 1)).astype(np.float32)
    return hi, lo, side


def encode(*args, mode="fixed", kind="amplitude", **kwargs):
    hi, lo, side = args or grids()
    return encode_file(hi, lo, side, PRIOR, FINGERPRINT, kind, mode, **kwargs)


# ---------------------------------------------------------------- encode_file's arguments


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "range"}, r"kind must be in \('amplitude', 'phase'\), side_dtype in"),
        ({"side_dtype": "float64"}, r"side_dtype in \('float32', 'float16'\)"),
        ({"first_sequence": 2**32}, "first_sequence must fit 32 bits, got 4294967296"),
        ({"first_sequence": -1}, "first_sequence must fit 32 bits, got -1"),
        ({"frame_shape": (65536, 4)}, "frame and grid sides must be below 65536"),
    ],
)
def test_encode_file_refuses_bad_arguments_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        encode(**kwargs)


def test_encode_file_refuses_a_fingerprint_of_another_length():
    hi, lo, side = grids()
    for fingerprint in (bytes(7), bytes(9)):
        with pytest.raises(ValueError, match="^model_fingerprint must be 8 bytes$"):
            encode_file(hi, lo, side, PRIOR, fingerprint, "amplitude", "fixed")


@pytest.mark.parametrize("which", ["hi", "lo", "frame"])
def test_every_side_must_fit_16_bits(which):
    """65535 is the largest side a uint16 field holds: accepted; 65536 is refused wherever it
    is, in the fine grid, the coarse grid or the frame shape."""
    side = grids(1)[2]
    for size in (65535, 65536):
        hi = np.zeros((1, 1, size if which == "hi" else 1), int)  # (1, 1, w1)
        lo = np.zeros((1, size if which == "lo" else 1, 1), int)  # (1, h2, 1)
        frame_shape = (size if which == "frame" else 1, 1)
        if size > 0xFFFF:
            with pytest.raises(ValueError, match="^frame and grid sides must be below 65536$"):
                encode(hi, lo, side, frame_shape=frame_shape)
            continue
        header = read_header(encode(hi, lo, side, frame_shape=frame_shape))
        assert (header.shape_hi, header.shape_lo) == (hi.shape[1:], lo.shape[1:])
        assert header.frame_shape == frame_shape


def test_side_info_that_overflows_float16_is_refused_without_a_warning():
    hi, lo, side = grids()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for bad in (side * 1e5, np.array([[np.nan, 1.0], [0.0, 1.0]])):
            with pytest.raises(ValueError, match="finite in float16"):
                encode(hi, lo, bad, side_dtype="float16")


@pytest.mark.parametrize("pair", [(5.0, 5.0), (-1000.5, 0.0), (0.0, 1000.5), (6.0, 5.0)])
def test_side_info_must_be_an_increasing_pair_within_range(pair):
    """min == max, or either end outside +-1000 dB, is refused when writing and when reading."""
    hi, lo, side = grids(2)
    side[1] = pair
    with pytest.raises(ValueError, match=r"^side must be \(N, 2\) = \(2, 2\) pairs min < max"):
        encode(hi, lo, side)
    body = body_of(encode(hi, lo, grids(2)[2]))
    struct.pack_into("<2f", body, HEADER.size + RECORD + 5 + 2, *pair)  # frame 1's side info
    refused_file(sealed(body), "frame 1 side info", "^frame 1 side info")


def test_header_defaults():
    header = read_header(encode())
    assert (header.first_sequence, header.frame_shape, header.tagged) == (0, (0, 0), False)
    assert header.side_dtype == "float32" and header.num_codes == K


# ---------------------------------------------------------------- file_bytes


@pytest.mark.parametrize("mode", ["fixed", "huffman", "ans"])
@pytest.mark.parametrize("side_dtype", ["float32", "float16"])
@pytest.mark.parametrize("tagged", [False, True])
def test_file_bytes_is_the_length_of_the_file(mode, side_dtype, tagged):
    hi, lo, side = grids(3)
    key = b"k" * 32 if tagged else None
    data = encode(hi, lo, side, mode=mode, side_dtype=side_dtype, key=key)
    payload = sum(decode_file(data, PRIOR, FINGERPRINT, key=key).header.frame_bytes)
    assert file_bytes(payload, 3, side_dtype, tagged) == len(data)
    if side_dtype == "float32" and not tagged:
        assert file_bytes(payload, 3) == len(data)  # the defaults


# ---------------------------------------------------------------- the ANS helpers


def test_ans_encode_takes_indices_of_any_shape():
    probs = PRIOR.probs("hi")
    indices = np.random.default_rng(1).integers(0, K, (6, 5))
    data = ans_encode(indices, probs)
    assert data == ans_encode(indices.reshape(-1), probs)
    np.testing.assert_array_equal(ans_decode(data, probs, 30), indices.reshape(-1))


# ---------------------------------------------------------------- the header, field by field


def header_file(**fields) -> bytes:
    """A frameless file whose header holds ``fields`` (raw codes and numbers, as in the layout
    of mmslim.codec.container) over valid defaults, with a correct CRC."""
    values = {
        "magic": b"MMSL", "version": 3, "mode": 0, "kind": 0, "side": 0, "flags": 0,
        "reserved": bytes(3), "fingerprint": FINGERPRINT, "n": 0, "k": K, "first": 0,
        "frame": (0, 0), "hi": (4, 2), "lo": (1, 1),
    }  # fmt: skip
    values.update(fields)
    body = HEADER.pack(*list(values.values())[:11], *values["frame"], *values["hi"], *values["lo"])
    body += values.get("tail", b"")
    return body + struct.pack("<I", zlib.crc32(body))


def refused(data: bytes, field: str, message: str) -> None:
    with pytest.raises(BitstreamError, match=message) as error:
        read_header(data)
    assert error.value.field == field


def test_a_frameless_header_is_a_valid_file():
    header = read_header(header_file())
    assert (header.num_frames, header.file_bytes, header.frame_bytes) == (0, 48, ())
    assert header.version == 3
    assert (header.mode, header.kind, header.side_dtype) == ("fixed", "amplitude", "float32")
    decoded = decode_file(header_file(), None, FINGERPRINT)
    assert decoded.indices_hi.shape == (0, 4, 2) and decoded.indices_lo.shape == (0, 1, 1)


def test_length_magic_and_version_are_checked_first():
    refused(header_file()[:47], "length", "file of 47 bytes is shorter than the header")
    refused(header_file(magic=b"MMSX"), "magic", r"not an mmslim file \(magic b'MMSX'")
    refused(header_file(version=0), "version", "^unknown file format version 0$")
    flipped = bytearray(header_file())
    flipped[-1] ^= 1  # in the CRC itself
    message = "^checksum mismatch: the file is truncated or corrupted$"
    refused(bytes(flipped), "checksum", message)
    refused(header_file(version=4), "version", "version 4 is newer than this mmslim reads")
    for old in (1, 2):
        refused(
            header_file(version=old),
            "version",
            rf"^file is in format {old}, which predates format 3 \(format 2: frame sequence "
            r"numbers, a new model fingerprint; format 3: the coarse grid first in ANS frames\); "
            r"re-compress the maps with the model \(`mmslim compress`\)$",
        )


@pytest.mark.parametrize(
    ("code", "last_valid", "value"),
    [("mode", 2, "ans"), ("kind", 1, "phase"), ("side", 1, "float16")],
)
def test_unknown_codes_are_refused_and_the_last_known_one_read(code, last_valid, value):
    header = read_header(header_file(**{code: last_valid}))
    assert value == {"mode": header.mode, "kind": header.kind, "side": header.side_dtype}[code]
    refused(header_file(**{code: last_valid + 1}), "codes", "unknown mode/kind/side-dtype codes")


def test_unknown_flags_and_reserved_bytes_are_refused():
    refused(header_file(flags=2), "flags", "unknown flags 0x02 or nonzero reserved bytes")
    refused(header_file(flags=3), "flags", "unknown flags 0x03")
    refused(header_file(reserved=b"\0\0\1"), "flags", "nonzero reserved bytes")
    refused(header_file(flags=1), "tag", "^file too short for its HMAC tag$")
    tagged = read_header(header_file(flags=1, tail=bytes(32)))  # a tag of zeros: not checked
    assert tagged.tagged and tagged.file_bytes == 80


def test_codebook_sizes_outside_2_to_32768_are_refused():
    for k in (2, MAX_CODES):
        assert read_header(header_file(k=k)).num_codes == k
    for k in (1, MAX_CODES + 1):
        refused(header_file(k=k), "num_codes", rf"K={k} is outside \[2, {MAX_CODES}\]")


def test_empty_grids_and_half_recorded_frame_shapes_are_refused():
    assert read_header(header_file(hi=(1, 1), lo=(1, 1), frame=(1, 1))).frame_shape == (1, 1)
    for fields in ({"hi": (0, 2)}, {"lo": (1, 0)}, {"frame": (0, 8)}, {"frame": (8, 0)}):
        refused(header_file(**fields), "shapes", "invalid frame shape")
    message = r"^invalid frame shape \(0, 1\) or grids \[4, 2, 1, 1\]$"
    refused(header_file(frame=(0, 1)), "shapes", message)  # half recorded at the smallest side


# ---------------------------------------------------------------- frame records, field by field

RECORD = 2 + 8 + 4  # sequence number, float32 (min, max), payload length


def body_of(data: bytes) -> bytearray:
    return bytearray(data[:-4])


def sealed(body: bytes) -> bytes:
    return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))


def refused_file(data: bytes, field: str, message: str, **kwargs) -> None:
    with pytest.raises(BitstreamError, match=message) as error:
        decode_file(data, PRIOR, FINGERPRINT, **kwargs)
    assert error.value.field == field


def test_frame_records_are_refused_by_exact_field():
    data = encode(*grids(3))  # fixed: 9 indices of 4 bits, 5 bytes per frame
    assert len(data) == HEADER.size + 3 * (RECORD + 5) + 4
    body = body_of(data)
    struct.pack_into("<I", body, 20, 4)  # N = 4
    refused_file(sealed(body), "num_frames", "too short for 4 frames of at least 19 bytes each")
    body = body_of(data)
    struct.pack_into("<H", body, HEADER.size + RECORD + 5, 5)  # frame 1's sequence number
    refused_file(
        sealed(body),
        "frame 1 sequence number",
        "frame 1 has sequence number 5, expected 1: frames were dropped, duplicated or reordered",
    )
    body = body_of(data)
    struct.pack_into("<2f", body, HEADER.size + RECORD + 5 + 2, 5.0, 1.0)  # frame 1: min > max
    refused_file(sealed(body), "frame 1 side info", r"frame 1 side info \(5, 1\) is not a finite")
    body = body_of(data)
    struct.pack_into("<I", body, HEADER.size + 10, 6)  # frame 0 claims 6 bytes
    refused_file(
        sealed(body),
        "frame 0 payload length",
        "frame 0 claims 6 payload bytes; fixed frames of 9 indices take 5 to 5",
    )
    refused_file(sealed(body_of(data) + b"abc"), "length", "3 unexpected bytes after the last")


def test_ans_records_that_run_past_the_end_are_refused_by_exact_field():
    hi, lo, side = grids(2, seed=3)
    data = encode(hi, lo, side, mode="ans")
    first = struct.unpack_from("<I", data, HEADER.size + 10)[0]  # frame 0's payload length
    assert 4 <= first <= 32  # room to claim 4 bytes more, within what 9 indices can need
    body = body_of(data)
    struct.pack_into("<I", body, HEADER.size + 10, first + 4)
    cut = body[: HEADER.size + RECORD + first]  # frame 1 gone: frame 0 now runs past the end
    struct.pack_into("<I", cut, 20, 1)
    refused_file(
        sealed(cut), "frame 0 payload length", f"frame 0 claims {first + 4} bytes, past the end"
    )
    cut = body_of(data)[: HEADER.size + RECORD + first + RECORD - 4]  # frame 1's record cut
    refused_file(sealed(cut), "frame 1", "frame 1's record runs past the end of the file")
    second = struct.unpack_from("<I", data, HEADER.size + RECORD + first + 10)[0]
    cut = body_of(data)[: HEADER.size + RECORD + first + RECORD]  # the record ends the file
    message = f"^frame 1 claims {second} bytes, past the end of the file$"
    refused_file(sealed(cut), "frame 1 payload length", message)


def test_what_the_decoder_knows_is_checked_by_exact_field():
    data = encode(*grids(2))
    cases = [
        (Expected(num_codes=8), "num_codes", "file has num_codes 16, but the decoding model "),
        (Expected(kind="phase"), "kind", "file has kind amplitude, but the decoding model"),
        (Expected(shape_hi=[4, 3]), "shape_hi", r"expects \(4, 3\): a file for another model"),
        (Expected(first_sequence=1), "first_sequence", "file starts at frame 0, but the stream"),
    ]
    for expected, field, message in cases:
        refused_file(data, field, message, expected=expected)
    decode_file(data, PRIOR, FINGERPRINT, Expected(shape_hi=[4, 2], num_codes=K, kind="amplitude"))
    message = "made by model 0001020304050607, this model is 0707070707070707: load the matching"
    with pytest.raises(BitstreamError, match=message) as error:
        decode_file(data, PRIOR, bytes([7] * 8))
    assert error.value.field == "fingerprint"


def test_ans_files_name_the_prior_they_miss():
    data = encode(*grids(1), mode="ans")
    for prior in (None, IndexPrior(K)):  # none, or one never fitted
        message = "^this file is ANS-coded: decoding needs the model's fitted prior$"
        with pytest.raises(BitstreamError, match=message) as error:
            decode_file(data, prior, FINGERPRINT)
        assert error.value.field == "mode"
    other = IndexPrior(8).set_counts(np.ones(8, np.int64), np.ones(8, np.int64))
    with pytest.raises(BitstreamError, match="^file has K=16, the prior K=8$") as error:
        decode_file(data, other, FINGERPRINT)
    assert error.value.field == "num_codes"
    fixed = encode(*grids(1))
    assert decode_file(fixed, other, FINGERPRINT).header.num_codes == K  # not used: no ANS


def test_tag_refusals_say_what_to_do():
    key = b"k" * 32
    tagged, plain = encode(*grids(1), key=key), encode(*grids(1))
    refused_file(tagged, "tag", r"^file carries an HMAC tag: pass the key .* to decode it$")
    message = "^a key was given but the file carries no HMAC tag: .* tag was stripped; refusing it$"
    refused_file(plain, "tag", message, key=key)
    refused_file(
        tagged,
        "tag",
        "^HMAC tag mismatch: the file was altered, or made with another key$",
        key=b"j" * 32,
    )
    assert decode_file(tagged, PRIOR, FINGERPRINT, key=key).header.tagged


def test_limits_hold_at_their_exact_values():
    # MAX_INDICES_PER_FILE indices exactly pass the cap (and then fail the length check)
    at_cap = header_file(n=1, hi=(8192, 8191), lo=(8192, 1))
    assert 8192 * 8191 + 8192 == MAX_INDICES_PER_FILE
    refused(at_cap, "num_frames", "file too short for 1 frames")
    message = (
        r"^1 frames of 67108865 indices exceed 67108864 indices; decode with the model's grid "
        r"sizes \(decompress_maps, or Expected\) to lift the limit$"
    )
    refused(header_file(n=1, hi=(8192, 8191), lo=(8193, 1)), "num_frames", message)
    # side info at the ends of the plausible range is kept
    hi, lo, _ = grids(1)
    data = encode(hi, lo, np.array([[-1000.0, 1000.0]]))
    np.testing.assert_array_equal(decode_file(data, None, FINGERPRINT).side, [[-1000, 1000]])
    # an all-zero last frame codes to two empty ANS streams (the 2-byte length, 0 words) that
    # end exactly at the CRC
    lo_zero = np.zeros((1, 1, 1), int)
    data = encode(np.zeros((1, 4, 2), int), lo_zero, np.array([[0.0, 1.0]]), mode="ans")
    decoded = decode_file(data, PRIOR, FINGERPRINT)
    assert decoded.header.frame_bytes == (2,) and not decoded.indices_hi.any()
