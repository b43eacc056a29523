"""The mask explorer's callbacks (mmslim.viz.explorer), tested directly, without a browser."""

import matplotlib
import numpy as np
import pytest
import torch

from mmslim.data.samples import sample_path

matplotlib.use("Agg")

from mmslim.config import ModelConfig  # noqa: E402
from mmslim.data.dataset import RadarFrames, load_frames  # noqa: E402
from mmslim.metrics.image import psnr, ssim  # noqa: E402
from mmslim.metrics.radar import wrap_phase  # noqa: E402
from mmslim.nn import MMSlim  # noqa: E402
from mmslim.viz.explorer import (  # noqa: E402
    blended_mask,
    draw_explorer,
    explorer_state,
    forward_with_mask,
    hard_mask,
    mask_explorer,
    subject_frames,
)

SAMPLE = sample_path("sample.npz")
TINY = ModelConfig.preset("tiny")
MAPS = ("x", "x_phys", "mask_learned", "mask", "x_hi_in", "x_lo_in", "x_hat_hi", "x_hat_lo")
MAPS += ("x_hat", "x_hat_phys", "error")


@pytest.fixture(scope="module")
def dataset():
    """Two walkers, three frames of each sequence."""
    fs = load_frames(SAMPLE)
    return RadarFrames(fs.select(np.isin(fs.subject, ["subj00", "subj01"]) & (fs.frame < 3)))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = MMSlim(TINY)
    with torch.no_grad():  # a MaskNet whose mask is far from flat, so the splits differ
        m.mask_net.net[-2].weight.mul_(20)  # the last conv: its logits spread
    return m.eval()


@pytest.mark.parametrize("kind", ["amplitude", "phase"])
def test_state_has_every_map_in_frame_shape(model, dataset, kind):
    s = explorer_state(model, dataset, "subj01", 2, kind, 0.5, 0.3)
    for key in MAPS:
        assert s[key].shape == (224, 64), key
        assert np.isfinite(s[key]).all(), key
    assert s["indices_hi"].shape == (56, 16) and s["indices_lo"].shape == (14, 4)
    assert s["indices_hi"].dtype == np.int64
    assert 0 <= s["indices_hi"].min() and s["indices_hi"].max() < TINY.num_codes
    assert s["subject"] == "subj01" and s["frame"] == 2 and s["kind"] == kind
    # the scalars are those of the maps shown
    x, x_hat = (torch.from_numpy(s[k])[None, None] for k in ("x", "x_hat"))
    assert s["ssim"] == pytest.approx(float(ssim(x, x_hat)), abs=1e-6)
    assert s["psnr"] == pytest.approx(float(psnr(x, x_hat)), abs=1e-4)
    assert s["mask_mean"] == pytest.approx(float(s["mask"].mean()), abs=1e-6)
    error = s["x_hat_phys"] - s["x_phys"]
    if kind == "phase":  # a phase error is an angle: wrapped
        error = wrap_phase(error)
        assert np.abs(s["x_hat_phys"] - s["x_phys"]).max() > np.pi  # the wrap happened here
    np.testing.assert_allclose(s["error"], error, atol=1e-6)
    assert s["error_rms"] == pytest.approx(float(np.sqrt(np.mean(error**2))), rel=1e-6)
    np.testing.assert_array_equal(s["x_hi_in"], s["mask"] * s["x"])


def test_state_uses_the_frame_asked_for(model, dataset):
    pos = subject_frames(dataset, "subj01")
    s = explorer_state(model, dataset, "subj01", 4, "amplitude")
    assert s["index"] == pos[4]
    np.testing.assert_array_equal(s["x"], dataset[int(pos[4])]["amplitude"][0].numpy())
    lo, hi = dataset[int(pos[4])]["amp_range"].tolist()
    assert s["x_phys"].min() == pytest.approx(lo, abs=1e-3)
    assert s["x_phys"].max() == pytest.approx(hi, abs=1e-3)


def test_subject_frames_are_ordered_by_sequence_then_frame(dataset):
    pos = subject_frames(dataset, "subj00")
    fs = dataset.frames
    keys = list(zip(fs.sequence[pos], fs.frame[pos]))
    assert len(pos) == 6 and keys == sorted(keys)
    assert set(fs.subject[pos]) == {"subj00"}
    with pytest.raises(ValueError, match="subj99"):
        subject_frames(dataset, "subj99")


def test_threshold_zero_routes_everything_to_the_fine_branch(model, dataset):
    s = explorer_state(model, dataset, "subj00", 1, "amplitude", threshold=0.0, blend=1.0)
    assert (s["mask"] == 1).all()
    np.testing.assert_array_equal(s["x_hi_in"], s["x"])
    assert (s["x_lo_in"] == 0).all()
    assert s["mask_mean"] == 1.0


