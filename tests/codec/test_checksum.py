"""The file's CRC32 (``mmslim.codec.header``) refuses accidental damage, naming the field
``"checksum"``: fixed edits at known offsets of the golden files, so that a decoder that skips
the check fails here every time, not only when a random fuzzer happens to hit it.

Every edit below leaves a file that the later checks alone would either accept (a side-info bit:
the maps would come out silently wrong) or refuse under another field's name; only the CRC names
``"checksum"``.
"""

from __future__ import annotations

import re
import struct
import zlib

import numpy as np
import pytest

from mmslim.codec import BitstreamError, decode_file, read_header
from mmslim.codec.auth import MIN_KEY_BYTES, TAG_BYTES, check_key, read_key_file, tag, verify
from mmslim.codec.header import CRC_BYTES, HEADER, SEQUENCE
from mmslim.codec.maps import decompress_maps
from mmslim.training.checkpoint import load_model
from tests.codec.golden_files import CASES, FRAME_SHAPE, GOLDEN


@pytest.fixture(scope="module")
def model():
    return load_model(GOLDEN / "model.pt")[0]


def golden(name: str) -> bytes:
    return (GOLDEN / f"{name}.mmsl").read_bytes()


def flipped(data: bytes, offset: int, bit: int = 0) -> bytes:
    """``data`` with one bit flipped at byte ``offset`` and the CRC left as it was."""
    edited = bytearray(data)
    edited[offset] ^= 1 << bit
    return bytes(edited)


def offsets(name: str, data: bytes) -> dict[str, int]:
    """Byte offsets, in ``data``, of one byte of each part of a golden file."""
    tag = TAG_BYTES if CASES[name][1] is not None else 0
    return {
        "header": 28,  # first sequence number, low byte
        "side info": HEADER.size + SEQUENCE.size + 4,  # frame 0's max, lowest mantissa byte
        "payload": len(data) - CRC_BYTES - tag - 1,  # last byte of the last frame string
        "crc": len(data) - 1,
    }


def decode(model, name: str, data: bytes):
    key = CASES[name][1]
    return decompress_maps(model, data, kind="amplitude", frame_shape=FRAME_SHAPE, key=key)


@pytest.mark.parametrize("part", ["header", "side info", "payload", "crc"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_a_flipped_bit_is_refused_with_the_checksum_named(model, name, part):
    data = golden(name)
    bad = flipped(data, offsets(name, data)[part])
    with pytest.raises(BitstreamError, match="checksum mismatch") as error:
        decode(model, name, bad)
    assert error.value.field == "checksum"
    with pytest.raises(BitstreamError) as error:  # the header alone is checked as well
        read_header(bad)
    assert error.value.field == "checksum"


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_file_cut_or_grown_by_one_byte_is_refused_with_the_checksum_named(model, name):
    data = golden(name)
    for bad in (data[:-1], data + b"\0", data[:-5] + data[-4:]):
        with pytest.raises(BitstreamError) as error:
            decode(model, name, bad)
        assert error.value.field == "checksum", error.value


def test_side_info_damage_would_otherwise_pass_unseen(model):
    """What the CRC is for: the same one-bit edit with the CRC recomputed decodes without an
    error, and frame 0 comes out scaled to the damaged max."""
    data = golden("fixed")
    bad = flipped(data, offsets("fixed", data)["side info"])
    with pytest.raises(BitstreamError) as error:
        decode(model, "fixed", bad)
    assert error.value.field == "checksum"
    resealed = bad[:-CRC_BYTES] + struct.pack("<I", zlib.crc32(bad[:-CRC_BYTES]))
    maps, decoded = decode(model, "fixed", resealed)
    original = decode_file(data, model.prior, model.fingerprint()).side
    assert decoded.side[0, 1] != original[0, 1] and decoded.side[0, 0] == original[0, 0]
    np.testing.assert_array_equal(decoded.side[1:], original[1:])
    assert maps.shape == (3, *FRAME_SHAPE)


# ---------------------------------------------------------------- the HMAC key and tag


RFC4231_KEY = b"\x0b" * 20  # RFC 4231, test case 1
RFC4231_TAG = bytes.fromhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")


def test_tag_is_rfc_4231_hmac_sha256_and_verify_compares_it():
    assert (TAG_BYTES, MIN_KEY_BYTES) == (32, 16)
    assert tag(RFC4231_KEY, b"Hi There") == RFC4231_TAG
    assert tag(bytearray(RFC4231_KEY), b"Hi There") == RFC4231_TAG
    assert verify(RFC4231_KEY, b"Hi There", bytearray(RFC4231_TAG)) is True
    assert verify(RFC4231_KEY, b"Hi There", RFC4231_TAG[:-1] + b"\0") is False
    assert verify(RFC4231_KEY, b"Hi there", RFC4231_TAG) is False
    with pytest.raises(ValueError, match="too short"):
        verify(b"short", b"Hi There", RFC4231_TAG)


def test_check_key_takes_16_bytes_or_more():
    assert check_key(bytearray(b"k" * 16)) == b"k" * 16
    assert type(check_key(bytearray(b"k" * 16))) is bytes
    message = (
        r"^an HMAC key of 15 bytes is too short \(at least 16\); make one "
        r"with `head -c 32 /dev/urandom > link.key`$"
    )
    with pytest.raises(ValueError, match=message):
        check_key(b"k" * 15)
    with pytest.raises(ValueError, match="^an HMAC key must be bytes, got str$"):
        check_key("k" * 32)


def test_read_key_file(tmp_path):
    path = tmp_path / "link.key"
    path.write_bytes(bytes(range(32)))
    assert read_key_file(str(path)) == bytes(range(32))
    path.write_bytes(b"k" * 15)
    with pytest.raises(ValueError, match="15 bytes is too short"):
        read_key_file(path)
    missing = tmp_path / "none.key"
    message = (
        f"no key file at {missing}; make one with `head -c 32 /dev/urandom > {missing}` and "
        "give the same file to the sender and the receiver"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        read_key_file(missing)
    with pytest.raises(ValueError, match="^no key file at"):
        read_key_file(tmp_path)  # a folder is no key file
