"""Files made by someone who means harm, or by accident: every decode is bounded before it
allocates, frames cannot be dropped, duplicated or reordered unnoticed, an HMAC tag resists
deliberate edits, and all of it ends in ``BitstreamError`` naming the field."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from mmslim.codec import BitstreamError, decode_file, rate_report, read_header
from mmslim.codec.auth import TAG_BYTES
from mmslim.codec.container import HEADER, LENGTH, SEQUENCE
from mmslim.codec.header import FORMAT_VERSION
from mmslim.codec.maps import compress_maps, decompress_maps
from mmslim.data.dataset import load_frames
from mmslim.data.samples import sample_path
from mmslim.training.checkpoint import load_model
from tests.codec.golden_files import GOLDEN

KEY = b"k" * 32
MODES = ("fixed", "huffman", "ans")
FIELDS = HEADER.size  # the fixed header; then frame records


@pytest.fixture(scope="module")
def model():
    return load_model(GOLDEN / "model.pt")[0]


@pytest.fixture(scope="module")
def maps():
    return load_frames(sample_path("sample.npz")).amplitude[:4]  # (4, 224, 64) dB


@pytest.fixture(scope="module")
def files(model, maps):
    return {mode: compress_maps(model, maps, "amplitude", mode) for mode in MODES}


def reseal(body: bytes) -> bytes:
    """``body`` (everything before the CRC) with a correct CRC: what an attacker can do."""
    return body + struct.pack("<I", zlib.crc32(body))


def edit_header(data: bytes, fmt: str, offset: int, *values) -> bytes:
    """Overwrite header bytes at ``offset`` with ``values`` packed as ``fmt``, then reseal."""
    body = bytearray(data[:-4])
    struct.pack_into(fmt, body, offset, *values)
    return reseal(bytes(body))


def split_records(data: bytes) -> tuple[bytes, list[bytes]]:
    """(fixed header, [frame record, ...]) of an untagged float32-side file."""
    n = struct.unpack_from("<I", data, 20)[0]
    offset, records = FIELDS, []
    for _ in range(n):
        size = SEQUENCE.size + 8 + LENGTH.size
        (length,) = LENGTH.unpack_from(data, offset + size - LENGTH.size)
        records.append(data[offset : offset + size + length])
        offset += size + length
    return data[:FIELDS], records


def join_records(header: bytes, records: list[bytes]) -> bytes:
    """A file of ``records`` with N set to their number, resealed."""
    head = bytearray(header)
    struct.pack_into("<I", head, 20, len(records))
    return reseal(bytes(head) + b"".join(records))


def refused(model, data: bytes, field_part: str, **kwargs) -> BitstreamError:
    with pytest.raises(BitstreamError) as error:
        decompress_maps(model, data, **kwargs)
    assert error.value.field is not None and field_part in error.value.field, error.value
    return error.value


# ---------------------------------------------------------------- bounds before allocation


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("offset", "fmt", "values", "field"),
    [
        (32, "<2H", (7936, 1984), "frame_shape"),  # the bomb: a huge frame from a tiny file
        (36, "<2H", (1984, 496), "shape_hi"),
        (40, "<2H", (496, 124), "shape_lo"),
        (24, "<I", (4096,), "num_codes"),
        (20, "<I", (2**32 - 1,), "num_frames"),
    ],
)
def test_grown_header_fields_are_refused_before_decoding(
    model, files, mode, offset, fmt, values, field
):
    data = edit_header(files[mode], fmt, offset, *values)
    refused(model, data, field)


def test_grids_must_be_what_the_model_makes_for_the_frame_shape(model, files):
    # consistent on its own (a 448 x 64 frame has 112 x 16 and 28 x 4 grids), yet refused:
    data = edit_header(files["ans"], "<6H", 32, 448, 64, 112, 16, 28, 4)
    refused(model, data, "frame_shape")
    # A receiver that asks for 448 x 64 frames gets them: ANS decodes an index 0 past the end of
    # a stream for free, so each stream also reads as a grid twice its size (mmslim.codec.ans:
    # grid sizes must come from the model, and the model is what refuses above).
    maps = decompress_maps(model, data, frame_shape=(448, 64))[0]
    assert maps.shape[1:] == (448, 64)


def test_crafted_ans_bomb_is_refused(model):
    """64 bytes claiming one 7936 x 1984 frame: an empty ANS stream decodes to all zeros, so
    only the model's grid sizes can tell (mmslim.codec.ans)."""
    data = ans_bomb(model, frames=1)
    assert len(data) == 64
    refused(model, data, "frame_shape")
    # Without a model, nothing but a cap bounds the indices a header can claim.
    with pytest.raises(BitstreamError, match="exceed") as error:
        decode_file(ans_bomb(model, frames=100), model.prior, None)
    assert error.value.field == "num_frames"


def ans_bomb(model, frames: int) -> bytes:
    """``frames`` all-zero ANS frames of 7936 x 1984 (grids 1984 x 496 and 496 x 124): two empty
    streams, the first announced by its length, 0 words."""
    header = HEADER.pack(b"MMSL", FORMAT_VERSION, 2, 0, 0, 0, bytes(3), model.fingerprint(),
                         frames, 64, 0, 7936, 1984, 1984, 496, 496, 124)  # fmt: skip
    records = [
        SEQUENCE.pack(i) + struct.pack("<2f", 0.0, 1.0) + LENGTH.pack(2) + b"\0\0"
        for i in range(frames)
    ]
    return reseal(header + b"".join(records))


