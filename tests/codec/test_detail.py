"""The detail layers (phase, and amplitude error): the cells they send, what they cost, what they
gain on the shipped models, and that a receiver with another amplitude refuses them rather than
misplacing values."""

from __future__ import annotations

import numpy as np
import pytest

from mmslim.codec import BitstreamError
from mmslim.codec.detail import (
    choose_thresholds,
    decode_detail,
    detail_cells,
    detail_kind,
    encode_detail,
    error_levels,
    refine_amplitude,
    refine_phase,
)
from mmslim.codec.maps import compress_maps, decompress_maps
from mmslim.data.samples import sample_path
from mmslim.metrics.radar import amplitude_error_db, phase_error, target_region, wrap_phase
from mmslim.training.checkpoint import load_model


@pytest.fixture(scope="module")
def frames():
    """Synthetic decoded amplitude (dB) with a few strong cells, and random phase."""
    rng = np.random.default_rng(0)
    amp = rng.normal(-80, 3, size=(6, 32, 16)).astype(np.float32)
    amp[:, 10:13, 4:9] += rng.uniform(20, 60, size=(6, 3, 5)).astype(np.float32)
    phase = rng.uniform(-np.pi, np.pi, size=amp.shape).astype(np.float32)
    return amp, phase


@pytest.mark.parametrize("bits", [1, 3, 4, 8])
def test_cells_near_the_peak_carry_their_phase_within_half_a_step(frames, bits):
    amp, phase = frames
    data = encode_detail(phase, amp, bits, within_db=30)
    cells, values = decode_detail(data, amp)
    expected = amp >= amp.max(axis=(1, 2), keepdims=True) - 30
    # the threshold sits in a gap near the level: the same cells up to a few at the border
    assert abs(int(cells.sum()) - int(expected.sum())) <= 3 * len(amp)
    assert cells[expected].mean() > 0.9
    assert np.abs(wrap_phase(values - phase[cells])).max() <= np.pi / 2**bits + 1e-5
    refined = refine_phase(np.zeros_like(phase), data, amp)
    np.testing.assert_array_equal(refined[~cells], 0)
    np.testing.assert_array_equal(refined[cells], values)
    # its size: header, 6 bytes per frame, the packed codes, the CRC
    assert len(data) == 16 + 6 * len(amp) + -(-int(cells.sum()) * bits // 8) + 4


def test_float_rounding_of_the_amplitude_selects_the_same_cells(frames):
    amp, phase = frames
    data = encode_detail(phase, amp, 4, within_db=30)
    rng = np.random.default_rng(1)
    wobbled = amp + rng.uniform(-1e-3, 1e-3, size=amp.shape).astype(np.float32)  # > backends'
    a, b = decode_detail(data, amp), decode_detail(data, wobbled)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    thresholds = choose_thresholds(amp, 30)
    gaps = [np.abs(f - t).min() for f, t in zip(amp, thresholds)]
    assert min(gaps) > 1e-3  # every threshold clear of every value


def test_the_share_of_cells_is_capped(frames):
    amp, phase = frames
    thresholds = choose_thresholds(amp, within_db=200, max_share=0.05)  # would take every cell
    counts = detail_cells(amp, thresholds).sum(axis=(1, 2))
    assert (counts <= 0.05 * 32 * 16 + 3).all() and (counts >= 0.05 * 32 * 16 - 3).all()


def test_a_receiver_with_another_amplitude_or_a_damaged_layer_refuses_it(frames):
    amp, phase = frames
    data = encode_detail(phase, amp, 4, within_db=30)
    cells, _ = decode_detail(data, amp)
    other = amp.copy()
    r, c = np.argwhere(cells[2])[-1]
    other[2, r, c] = amp[2].min()  # one selected cell of frame 2 falls below the threshold
    with pytest.raises(BitstreamError, match="frame 2.*floor='none'") as err:
        decode_detail(data, other)
    assert err.value.field == "cells"
    with pytest.raises(BitstreamError) as err:
        decode_detail(data, amp[:5])
    assert err.value.field == "frames"
    damaged = bytearray(data)
    damaged[20] ^= 1
    with pytest.raises(BitstreamError) as err:
        decode_detail(bytes(damaged), amp)
    assert err.value.field == "checksum"
    for cut in (0, 10, 19, len(data) - 1):
        with pytest.raises(BitstreamError):
            decode_detail(data[:cut], amp)
    rng = np.random.default_rng(2)
    for _ in range(50):  # random bytes never decode, nor fail with anything else
        with pytest.raises(BitstreamError):
            decode_detail(rng.bytes(int(rng.integers(0, 200))), amp)


def test_bad_arguments_name_the_problem(frames):
    amp, phase = frames
    with pytest.raises(ValueError, match="bits must be 1..8"):
        encode_detail(phase, amp, 9)
    with pytest.raises(ValueError, match="same"):
        encode_detail(phase[:2], amp)
    nan = phase.copy()
    nan[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        encode_detail(nan, amp)


def test_on_the_shipped_models_it_cuts_the_target_phase_error_for_a_few_bits(sample_frames):
    amp_model, state = load_model(sample_path("pretrained", "amplitude.pt"), "amplitude")
    phase_model, _ = load_model(sample_path("pretrained", "phase.pt"), "phase")
    val = sample_frames.of_subjects(state["split"]["val"])
    amp, phase = val.amplitude[::4], val.phase[::4]  # held-out walkers
    amp_hat, _ = decompress_maps(amp_model, compress_maps(amp_model, amp, "amplitude"))
    phase_file = compress_maps(phase_model, phase, "phase", mask_source=amp)
    phase_hat, _ = decompress_maps(phase_model, phase_file)
    data = encode_detail(phase, amp_hat, bits=4)
    refined = refine_phase(phase_hat, data, amp_hat)
    before = phase_error(phase, phase_hat, amp)["phase_err_target"]
    after = phase_error(phase, refined, amp)["phase_err_target"]
    assert before > 0.8 and after < 0.2  # a quarter step (0.1 rad) where the cells cover it
    assert 8 * len(data) / phase.size < 0.05  # bits per element the layer adds
    # it covers the targets: the cells of the original within 40 dB of its peak
    cells, _ = decode_detail(data, amp_hat)
    assert cells[target_region(amp)].mean() > 0.95


def test_error_levels_minimise_the_mean_absolute_error():
    rng = np.random.default_rng(3)
    errors = np.concatenate([rng.normal(-20, 1, 300), rng.normal(0, 1, 700)])  # two clusters
    levels = error_levels(errors, 2)
    np.testing.assert_allclose(levels, [np.median(errors[:300]), np.median(errors[300:])],
                               atol=0.05)  # fmt: skip

    # more levels never do worse, and no small move of a level does better
    def mae(lv):
        return np.abs(errors[:, None] - lv[None]).min(axis=1).mean()

    maes = [mae(error_levels(errors, 2**b)) for b in range(1, 6)]
    assert all(a >= b for a, b in zip(maes, maes[1:]))
    best = error_levels(errors, 8)
    for i in range(8):
        for d in (-0.05, 0.05):
            moved = best.copy()
            moved[i] += d
            assert mae(moved) >= mae(best) - 1e-9
    assert (error_levels(np.zeros(0), 4) == 0).all()


@pytest.mark.parametrize("bits", [1, 3, 6])
def test_an_amplitude_layer_corrects_the_cells_near_the_peak(frames, bits):
    amp_hat, _ = frames
    rng = np.random.default_rng(4)
    orig = amp_hat - rng.exponential(6, size=amp_hat.shape).astype(np.float32)  # drawn too bright
    data = encode_detail(orig, amp_hat, bits, within_db=30, kind="amplitude")
    assert detail_kind(data) == "amplitude"
    cells, values = decode_detail(data, amp_hat)
    refined = refine_amplitude(amp_hat, data)
    np.testing.assert_array_equal(refined[~cells], amp_hat[~cells])
    np.testing.assert_array_equal(refined[cells], values)
    errors = orig[cells] - amp_hat[cells]
    levels = error_levels(errors, 2**bits)
    # every cell gets its nearest level: the error left is the distance to it
    left = np.abs(errors[:, None] - levels[None]).min(axis=1)
    np.testing.assert_allclose(np.abs(orig[cells] - values), left, atol=1e-4)
    assert np.abs(orig[cells] - values).mean() < np.abs(errors).mean() / 2 ** (bits - 1) + 0.5
    # its size: header, 6 bytes per frame, the levels, the packed codes, the CRC
    assert len(data) == 16 + 6 * len(orig) + 4 * 2**bits + -(-int(cells.sum()) * bits // 8) + 4


def test_a_layer_of_one_kind_does_not_refine_the_other(frames):
    amp, phase = frames
    phase_layer = encode_detail(phase, amp, 4, within_db=30)
    amp_layer = encode_detail(amp - 1, amp, 4, within_db=30, kind="amplitude")
    assert detail_kind(phase_layer) == "phase"
    with pytest.raises(ValueError, match="phase detail layer"):
        refine_amplitude(amp, phase_layer)
    with pytest.raises(ValueError, match="amplitude detail layer"):
        refine_phase(phase, amp_layer, amp)
    with pytest.raises(ValueError, match="kind"):
        encode_detail(phase, amp, 4, kind="range")
    damaged = bytearray(amp_layer)
    damaged[6] = 7  # an unknown kind
    with pytest.raises(BitstreamError):
        decode_detail(bytes(damaged), amp)


def test_on_the_shipped_model_it_cuts_the_target_amplitude_error_for_a_few_bits(sample_frames):
    model, state = load_model(sample_path("pretrained", "amplitude.pt"), "amplitude")
    amp = sample_frames.of_subjects(state["split"]["val"]).amplitude[::4]  # held-out walkers
    amp_hat, _ = decompress_maps(model, compress_maps(model, amp, "amplitude"))
    data = encode_detail(amp, amp_hat, bits=3, kind="amplitude")
    before = amplitude_error_db(amp, amp_hat)["amp_mae_db_target"]
    after = amplitude_error_db(amp, refine_amplitude(amp_hat, data))["amp_mae_db_target"]
    assert before > 1.5 and after < 0.75 * before
    assert 8 * len(data) / amp.size < 0.03  # bits per element the layer adds
