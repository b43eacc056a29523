"""``mmslim bench rate``: the training loss's rate estimate against the file it stands for."""

import pytest
import torch

from mmslim.bench.rate import rate_check
from mmslim.codec import fit_prior
from mmslim.codec.container import file_bytes
from mmslim.data.dataset import RadarFrames
from mmslim.nn import MMSlim


@pytest.mark.parametrize("kind", ["amplitude", "phase"])
def test_rate_check_accounts_for_every_byte(few_frames, tiny_config, kind):
    frames = few_frames(2, 3)  # 12 frames
    torch.manual_seed(0)
    model = MMSlim(tiny_config).eval()
    fit_prior(model, RadarFrames(frames), kind)
    row = rate_check(model, frames, kind)
    elements = getattr(frames, kind).size
    assert row["kind"] == kind and row["frames"] == len(frames.amplitude)
    # the file is its frames' strings plus the container, to the byte
    overhead = 8 * file_bytes(0, row["frames"]) / elements
    assert row["file"] - row["indices"] == pytest.approx(overhead)
    # ANS spends within its termination words of the ideal code length under the prior
    assert row["ideal"] <= row["indices"] <= row["ideal"] + 2 * 64 * row["frames"] / elements
    # the estimate scores the same indices against the batch's own frequencies, which the
    # training split's prior cannot beat
    assert 0 < row["estimate"] <= row["ideal"] * 1.02
    assert row["estimate_error"] == pytest.approx(row["estimate"] / row["file"] - 1)
    assert row["framed"] == pytest.approx(row["estimate"] + overhead)
    assert row["framed_error"] == pytest.approx(row["framed"] / row["file"] - 1)
    assert abs(row["framed_error"]) < abs(row["estimate_error"])  # the fixed bytes are counted


def test_the_estimate_counts_what_a_detection_sender_adds(sample_frames):
    from mmslim.data.samples import sample_path
    from mmslim.training.checkpoint import load_model

    model, state = load_model(sample_path("pretrained", "amplitude.pt"), "amplitude")
    assert model.config.gate_detections
    frames = sample_frames.of_subjects(state["split"]["val"]).select(slice(0, 160, 8))
    mask_only = model.with_fine_gate(model.config.fine_gate, detections=False)
    with_det, without = rate_check(model, frames), rate_check(mask_only, frames)
    assert with_det["file"] > without["file"]  # the detections' latents cost bytes
    assert with_det["estimate"] > without["estimate"]  # and the estimate sees them
    # the ideal code length of the sent indices stays within 5 % of the ANS payload
    assert abs(with_det["ideal"] / with_det["indices"] - 1) < 0.05
