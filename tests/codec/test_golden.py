"""Golden files (tests/codec/golden, made by tests/codec/golden_files.py) decode to the recorded
values, and encoding the recorded indices writes them again byte for byte: the format and the
entropy coders (our code and the pinned ``constriction``) cannot change unnoticed."""

from __future__ import annotations

import numpy as np
import pytest

from mmslim.codec import BitstreamError, encode_file, read_header
from mmslim.codec.header import FORMAT_VERSION
from mmslim.codec.maps import decompress_maps
from mmslim.training.checkpoint import load_model
from tests.codec.golden_files import CASES, FRAME_SHAPE, GOLDEN, KEY


@pytest.fixture(scope="module")
def golden():
    model, state = load_model(GOLDEN / "model.pt")
    with np.load(GOLDEN / "expected.npz") as z:
        expected = {name: z[name] for name in z.files}
    return model, state, expected


def test_golden_model_is_the_recorded_one(golden):
    model, state, expected = golden
    assert state["stage"] == "amplitude"
    assert model.fingerprint() == expected["fingerprint"].tobytes()


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_file_decodes_to_the_recorded_values(golden, name):
    model, _, expected = golden
    mode, key, first = CASES[name]
    data = (GOLDEN / f"{name}.mmsl").read_bytes()
    header = read_header(data)
    assert (header.version, header.mode, header.kind) == (FORMAT_VERSION, mode, "amplitude")
    assert (header.num_frames, header.first_sequence, header.tagged) == (3, first, key is not None)
    assert header.frame_shape == FRAME_SHAPE and header.file_bytes == len(data)
    maps, decoded = decompress_maps(model, data, kind="amplitude", frame_shape=FRAME_SHAPE, key=key)
    np.testing.assert_array_equal(decoded.indices_hi, expected["indices_hi"])
    np.testing.assert_array_equal(decoded.indices_lo, expected["indices_lo"])
    np.testing.assert_array_equal(decoded.side, expected["side"])
    # The maps go through the model's convolutions, whose float32 results may differ in the
    # last bits between CPUs; the indices and side info above are compared exactly.
    np.testing.assert_allclose(maps, expected["maps"], rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", sorted(CASES))
def test_encoding_the_recorded_indices_writes_the_golden_bytes(golden, name):
    model, _, expected = golden
    mode, key, first = CASES[name]
    data = encode_file(
        expected["indices_hi"],
        expected["indices_lo"],
        expected["side"],
        model.prior_for(mode),
        model.fingerprint(),
        "amplitude",
        mode,
        num_codes=model.config.num_codes,
        frame_shape=FRAME_SHAPE,
        first_sequence=first,
        key=key,
    )
    assert data == (GOLDEN / f"{name}.mmsl").read_bytes()


def test_tagged_golden_file_needs_its_key(golden):
    model = golden[0]
    data = (GOLDEN / "ans-tagged.mmsl").read_bytes()
    for key, message in ((None, "pass the key"), (KEY[::-1], "HMAC tag mismatch")):
        with pytest.raises(BitstreamError, match=message):
            decompress_maps(model, data, frame_shape=FRAME_SHAPE, key=key)


@pytest.mark.parametrize("name, kind", [("detail", "phase"), ("detail_amplitude", "amplitude")])
def test_golden_detail_layers_decode_and_encode_again_byte_for_byte(name, kind):
    from mmslim.codec.detail import VERSION, decode_detail, detail_kind, encode_detail
    from tests.codec.golden_files import DETAIL_BITS, golden_decoded_amplitude, golden_maps

    data = (GOLDEN / f"{name}.mmsd").read_bytes()
    assert data[:5] == b"MMSD" + bytes([VERSION]) and data[5] == DETAIL_BITS
    assert detail_kind(data) == kind
    # the phase layer's cells are chosen on the golden amplitude, the amplitude layer's on a
    # stand-in for its decoded maps
    decoded = golden_maps() if kind == "phase" else golden_decoded_amplitude()
    cells, values = decode_detail(data, decoded)
    with np.load(GOLDEN / f"{name}_expected.npz") as z:
        np.testing.assert_array_equal(cells, z["cells"])
        np.testing.assert_array_equal(values, z["values"])
    assert cells.sum() > 0
    assert encode_detail(golden_maps(kind), decoded, DETAIL_BITS, kind=kind) == data


def test_a_version_1_phase_layer_still_decodes_and_version_1_had_no_amplitude_layers():
    import struct
    import zlib

    from mmslim.codec import BitstreamError
    from mmslim.codec.detail import decode_detail
    from tests.codec.golden_files import golden_maps

    data = (GOLDEN / "detail_v1.mmsd").read_bytes()  # written before amplitude layers existed
    assert data[4] == 1 and data[6] == 0
    cells, values = decode_detail(data, golden_maps())
    with np.load(GOLDEN / "detail_expected.npz") as z:  # the version-2 file's cells and values
        np.testing.assert_array_equal(cells, z["cells"])
        np.testing.assert_array_equal(values, z["values"])
    claims = bytearray(data[:-4])
    claims[6] = 1  # an amplitude layer in version 1, with a valid CRC
    claims += struct.pack("<I", zlib.crc32(claims))
    with pytest.raises(BitstreamError, match="version reads"):
        decode_detail(bytes(claims), golden_maps())


def test_golden_floor_layer_decodes_and_encodes_again_byte_for_byte():
    from mmslim.codec.floor_layer import VERSION, decode_floor, encode_floor
    from tests.codec.golden_files import (
        FLOOR_GRID,
        FLOOR_TEXTURE_STEP,
        golden_decoded_amplitude,
        golden_maps,
    )

    decoded = golden_decoded_amplitude()
    data, cells = _decodes_as_recorded("floor.mmsf", b"MMSF", VERSION, decode_floor, decoded)
    assert 0 < cells.sum() < cells.size
    again = encode_floor(golden_maps(), decoded, FLOOR_TEXTURE_STEP, grid=FLOOR_GRID)
    assert again == data


def test_golden_repair_list_decodes_and_encodes_again_byte_for_byte():
    from mmslim.codec.repairs import VERSION, decode_repairs, encode_repairs
    from tests.codec.golden_files import golden_decoded_amplitude, golden_maps

    decoded = golden_decoded_amplitude()
    data, cells = _decodes_as_recorded("repairs.mmsr", b"MMSR", VERSION, decode_repairs, decoded)
    assert cells.sum() > 0
    assert encode_repairs(golden_maps(), decoded) == data


def _decodes_as_recorded(name: str, magic: bytes, version: int, decode, decoded):
    """A golden layer ``name`` of ``tests/codec/golden``: its magic and version, and that it
    decodes against ``decoded`` to the cells and values recorded beside it
    (``<stem>_expected.npz``) -> (its bytes, the cells it decodes to)."""
    data = (GOLDEN / name).read_bytes()
    assert data[:5] == magic + bytes([version])
    cells, values = decode(data, decoded)
    with np.load(GOLDEN / f"{name.split('.')[0]}_expected.npz") as z:
        np.testing.assert_array_equal(cells, z["cells"])
        np.testing.assert_array_equal(values, z["values"])
    return data, cells
