"""The mask explorer (mmslim.viz.explorer): its state, figure and widget, tested directly,
without a browser (tests/viz/test_browser.py drives it in JupyterLab)."""

import asyncio
import io
import re
from dataclasses import replace

import matplotlib
import numpy as np
import pytest
import torch

from mmslim.data.samples import sample_path

matplotlib.use("Agg")

import PIL.Image  # noqa: E402
from skimage.filters import threshold_otsu  # noqa: E402

from mmslim.config import ModelConfig  # noqa: E402
from mmslim.data.dataset import RadarFrames, load_frames  # noqa: E402
from mmslim.metrics.image import psnr, ssim  # noqa: E402
from mmslim.metrics.radar import wrap_phase  # noqa: E402
from mmslim.nn import MMSlim  # noqa: E402
from mmslim.viz.explorer import (  # noqa: E402
    ExplorerConfig,
    ExplorerFigure,
    blended_mask,
    draw_explorer,
    explorer_state,
    forward_with_mask,
    hard_mask,
    mask_explorer,
    subject_frames,
    summary_html,
    symmetric_limits,
)

SAMPLE = sample_path("sample.npz")
TINY = ModelConfig.preset("tiny")
MAPS = ("x", "x_phys", "mask_learned", "mask", "x_hi_in", "x_lo_in", "x_hat_hi", "x_hat_lo")
MAPS += ("x_hat", "x_hat_phys", "error")
SMALL = ExplorerConfig(width_px=500, height_px=410, dpi=50)  # quicker to draw in tests


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


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(PIL.Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


# --------------------------------------------------------------------------- state


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
        assert s["phys_limits"] == pytest.approx((-np.pi, np.pi))
    np.testing.assert_allclose(s["error"], error, atol=1e-6)
    assert s["error_rms"] == pytest.approx(float(np.sqrt(np.mean(error**2))), rel=1e-6)
    np.testing.assert_array_equal(s["x_hi_in"], s["mask"] * s["x"])
    assert s["unit"] == {"amplitude": "dB", "phase": "rad"}[kind]


def test_state_uses_the_frame_asked_for(model, dataset):
    pos = subject_frames(dataset, "subj01")
    s = explorer_state(model, dataset, "subj01", 4, "amplitude")
    assert s["index"] == pos[4]
    np.testing.assert_array_equal(s["x"], dataset[int(pos[4])]["amplitude"][0].numpy())
    lo, hi = dataset[int(pos[4])]["amp_range"].tolist()
    assert s["x_phys"].min() == pytest.approx(lo, abs=1e-3)
    assert s["x_phys"].max() == pytest.approx(hi, abs=1e-3)


def test_amplitude_colour_limits_are_the_walkers_range_over_all_its_frames(model, dataset):
    ranges = np.stack(
        [dataset[int(i)]["amp_range"].numpy() for i in subject_frames(dataset, "subj00")]
    )
    for frame in (0, 5):
        s = explorer_state(model, dataset, "subj00", frame, "amplitude")
        assert s["phys_limits"] == pytest.approx((ranges[:, 0].min(), ranges[:, 1].max()))
        assert s["phys_limits"][0] <= s["x_phys"].min() and s["x_phys"].max() <= s["phys_limits"][1]


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


def test_without_a_threshold_otsus_splits_the_learned_mask(model, dataset):
    s = explorer_state(model, dataset, "subj00", 2, "amplitude", threshold=None, blend=1.0)
    assert s["threshold"] == round(float(threshold_otsu(s["mask_learned"])), 2)
    above = (s["mask_learned"] > s["threshold"]).mean()
    assert 0 < above < 1  # two groups, neither empty
    np.testing.assert_array_equal(
        s["mask"], (s["mask_learned"] > s["threshold"]).astype(np.float32)
    )


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


# --------------------------------------------------------------------------- figure


def test_draw_explorer_draws_every_panel_with_honest_titles(model, dataset):
    s = explorer_state(model, dataset, "subj00", 0, "phase", 0.3, 0.5)
    fig = draw_explorer(None, s)
    titles = {ax.get_title() for ax in fig.axes if ax.get_title()}
    assert len(titles) == 12
    hist = next(t for t in titles if t.startswith("learned M,"))
    assert "0.30" in hist and "used" not in hist  # it plots the learned mask, not the used one
    assert any(t.startswith("mask used") and f"{s['mask_mean']:.2f}" in t for t in titles)
    assert any(f"{s['error_rms']:.2f} rad" in t for t in titles)
    assert "range (m)" in {ax.get_xlabel() for ax in fig.axes}


@pytest.mark.parametrize(
    ("error", "limit"), [(np.full(10, 3.2), 5.0), (np.full(10, -0.7), 1.0), (np.zeros(4), 1.0)]
)
def test_error_colour_limits_are_symmetric_in_1_2_5_steps(error, limit):
    assert symmetric_limits(error) == pytest.approx((-limit, limit))


def test_a_reused_figure_draws_what_a_full_draw_draws(model, dataset):
    """The pasted background plus the changed artists give the picture a full draw gives."""
    first = explorer_state(model, dataset, "subj00", 1, "phase")  # sets the layout
    shown = explorer_state(model, dataset, "subj00", 2, "amplitude")
    # every map flipped, new numbers: other pixels and titles, the same colour limits
    flipped = {k: np.flipud(v).copy() if isinstance(v, np.ndarray) else v for k, v in shown.items()}
    flipped.update(frame=3, ssim=0.5, psnr=12.5, error_rms=1.25, mask_mean=0.4, threshold=0.7)
    fig = ExplorerFigure(size=(8, 6.5))
    fig.update(first).png()
    fig.update(shown).png()
    background = fig.background  # drawn again: the colour maps changed with the kind
    a = _pixels(fig.update(flipped).png())
    assert fig.background is background  # same colour maps and limits: pasted, not drawn
    full = ExplorerFigure(size=(8, 6.5)).update(first)
    b = _pixels(full.update(flipped).png())  # its first png draws everything
    assert a.shape == b.shape == (650, 800, 3)
    differ = np.abs(a - b).max(-1) > 16
    assert differ.mean() < 0.001, f"{differ.sum()} pixels differ"  # antialiased edges at most
    c = _pixels(full.update(shown).png())
    assert (np.abs(c - b).max(-1) > 16).mean() > 0.01  # the comparison does see a change


# --------------------------------------------------------------------------- widget


def test_the_widget_starts_at_the_parameters_given(model, dataset):
    ex = mask_explorer(model, model, dataset, subject="subj01", frame=4, kind="phase",
                       threshold=0.3, blend=0.5, config=SMALL)  # fmt: skip
    c = ex.controls
    assert (c["subject"].value, c["frame"].value, c["kind"].value) == ("subj01", 4, "phase")
    assert (c["threshold"].value, c["blend"].value) == (0.3, 0.5)
    assert (ex.state["subject"], ex.state["frame"], ex.state["kind"]) == ("subj01", 4, "phase")
    assert ex.state["threshold"] == 0.3 and ex.state["blend"] == 0.5
    assert c["frame"].continuous_update is False and c["threshold"].continuous_update is False
    cfg = ex.config
    assert PIL.Image.open(io.BytesIO(ex.image.value)).size == (cfg.width_px, cfg.height_px)


def test_the_widget_starts_at_otsus_threshold_when_none_is_given(model, dataset):
    ex = mask_explorer(model, None, dataset, subject="subj00", frame=2, config=SMALL)
    s = explorer_state(model, dataset, "subj00", 2, "amplitude")
    assert ex.controls["threshold"].value == s["threshold"] == ex.state["threshold"]


def test_the_summary_gives_units(model, dataset):
    amp = summary_html(explorer_state(model, dataset, "subj00", 0, "amplitude"))
    phase = summary_html(explorer_state(model, dataset, "subj00", 0, "phase"))
    assert re.search(r"rms error <b>[\d.]+ dB</b>", amp)
    assert re.search(r"rms error <b>[\d.]+ rad</b>", phase)
    assert "PSNR" in amp and " dB" in amp.split("PSNR")[1]


def test_the_widget_redraws_image_and_summary_on_change_and_caches(model, dataset):
    ex = mask_explorer(model, model, dataset, config=SMALL)
    c = ex.controls
    assert set(c) == {"subject", "kind", "frame", "threshold", "blend"}
    assert list(c["kind"].options) == ["amplitude", "phase"]
    assert c["frame"].max == len(subject_frames(dataset, "subj00")) - 1
    png, summary, first = ex.image.value, ex.summary.value, ex.state
    c["frame"].value = 3
    assert ex.state["frame"] == 3 and ex.image.value != png and ex.summary.value != summary
    c["blend"].value = 1.0
    c["threshold"].value = 0.0
    assert ex.state["mask_mean"] == 1.0
    c["kind"].value = "phase"
    c["subject"].value = "subj01"
    assert ex.refresh()["subject"] == "subj01"
    c["subject"].value, c["kind"].value = "subj00", "amplitude"
    c["threshold"].value, c["blend"].value, c["frame"].value = first["threshold"], 0.0, 0
    assert ex.state is first  # a setting seen before is not computed again
    assert ex.image.value == png  # and draws the same picture


def test_the_forward_runs_on_the_configured_threads_and_restores_them(model, dataset):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    seen = []
    hook = model.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    try:
        mask_explorer(model, None, dataset, config=replace(SMALL, threads=1))
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        hook.remove()
        torch.set_num_threads(before)


def test_a_burst_of_changes_redraws_once_for_the_last(model, dataset):
    ex = mask_explorer(model, model, dataset, config=replace(SMALL, debounce_s=0.05))
    drawn = ex.redraws

    async def burst():
        for frame in (1, 2, 3, 4):  # as queued arrow-key presses arrive
            ex.controls["frame"].value = frame
        ex.controls["kind"].value = "phase"
        assert ex.redraws == drawn  # nothing drawn while changes keep coming
        await asyncio.sleep(0.5)

    asyncio.run(burst())
    assert ex.redraws == drawn + 1
    assert (ex.state["frame"], ex.state["kind"]) == (4, "phase")


def test_the_widget_offers_amplitude_only_without_a_phase_model(model, dataset):
    ex = mask_explorer(model, None, dataset.frames, config=SMALL)
    assert list(ex.controls["kind"].options) == ["amplitude"]
    with pytest.raises(ValueError, match="phase"):
        mask_explorer(model, None, dataset, kind="phase")
    with pytest.raises(ValueError, match="frame"):
        mask_explorer(model, None, dataset, frame=6)


def test_the_widget_displays_as_a_widget_not_as_text(model, dataset):
    bundle = mask_explorer(model, None, dataset, config=SMALL)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
