"""The exported folder as a codec without PyTorch: the same bytes as the ONNX backend, files
that the model decodes and the other way round, clear refusals, and no PyTorch imported."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mmslim.codec.maps import compress_maps, decompress_maps
from mmslim.codec.tables import PriorTables
from mmslim.data.samples import sample_path
from mmslim.export import ExportedCodec, export_onnx
from mmslim.export.runtime import CODEC_FORMAT
from mmslim.training.checkpoint import load_model


@pytest.fixture(scope="module")
def model():
    return load_model(sample_path("pretrained", "amplitude.pt"), stage="amplitude")[0]


@pytest.fixture(scope="module")
def folder(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("exported")
    export_onnx(model, out, kind="amplitude")
    return out


@pytest.fixture(scope="module")
def maps(sample_frames):
    return sample_frames.amplitude[:12]


def test_files_equal_the_onnx_backend_and_decode_with_the_model(model, folder, maps):
    codec = ExportedCodec(folder, threads=2)
    data = codec.compress(maps)
    assert data == compress_maps(model, maps, "amplitude", backend="onnx")
    by_model, decoded = decompress_maps(model, data)
    assert decoded.header.fingerprint == model.fingerprint()
    np.testing.assert_allclose(codec.decompress(data), by_model, rtol=0, atol=1e-3)  # dB


def test_decodes_a_file_of_the_torch_backend(model, folder, maps):
    data = compress_maps(model, maps, "amplitude", mode="huffman")
    expected, _ = decompress_maps(model, data, backend="onnx")
    np.testing.assert_array_equal(ExportedCodec(folder).decompress(data), expected)


def test_prior_tables_code_as_the_model_prior(model):
    tables = model.prior.tables()
    for branch in ("hi", "lo"):
        np.testing.assert_array_equal(tables.probs(branch), model.prior.probs(branch))
    with pytest.raises(ValueError, match="positive integers"):
        PriorTables(np.array([1, 0, 2]), np.array([1, 1, 1]))
    with pytest.raises(ValueError, match="positive integers"):
        PriorTables(np.array([1, 2, 2]), np.array([1.0, 1.0, 1.0]))


def test_refusals_name_the_fix(folder, maps, tmp_path):
    with pytest.raises(FileNotFoundError, match="mmslim export"):
        ExportedCodec(tmp_path)
    codec = ExportedCodec(folder)
    with pytest.raises(ValueError, match="exported for 224 x 64"):
        codec.compress(maps[:, :112])
    with pytest.raises(ValueError, match="codes amplitude maps, not phase"):
        codec.compress(maps, kind="phase")
    spec = json.loads((folder / "codec.json").read_text())
    unfitted = tmp_path / "unfitted"
    unfitted.mkdir()
    for name in ("sender.onnx", "receiver.onnx"):
        (unfitted / name).write_bytes((folder / name).read_bytes())
    (unfitted / "codec.json").write_text(
        json.dumps({**spec, "prior": {**spec["prior"], "fitted": False}})
    )
    with pytest.raises(ValueError, match="prior was not fitted"):
        ExportedCodec(unfitted).compress(maps)
    assert ExportedCodec(unfitted).compress(maps[:2], mode="huffman")  # other modes still code
    # a folder of a newer format is refused; one written before the format field still reads
    assert spec["format"] == CODEC_FORMAT
    (unfitted / "codec.json").write_text(json.dumps({**spec, "format": CODEC_FORMAT + 1}))
    with pytest.raises(ValueError, match="update mmslim, or export the folder again"):
        ExportedCodec(unfitted)
    old = {k: v for k, v in spec.items() if k not in ("format", "fine_reach", "gate_detections")}
    (unfitted / "codec.json").write_text(json.dumps(old))
    decoded = ExportedCodec(unfitted).decompress(ExportedCodec(folder).compress(maps[:2]))
    assert decoded.shape == (2, 224, 64)  # (and decoded whole, without the reach)


def test_runs_without_importing_pytorch(folder, maps, tmp_path):
    np.save(tmp_path / "maps.npy", maps)
    code = (
        "import sys, numpy as np\n"
        "from mmslim.export.sensor import ExportedCodec\n"
        f"codec = ExportedCodec({str(folder)!r})\n"
        f"maps = np.load({str(tmp_path / 'maps.npy')!r})\n"
        "back = codec.decompress(codec.compress(maps))\n"
        "assert back.shape == maps.shape\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