def test_threshold_one_routes_everything_to_the_coarse_branch(model, dataset):
    s = explorer_state(model, dataset, "subj00", 1, "phase", threshold=1.0, blend=1.0)
    assert (s["mask"] == 0).all()
    np.testing.assert_array_equal(s["x_lo_in"], s["x"])
    assert (s["x_hi_in"] == 0).all()


def test_hard_mask_extremes_hold_for_saturated_masks():
    m = torch.tensor([0.0, 0.2, 0.5, 0.8, 1.0]).view(1, 1, 1, 5)  # a sigmoid can round to 0, 1
    assert hard_mask(m, 0.0).eq(1).all() and hard_mask(m, 1.0).eq(0).all()
    assert hard_mask(m, 0.5).flatten().tolist() == [0, 0, 0, 1, 1]


def test_blend_zero_is_the_trained_model(model, dataset):
    s = explorer_state(model, dataset, "subj00", 3, "amplitude", threshold=0.5, blend=0.0)
    np.testing.assert_array_equal(s["mask"], s["mask_learned"])
    x = torch.from_numpy(s["x"])[None, None]
    with torch.no_grad():
        out = model(x)
    np.testing.assert_array_equal(s["x_hat"], out["x_hat"].clamp(0, 1)[0, 0].numpy())
    np.testing.assert_array_equal(s["indices_hi"], out["indices_hi"][0].numpy())


def test_blend_interpolates_between_learned_and_hard(model, dataset):
    a = explorer_state(model, dataset, "subj00", 0, "amplitude", 0.5, 0.0)
    b = explorer_state(model, dataset, "subj00", 0, "amplitude", 0.5, 1.0)
    h = explorer_state(model, dataset, "subj00", 0, "amplitude", 0.5, 0.5)
    assert set(np.unique(b["mask"])) <= {0.0, 1.0}
    np.testing.assert_array_equal(b["mask"], (a["mask_learned"] > 0.5).astype(np.float32))
    np.testing.assert_allclose(h["mask"], 0.5 * (a["mask"] + b["mask"]), atol=1e-6)
    assert not np.array_equal(a["x_hi_in"], b["x_hi_in"])  # the split changes what goes where
    with pytest.raises(ValueError, match="blend"):
        blended_mask(torch.zeros(1, 1, 2, 2), 0.5, 1.5)


def test_forward_with_the_learned_mask_equals_forward(model, dataset):
    x = dataset.tensors("phase")[0][:2]  # (2, 1, 224, 64)
    amp = dataset.tensors("amplitude")[0][:2]
    with torch.no_grad():
        ref = model(x, mask_source=amp)
    out = forward_with_mask(model, x, ref["mask"])
    for key in ("x_hat", "x_hat_hi", "x_hat_lo", "indices_hi", "indices_lo"):
        assert torch.equal(out[key], ref[key]), key


def test_phase_mask_comes_from_the_amplitude_map(model, dataset):
    s_amp = explorer_state(model, dataset, "subj01", 0, "amplitude")
    s_phase = explorer_state(model, dataset, "subj01", 0, "phase")
    np.testing.assert_array_equal(s_amp["mask_learned"], s_phase["mask_learned"])
    assert not np.array_equal(s_amp["x"], s_phase["x"])


def test_bad_arguments_are_refused(model, dataset):
    with pytest.raises(ValueError, match="kind"):
        explorer_state(model, dataset, "subj00", 0, "doppler")
    with pytest.raises(ValueError, match="frame"):
        explorer_state(model, dataset, "subj00", 6, "amplitude")


def test_draw_explorer_draws_every_panel(model, dataset):
    s = explorer_state(model, dataset, "subj00", 0, "phase", 0.3, 0.5)
    fig = draw_explorer(None, s)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titled) == 12
    assert any("mask used" in t for t in titled)
    assert all(ax.get_xlabel() for ax in fig.axes[:12])


def test_the_widget_builds_and_redraws(model, dataset):
    import ipywidgets

    box = mask_explorer(model, model, dataset)
    assert isinstance(box, ipywidgets.VBox)
    c = box.controls
    assert set(c) == {"subject", "kind", "frame", "threshold", "blend"}
    assert list(c["kind"].options) == ["amplitude", "phase"]
    assert c["frame"].max == len(subject_frames(dataset, "subj00")) - 1
    c["blend"].value = 1.0
    c["threshold"].value = 0.0
    state = box.refresh()
    assert state["mask_mean"] == 1.0
    c["kind"].value = "phase"
    c["subject"].value = "subj01"
    assert box.refresh()["subject"] == "subj01"


def test_the_widget_offers_amplitude_only_without_a_phase_model(model, dataset):
    box = mask_explorer(model, None, dataset.frames)
    assert list(box.controls["kind"].options) == ["amplitude"]
