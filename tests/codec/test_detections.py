"""The sender's CA-CFAR rule (``ModelConfig.gate_detections``): which fine latents it adds to
the gate's, that every backend and the exported codec send them alike, and that the prior is
fitted with them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmslim.cli import main
from mmslim.codec.detections import detected_latents
from mmslim.codec.maps import compress_maps, decompress_maps
from mmslim.config import ModelConfig
from mmslim.data.samples import sample_path
from mmslim.export import ExportedCodec, export_onnx
from mmslim.metrics.radar import ca_cfar
from mmslim.nn.sending import GATE_CODE
from mmslim.training.checkpoint import load_model


@pytest.fixture(scope="module")
def model():
    return load_model(sample_path("pretrained", "amplitude.pt"), stage="amplitude")[0]


def _noise(n=3, seed=0):
    rng = np.random.default_rng(seed)
    power = rng.exponential(1.0, size=(n, 224, 64))  # Rayleigh amplitude: exponential power
    return (10 * np.log10(power) - 80).astype(np.float32)  # (n, 224, 64) dB


def test_a_detection_keeps_its_latent_and_the_eight_around_it():
    amp = _noise()
    amp[1, 101, 30] += 40  # one strong point target in frame 1, latent (25, 7)
    found = detected_latents(amp, (56, 16))
    assert found.shape == (3, 56, 16)
    assert ca_cfar(amp)[1, 101, 30]
    assert found[1, 24:27, 6:9].all()  # its latent and the 8 around it
    assert found[1].sum() <= 9 + 9 * ca_cfar(amp)[1].sum()  # nothing beyond detections' blocks
    assert found[[0, 2]].sum() <= 9 * ca_cfar(amp)[[0, 2]].sum()  # noise: at most its false alarms
    with pytest.raises(ValueError, match="does not tile"):
        detected_latents(amp, (50, 16))


def test_the_sender_sends_the_detected_latents_as_the_ungated_encoder_codes_them(
    model, sample_frames
):
    assert model.config.gate_detections and model.config.fine_gate > 0  # the shipped sender
    amp = sample_frames.amplitude[::40]  # (12, 224, 64)
    found = detected_latents(amp, (56, 16))
    assert found.any()
    hi = {}
    for name, m in (
        ("detections", model),
        ("mask only", model.with_fine_gate(model.config.fine_gate, detections=False)),
        ("ungated", model.with_fine_gate(0)),
    ):
        _, decoded = decompress_maps(m, compress_maps(m, amp, "amplitude", "fixed"))
        hi[name] = decoded.indices_hi
    mask_only, ungated, both = hi["mask only"], hi["ungated"], hi["detections"]
    sent = (mask_only != GATE_CODE) | found
    np.testing.assert_array_equal(both[sent], ungated[sent])
    assert (both[~sent] == GATE_CODE).all()
    assert (both != GATE_CODE).sum() > (mask_only != GATE_CODE).sum()  # detections added some


def test_every_backend_and_the_exported_codec_send_the_same(model, sample_frames, tmp_path):
    amp = sample_frames.amplitude[::40]
    by_torch = compress_maps(model, amp, "amplitude")
    by_onnx = compress_maps(model, amp, "amplitude", backend="onnx")
    export_onnx(model, tmp_path, kind="amplitude")
    assert json.loads((tmp_path / "codec.json").read_text())["gate_detections"] is True
    exported = ExportedCodec(tmp_path)
    assert exported.compress(amp) == by_onnx
    hi = [decompress_maps(model, d)[1].indices_hi for d in (by_torch, by_onnx)]
    assert (hi[0] == hi[1]).mean() > 0.999  # ONNX rounding: near-ties only


def test_the_prior_is_fitted_with_the_detections(tmp_path):
    data = sample_path("sample.npz")  # its own split's training walkers: fast, not the recipe's
    out = {}
    for flag in ("--gate-detections", "--no-gate-detections"):
        path = tmp_path / f"{flag}.pt"
        args = ["prior", "--checkpoint", str(sample_path("pretrained", "amplitude.pt")),
                "--data", str(data), "--out", str(path), flag]  # fmt: skip
        assert main(args) == 0
        out[flag] = load_model(path)[0]
    with_det, without = out["--gate-detections"], out["--no-gate-detections"]
    assert with_det.config.gate_detections and not without.config.gate_detections
    share = [float(m.prior.probs("hi")[GATE_CODE]) for m in (with_det, without)]
    assert share[0] < share[1]  # more latents sent: the gate code is less frequent


def test_detections_need_a_gate():
    with pytest.raises(ValueError, match="set fine_gate too"):
        ModelConfig(gate_detections=True)
    assert ModelConfig(fine_gate=0.5, gate_detections=True).gate_detections
    assert not ModelConfig.from_dict({"fine_gate": 0.5}).gate_detections  # older checkpoints