@pytest.mark.parametrize("mode", MODES)
def test_payload_length_must_fit_the_index_count(model, files, mode):
    header, records = split_records(files[mode])
    first = bytearray(records[0])
    extra = 1 << 22  # 4 MB appended to the first frame
    (length,) = LENGTH.unpack_from(first, SEQUENCE.size + 8)
    LENGTH.pack_into(first, SEQUENCE.size + 8, length + extra)
    data = join_records(header, [bytes(first) + bytes(extra), *records[1:]])
    refused(model, data, "frame 0 payload length")


def test_kind_is_checked_against_the_model(model, files):
    data = edit_header(files["fixed"], "<B", 6, 1)  # amplitude -> phase
    refused(model, data, "kind", kind="amplitude")


# ---------------------------------------------------------------- frames and side info


@pytest.mark.parametrize("mode", MODES)
def test_dropped_duplicated_reordered_frames_are_refused(model, files, mode):
    header, records = split_records(files[mode])
    assert len(records) == 4
    for edited in (
        records[:1] + records[2:],  # frame 1 dropped
        records[:2] + records[1:],  # frame 1 duplicated
        [records[0], records[2], records[1], records[3]],  # frames 1 and 2 swapped
        records[1:],  # first frame dropped
    ):
        refused(model, join_records(header, edited), "sequence number")
    maps, _ = decompress_maps(model, join_records(header, records))  # the untouched file
    assert maps.shape == (4, 224, 64)
    maps, _ = decompress_maps(model, join_records(header, records[:3]))  # the last one dropped:
    assert maps.shape == (3, 224, 64)  # a shorter, valid file; only a MAC or N at hand tells


@pytest.mark.parametrize(
    ("pair", "reason"), [((5.0, 1.0), "min > max"), ((np.nan, 1.0), "NaN"), ((0, 1e38), "range")]
)
def test_implausible_side_info_is_refused(model, files, pair, reason):
    header, records = split_records(files["ans"])
    first = bytearray(records[1])
    struct.pack_into("<2f", first, SEQUENCE.size, *pair)
    data = join_records(header, [records[0], bytes(first), *records[2:]])
    refused(model, data, "frame 1 side info")


def test_sequence_numbers_continue_across_files_and_wrap(model, maps):
    data = compress_maps(model, maps, "amplitude", "fixed", first_sequence=2**32 - 2)
    assert read_header(data).first_sequence == 2**32 - 2
    header, records = split_records(data)
    numbers = [SEQUENCE.unpack_from(r)[0] for r in records]
    assert numbers == [65534, 65535, 0, 1]
    assert decompress_maps(model, data)[0].shape == (4, 224, 64)


def test_a_receiver_tracking_the_stream_sees_frames_lost_between_files(model, maps, files):
    """Cutting the last frame off a file (N edited, CRC recomputed) leaves a valid file; the
    next file's first sequence number shows the gap to a receiver that tracks it."""
    header, records = split_records(files["fixed"])
    first = join_records(header, records[:3])  # frame 3 cut off
    second = compress_maps(model, maps, "amplitude", "fixed", first_sequence=4)
    at = 0
    maps_1, decoded = decompress_maps(model, first, first_sequence=at)
    at += decoded.header.num_frames
    assert len(maps_1) == 3
    error = refused(model, second, "first_sequence", first_sequence=at)
    assert "frames were lost" in str(error)
    assert len(decompress_maps(model, second, first_sequence=4)[0]) == 4


def test_format_1_files_are_refused_with_the_way_out(model, files):
    data = edit_header(files["ans"], "<B", 4, 1)
    error = refused(model, data, "version")
    assert "predates format 3" in str(error) and "re-compress" in str(error)


# ---------------------------------------------------------------- the HMAC tag


def test_tagged_file_round_trip_and_refusals(model, maps, files):
    data = compress_maps(model, maps, "amplitude", "ans", key=KEY)
    assert len(data) == len(files["ans"]) + 32 and read_header(data).tagged
    plain, _ = decompress_maps(model, files["ans"])
    tagged, _ = decompress_maps(model, data, key=KEY)
    np.testing.assert_array_equal(tagged, plain)
    refused(model, data, "tag")  # no key
    refused(model, data, "tag", key=b"x" * 32)  # another key
    refused(model, files["ans"], "tag", key=KEY)  # a key, but no tag: it may have been stripped
    with pytest.raises(ValueError, match="too short"):
        decompress_maps(model, data, key=b"short")
    report = rate_report(data, maps.size, model.prior, model.fingerprint(), key=KEY)
    parts = report.header_bytes + report.side_bytes + report.framing_bytes + report.payload_bytes
    assert parts == len(data) and report.file_bits == 8 * len(data)  # the tag is counted
    assert report.header_bytes == rate_report(files["ans"], maps.size).header_bytes + TAG_BYTES


def test_tag_catches_edits_the_crc_cannot(model, maps):
    """A plausible edit with the CRC recomputed decodes silently without a key; with one it is
    refused. That is what the tag is for."""
    data = compress_maps(model, maps, "amplitude", "ans", key=KEY)
    body = bytearray(data[:-4])
    struct.pack_into("<f", body, FIELDS + SEQUENCE.size + 4, 99.0)  # frame 0's max: 99 dB
    edited = reseal(bytes(body))
    refused(model, edited, "tag", key=KEY)
    stripped = bytearray(edited[: -4 - 32])
    stripped[8] = 0  # clear the tag flag
    maps_hat, decoded = decompress_maps(model, reseal(bytes(stripped)))  # no key: accepted
    assert decoded.side[0, 1] == 99.0
    refused(model, reseal(bytes(stripped)), "tag", key=KEY)  # a receiver with the key refuses
