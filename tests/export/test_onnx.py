"""ONNX files of the sender and receiver: valid graphs that ONNX Runtime runs on its own, the
int8 sender, and the ``--backend`` option of ``mmslim compress`` / ``decompress``."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from mmslim.cli import main
from mmslim.cli.errors import EXIT_USAGE
from mmslim.data.dataset import normalize
from mmslim.data.samples import sample_path
from mmslim.export import export_onnx, export_sender, quantize_int8
from mmslim.export.backends import TorchBackend
from mmslim.training.checkpoint import load_model

CHECKPOINT = sample_path("pretrained", "amplitude.pt")


@pytest.fixture(scope="module")
def model():
    return load_model(CHECKPOINT, stage="amplitude")[0]


@pytest.fixture(scope="module")
def x01(sample_frames):
    return normalize(torch.from_numpy(sample_frames.amplitude[:8]))[0][:, None].numpy()


def test_exported_files_are_valid_and_run_without_mmslim(model, x01, tmp_path):
    sender_path, receiver_path, _ = export_onnx(model, tmp_path)
    for path in (sender_path, receiver_path):
        onnx.checker.check_model(onnx.load(path), full_check=True)
    sender = ort.InferenceSession(str(sender_path), providers=["CPUExecutionProvider"])
    receiver = ort.InferenceSession(str(receiver_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sender.get_inputs()] == ["x", "mask_source", "also_sent"]  # gated
    assert [o.name for o in receiver.get_outputs()] == ["x_hat_hi", "x_hat_lo"]
    none = np.zeros((len(x01), 56, 16), bool)
    hi, lo = sender.run(None, {"x": x01, "mask_source": x01, "also_sent": none})
    assert hi.shape == (8, 56, 16) and lo.shape == (8, 14, 4) and hi.dtype == np.int64
    assert 0 <= hi.min() and hi.max() < model.config.num_codes
    x_hi, x_lo = receiver.run(None, {"indices_hi": hi, "indices_lo": lo})
    expected = TorchBackend(model).decode(hi, lo)
    np.testing.assert_allclose(x_hi + x_lo, expected, rtol=0, atol=1e-5)
    # The fine grid's height is free: a band of 10 rows decodes to 40 map rows.
    (band,) = receiver.run(["x_hat_hi"], {"indices_hi": hi[:, 20:30], "indices_lo": lo})
    assert band.shape == (8, 1, 40, 64)


def test_int8_sender_runs_and_mostly_agrees(model, x01):
    float_graph = export_sender(model)
    int8_graph = quantize_int8(float_graph)
    assert len(int8_graph) < len(float_graph)  # int8 weights are smaller
    runs = []
    for graph in (float_graph, int8_graph):
        session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
        none = np.zeros((len(x01), 56, 16), bool)
        runs.append(session.run(None, {"x": x01, "mask_source": x01, "also_sent": none}))
    (hi32, lo32), (hi8, lo8) = runs
    assert hi8.shape == hi32.shape and hi8.dtype == np.int64
    assert 0 <= hi8.min() and hi8.max() < model.config.num_codes
    assert (hi8 == hi32).mean() > 0.5 and (lo8 == lo32).mean() > 0.5  # rounding, not noise


def test_cli_backends_write_and_read_each_others_files(sample_frames, tmp_path, capsys):
    maps = tmp_path / "maps.npy"
    np.save(maps, sample_frames.amplitude[:3])
    ckpt = ["--checkpoint", str(CHECKPOINT)]
    out = {}
    for writer in ("torch", "onnx"):
        coded = tmp_path / f"{writer}.mmsl"
        assert main(["compress", str(maps), str(coded), *ckpt, "--backend", writer]) == 0
        for reader in ("torch", "onnx"):
            decoded = tmp_path / f"{writer}-{reader}.npy"
            assert main(["decompress", str(coded), str(decoded), *ckpt, "--backend", reader]) == 0
            out[writer, reader] = np.load(decoded)
    span = np.ptp(sample_frames.amplitude[:3], axis=(1, 2))[:, None, None]  # (3, 1, 1) dB
    for (_, _), m in out.items():
        assert m.shape == (3, 224, 64)
        assert (np.abs(m - out["torch", "torch"]) <= 1e-5 * span + 1e-5).all()
    bad = ["compress", str(maps), str(tmp_path / "x.mmsl"), *ckpt, "--backend", "x"]
    assert main(bad) == EXIT_USAGE
    assert "invalid choice: 'x'" in capsys.readouterr().err


def test_cli_export_writes_both_graphs_and_the_codec_description(model, tmp_path):
    assert main(["export", "--checkpoint", str(CHECKPOINT), "--out", str(tmp_path)]) == 0
    for name in ("sender", "receiver"):
        onnx.checker.check_model(onnx.load(tmp_path / f"{name}.onnx"))
    spec = json.loads((tmp_path / "codec.json").read_text())
    assert spec["kind"] == "amplitude" and spec["frame_shape"] == [224, 64]
    assert spec["grids"] == {"hi": [56, 16], "lo": [14, 4]}
    assert bytes.fromhex(spec["fingerprint"]) == model.fingerprint()
    assert spec["prior"]["counts_hi"] == model.prior.counts_hi.tolist()
    assert spec["prior"]["counts_lo"] == model.prior.counts_lo.tolist()
    assert spec["prior"]["fitted"] is True
