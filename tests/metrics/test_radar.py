"""Radar metrics in physical units, against plain loops and hand-made cases with known answers.

These metrics are what the project is judged by, so each is checked two ways: CA-CFAR against a
cell-by-cell loop written from its definition (on extended targets spread over Doppler rows
beside weak ones, edges included) and by its design false-alarm rate; detection scores, peak and
phase errors on cases whose precision, recall and errors are counted by hand.
"""

import numpy as np
import pytest

from mmslim.metrics import radar as rm

GUARD, TRAIN = (4, 2), (8, 4)  # the documented defaults, (Doppler, range) cells per side


def noise_db(n=4, shape=(224, 64), seed=0):
    """Amplitude in dB of complex Gaussian noise (unit power), (n, H, W)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, *shape)) + 1j * rng.standard_normal((n, *shape))
    return 20 * np.log10(np.abs(z) / np.sqrt(2))


def with_targets(amp_db, cells, snr_db=30.0):
    out = amp_db.copy()
    for r, c in cells:
        out[:, r, c] = snr_db
    return out


TARGETS = [(20, 10), (60, 40), (112, 5), (150, 30), (200, 55), (223, 63)]


# --------------------------------------------------------------------------- CA-CFAR by a loop


def training_offsets(guard=GUARD, train=TRAIN):
    """(dr, dc) of every training cell: the outer window less the guard window and the cell."""
    (gd, gr), (td, tr) = guard, train
    return [
        (dr, dc)
        for dr in range(-(gd + td), gd + td + 1)
        for dc in range(-(gr + tr), gr + tr + 1)
        if abs(dr) > gd or abs(dc) > gr
    ]


def loop_training(power, r, c, guard=GUARD, train=TRAIN):
    """Linear powers of the training cells of cell (r, c) of one (H, W) map, one by one:
    Doppler wraps around (circular FFT); range does not, cells past its edges do not exist."""
    h, w = power.shape
    offsets = training_offsets(guard, train)
    return [power[(r + dr) % h, c + dc] for dr, dc in offsets if 0 <= c + dc < w]


def loop_noise(power, r, c, guard=GUARD, train=TRAIN):
    """Mean linear power of the training cells of cell (r, c)."""
    cells = loop_training(power, r, c, guard, train)
    return sum(cells) / len(cells)


def loop_alpha(pfa, n):
    """The threshold factor solved from its defining property: in exponential noise a cell
    exceeds alpha times the mean of n training cells with probability (1 + alpha / n)^(-n)."""
    return n * (pfa ** (-1.0 / n) - 1.0)


def extended_scene(seed=0):
    """One (224, 64) dB map: unit-power noise, a walker-like target spread over 25 Doppler rows
    and 2 range bins (uneven strength), weak point targets beside it (masked by it: it raises
    their noise estimate), a weak one in the clear, a target across the Doppler wrap at the far
    range edge, and leakage at range bin 0."""
    rng = np.random.default_rng(seed)
    amp = noise_db(1, seed=seed)[0]
    rows = np.arange(100, 125)
    for c in (20, 21):
        amp[rows, c] = 22.0 + 6.0 * rng.random(len(rows))  # 22-28 dB over 25 rows
    for r, c in WEAK_BESIDE:
        amp[r, c] = 16.0
    amp[40, 40] = 16.0  # as weak, in the clear
    for r in (*range(218, 224), *range(0, 6)):  # across the Doppler wrap, at the last range bin
        amp[r, 63] = 24.0
    amp[110:115, 0] = 30.0  # zero-Doppler leakage at range bin 0
    amp[3, 1] = 18.0  # weak, near the corner
    return amp


WEAK_BESIDE = [(112, 24), (96, 20), (128, 21), (112, 16)]


def test_training_window_has_the_documented_size():
    assert len(training_offsets()) == 280  # 25 x 13 outer window less the 9 x 5 guard window


def test_cfar_alpha_meets_its_false_alarm_probability():
    for pfa, n in ((1e-6, 280), (1e-3, 8), (0.1, 1), (0.5, 40)):
        alpha = rm.cfar_alpha(pfa, n)
        assert (1 + alpha / n) ** (-n) == pytest.approx(pfa, rel=1e-9)
    assert rm.cfar_alpha(0.1, 1) == pytest.approx(9.0)
    assert 10 * np.log10(rm.cfar_alpha(1e-6, 280)) == pytest.approx(11.5, abs=0.05)  # docstring


@pytest.mark.parametrize("pfa, n", [(0.0, 10), (1.0, 10), (1.5, 10), (-0.1, 10), (0.1, 0)])
def test_cfar_alpha_refuses_impossible_designs(pfa, n):
    with pytest.raises(ValueError, match="0 < pfa < 1 and n_train >= 1"):
        rm.cfar_alpha(pfa, n)


def test_cfar_equals_a_cell_by_cell_loop_on_extended_targets():
    amp = extended_scene()
    power = 10 ** (amp / 10)
    alpha = [loop_alpha(1e-6, len(loop_training(power, 0, c))) for c in range(64)]  # per bin
    expected = np.array(
        [[power[r, c] > alpha[c] * loop_noise(power, r, c) for c in range(64)] for r in range(224)]
    )
    det = rm.ca_cfar(amp)
    assert det.shape == (1, 224, 64) and det.dtype == bool
    np.testing.assert_array_equal(det[0], expected)
    # Both outcomes occur: the walker's spread, the weak target in the clear and the target
    # across the wrap are detected; the weak targets beside the walker are masked by it.
    assert expected[100:125, 20:22].any() and expected[40, 40] and expected[3, 1]
    assert expected[0, 63] and expected[223, 63]
    assert not any(expected[r, c] for r, c in WEAK_BESIDE)


# Cells where the loop pins the noise estimate: corners, both range edges, inside the extended
# target and beside it, across the Doppler wrap.
PINNED = [(0, 0), (223, 63), (112, 0), (5, 1), (0, 62), (221, 63), (112, 20), (104, 21), (112, 24),
          (96, 20), (124, 23), (60, 40)]  # fmt: skip


@pytest.mark.parametrize(
    "guard, train, pfa", [(GUARD, TRAIN, 1e-6), ((1, 3), (5, 2), 1e-4), ((0, 0), (2, 1), 1e-2)]
)
def test_cfar_threshold_is_pinned_at_single_cells(guard, train, pfa):
    """Set the cell under test just above, then just below, alpha times the loop's noise level:
    CA-CFAR must say yes, then no, which pins its noise estimate and its threshold factor (for
    the number of training cells left near a range edge) to 1e-6. The cell's own power must not
    move its noise level: it is never one of its own training cells."""
    amp = extended_scene(seed=1)
    power = 10 ** (amp / 10)
    batch, labels = [], []
    for r, c in PINNED:
        own = power.copy()
        own[r, c] = 0.0
        base = loop_noise(own, r, c, guard, train)  # noise level with the cell at zero power
        level = loop_alpha(pfa, len(loop_training(own, r, c, guard, train))) * base
        for factor, detected in ((1 + 1e-6, True), (1 - 1e-6, False)):
            frame = amp.copy()
            frame[r, c] = 10 * np.log10(level * factor)
            batch.append(frame)
            labels.append(detected)
    det = rm.ca_cfar(np.stack(batch), guard=guard, train=train, pfa=pfa)  # (2 x 12, H, W)
    cut = np.array([det[i, r, c] for i, (r, c) in enumerate(np.repeat(PINNED, 2, axis=0))])
    np.testing.assert_array_equal(cut, labels)


@pytest.mark.parametrize("guard, train", [((0, 0), (1, 1)), ((1, 0), (2, 1)), (GUARD, TRAIN)])
def test_a_strong_cell_at_the_range_edges_is_detected(guard, train):
    """A cell 50 dB over the noise in the first and last range bins is detected. With the
    range axis mirrored (edge cell repeated) a cell near an edge was among its own training
    cells, and with a range guard of 0 and few training cells never detected at all."""
    amp = noise_db(1, seed=4)[0]
    edge = [(20 + 30 * i, c) for i, c in enumerate((0, 1, 2, 61, 62, 63))]
    for r, c in edge:
        amp[r, c] = 50.0
    det = rm.ca_cfar(amp, guard=guard, train=train)[0]
    assert [bool(det[r, c]) for r, c in edge] == [True] * len(edge)


def test_false_alarm_rate_holds_at_the_range_edges():
    """In noise every range bin, the edge bins included, raises false alarms at the design rate
    (pfa = 1e-2 over 100 x 224 cells per bin: 224 expected, standard deviation 15)."""
    amp = noise_db(100, seed=5)
    for guard, train in (((1, 0), (2, 2)), (GUARD, TRAIN)):
        per_bin = rm.ca_cfar(amp, guard=guard, train=train, pfa=1e-2).sum(axis=(0, 1))  # (64,)
        assert per_bin.shape == (64,)
        assert (np.abs(per_bin[[0, 1, 2, 61, 62, 63]] - 224) < 60).all(), per_bin


def test_cfar_refuses_a_window_without_training_cells():
    with pytest.raises(ValueError, match="without training cells"):
        rm.ca_cfar(noise_db(1, shape=(8, 8))[0], guard=(8, 8), train=(0, 0))


def test_cfar_uses_pfa():
    amp = extended_scene(seed=2)
    power = 10 ** (amp / 10)
    r, c = 112, 20
    noise = loop_noise(power, r, c)
    strict, loose = loop_alpha(1e-9, 280), loop_alpha(1e-3, 280)
    amp[r, c] = 10 * np.log10(noise * (strict + loose) / 2)  # between the two thresholds
    assert not rm.ca_cfar(amp, pfa=1e-9)[0, r, c]
    assert rm.ca_cfar(amp, pfa=1e-3)[0, r, c]
    # amplitude_metrics passes the setting on
    loose = rm.amplitude_metrics(amp, amp, pfa=1e-3)["cfar_orig"]
    strict = rm.amplitude_metrics(amp, amp, pfa=1e-9)["cfar_orig"]
    assert (loose, strict) == (rm.ca_cfar(amp, pfa=1e-3).sum(), rm.ca_cfar(amp, pfa=1e-9).sum())
    assert loose > strict


def test_cfar_finds_planted_targets_and_few_false_alarms():
    amp = with_targets(noise_db(4), TARGETS, snr_db=25.0)  # corners and edges included
    det = rm.ca_cfar(amp)
    for r, c in TARGETS:
        assert det[:, r, c].all()
    planted = np.zeros(amp.shape[1:], bool)
    planted[tuple(np.array(TARGETS).T)] = True
    assert det[:, ~planted].sum() <= 2  # pfa = 1e-6: ~0.06 false alarms expected in 4 frames


def test_cfar_false_alarm_rate_matches_its_design():
    amp = noise_db(20, seed=3)
    rate = rm.ca_cfar(amp, pfa=1e-3).mean()
    assert 0.5e-3 < rate < 2e-3


def test_cfar_takes_one_map_or_a_batch():
    amp = extended_scene()
    np.testing.assert_array_equal(rm.ca_cfar(amp), rm.ca_cfar(amp[None]))
    with pytest.raises(ValueError, match=r"expected amplitude of shape \(N, H, W\) or \(H, W\)"):
        rm.ca_cfar(amp[0])


@pytest.mark.parametrize("offset_db", [-80.0, 60.0])
def test_cfar_depends_on_ratios_only(offset_db):
    """CA-CFAR compares a cell with its neighbours: the same scene 80 dB weaker or 60 dB
    stronger gives the same detections."""
    amp = extended_scene(seed=2)
    np.testing.assert_array_equal(rm.ca_cfar(amp + offset_db), rm.ca_cfar(amp))


def test_single_precision_maps_are_measured_in_double():
    orig = with_targets(noise_db(2, seed=6), TARGETS).astype(np.float32)
    recon = (orig + np.random.default_rng(7).normal(0, 3, orig.shape)).astype(np.float32)
    f64 = lambda *maps: [m.astype(np.float64) for m in maps]  # noqa: E731
    assert rm.amplitude_error_db(orig, recon) == rm.amplitude_error_db(*f64(orig, recon))
    phases = (orig / 50).astype(np.float32), (recon / 50).astype(np.float32), orig
    assert rm.phase_error(*phases) == rm.phase_error(*f64(*phases))


# --------------------------------------------------------------------------- detection scores


def cells(shape, *frames):
    """A (N, H, W) bool map with the listed (row, col) cells set in each frame."""
    out = np.zeros((len(frames), *shape), bool)
    for i, frame in enumerate(frames):
        for r, c in frame:
            out[i, r, c] = True
    return out


def test_detection_scores_count_matches_by_hand():
    # Frame 0: an extended target (two adjacent cells) seen once, beside it; a target missed;
    #          a false alarm. Frame 1: a target one cell off diagonally; one two cells off; a
    #          reconstruction detection at a cell that is an original detection of frame 0
    #          only (frames do not match each other).
    orig = cells((32, 40), [(5, 5), (5, 6), (20, 20)], [(10, 30), (25, 3)])
    recon = cells((32, 40), [(6, 7), (30, 30)], [(11, 31), (27, 3), (20, 20)])
    s = rm.detection_scores(orig, recon, tolerance=1)
    # matched original: (5,6) near (6,7), (10,30) near (11,31) -> 2 of 5;
    # matched reconstruction: (6,7), (11,31) -> 2 of 5.
    assert s["cfar_recall"] == pytest.approx(2 / 5) and s["cfar_precision"] == pytest.approx(2 / 5)
    assert s["cfar_f1"] == pytest.approx(2 / 5)
    assert (s["cfar_orig"], s["cfar_recon"]) == (5 / 2, 5 / 2)  # per frame
    s2 = rm.detection_scores(orig, recon, tolerance=2)
    # now (5,5) near (6,7) and (25,3) near (27,3) match too: 4 of 5 original; reconstruction:
    # (6,7), (11,31), (27,3) -> 3 of 5.
    assert s2["cfar_recall"] == pytest.approx(4 / 5)
    assert s2["cfar_precision"] == pytest.approx(3 / 5)
    assert s2["cfar_f1"] == pytest.approx(2 * (4 / 5) * (3 / 5) / (4 / 5 + 3 / 5))
    exact = rm.detection_scores(orig, recon, tolerance=0)
    assert exact["cfar_precision"] == exact["cfar_recall"] == exact["cfar_f1"] == 0


def test_detection_scores_with_and_without_tolerance():
    orig = cells((32, 32), [(10, 10), (20, 5)])
    recon = cells((32, 32), [(11, 10)])  # one cell off the first target; the second is missed
    s = rm.detection_scores(orig, recon, tolerance=1)
    assert (s["cfar_precision"], s["cfar_recall"]) == (1.0, 0.5)
    assert s["cfar_f1"] == pytest.approx(2 / 3)
    assert (s["cfar_orig"], s["cfar_recon"]) == (2.0, 1.0)
    exact = rm.detection_scores(orig, recon, tolerance=0)
    assert (exact["cfar_precision"], exact["cfar_recall"], exact["cfar_f1"]) == (0, 0, 0)
    recon[0, 10, 10] = True  # now also exactly on it
    exact = rm.detection_scores(orig, recon, tolerance=0)
    assert (exact["cfar_precision"], exact["cfar_recall"]) == (0.5, 0.5)


def test_empty_detection_maps():
    some = cells((16, 16), [(3, 3), (8, 9)])
    none = np.zeros_like(some)
    both_empty = rm.detection_scores(none, none)
    assert (both_empty["cfar_precision"], both_empty["cfar_recall"]) == (1.0, 1.0)
    assert both_empty["cfar_f1"] == 1.0  # nothing to find and nothing found
    missed = rm.detection_scores(some, none)  # nothing found: no false alarm, all missed
    assert (missed["cfar_precision"], missed["cfar_recall"], missed["cfar_f1"]) == (1.0, 0.0, 0.0)
    invented = rm.detection_scores(none, some)  # nothing to find: all found is false
    assert (invented["cfar_precision"], invented["cfar_recall"]) == (0.0, 1.0)
    assert invented["cfar_f1"] == 0.0
    assert (invented["cfar_orig"], invented["cfar_recon"]) == (0.0, 2.0)


def test_detection_scores_default_to_one_cell_and_take_any_zero_one_maps():
    orig = cells((16, 16), [(5, 5), (10, 10)])
    recon = cells((16, 16), [(6, 6), (12, 10)])  # one cell off, and two cells off
    s = rm.detection_scores(orig, recon)
    assert (s["cfar_precision"], s["cfar_recall"]) == (0.5, 0.5)
    as_floats = rm.detection_scores(orig.astype(np.float32), recon.astype(np.float64))
    assert as_floats == s


def test_detections_match_across_the_doppler_wrap_but_not_the_range_edges():
    """Row 0 and row H - 1 are neighbours (the Doppler FFT is circular); range bins 0 and W - 1
    are not."""
    orig = cells((16, 8), [(0, 3), (7, 0)])
    recon = cells((16, 8), [(15, 3), (7, 7)])  # one across the wrap, one across the range
    s = rm.detection_scores(orig, recon, tolerance=1)
    assert (s["cfar_precision"], s["cfar_recall"]) == (0.5, 0.5)
    assert rm.detection_scores(orig, recon, tolerance=0)["cfar_recall"] == 0.0
    wide = rm.detection_scores(cells((16, 8), [(1, 3)]), cells((16, 8), [(14, 3)]), tolerance=3)
    assert (wide["cfar_precision"], wide["cfar_recall"]) == (1.0, 1.0)  # 3 rows apart, wrapped
    apart = rm.detection_scores(cells((16, 8), [(1, 3)]), cells((16, 8), [(14, 3)]), tolerance=2)
    assert (apart["cfar_precision"], apart["cfar_recall"]) == (0.0, 0.0)


def test_a_map_rolled_by_one_doppler_row_scores_perfectly():
    """CA-CFAR is circular in Doppler, so rolling a map by a row rolls its detections: a
    target in the last row moves to row 0 and stays matched."""
    amp = with_targets(noise_db(1, seed=8), [(223, 30), (100, 10)])[0]
    amp[223, 30] = 35.0  # the strongest: the peak crosses the wrap too
    s = rm.amplitude_metrics(amp, np.roll(amp, 1, axis=0))
    assert rm.ca_cfar(amp)[0, 223, 30] and s["cfar_orig"] >= 2
    assert (s["cfar_precision"], s["cfar_recall"], s["cfar_f1"]) == (1.0, 1.0, 1.0)
    assert s["peak_err_doppler"] == 1.0 and s["peak_err_range"] == 0.0


def test_frames_are_matched_separately():
    orig = cells((16, 16), [(5, 5)], [])
    recon = cells((16, 16), [], [(5, 5)])  # the same cell, in the next frame
    s = rm.detection_scores(orig, recon, tolerance=1)
    assert (s["cfar_precision"], s["cfar_recall"], s["cfar_f1"]) == (0.0, 0.0, 0.0)
    assert (s["cfar_orig"], s["cfar_recon"]) == (0.5, 0.5)


def test_detection_scores_refuse_mismatched_maps():
    with pytest.raises(ValueError, match=r"two \(N, H, W\) detection maps"):
        rm.detection_scores(np.zeros((1, 8, 8), bool), np.zeros((1, 8, 9), bool))
    with pytest.raises(ValueError, match=r"two \(N, H, W\) detection maps"):
        rm.detection_scores(np.zeros((8, 8), bool), np.zeros((8, 8), bool))


# --------------------------------------------------------------------------- all metrics at once


def test_identical_maps_score_perfectly():
    amp = with_targets(noise_db(), TARGETS)
    phase = np.random.default_rng(1).uniform(-np.pi, np.pi, amp.shape)
    m = rm.amplitude_metrics(amp, amp)
    assert m["amp_mae_db"] == m["amp_mae_db_target"] == 0
    assert m["cfar_precision"] == m["cfar_recall"] == m["cfar_f1"] == 1
    assert m["cfar_orig"] == m["cfar_recon"] == rm.ca_cfar(amp).sum() / len(amp) >= len(TARGETS)
    assert m["peak_err_doppler"] == m["peak_err_range"] == 0
    assert m["peak_err_doppler_moving"] == m["peak_err_range_moving"] == 0
    p = rm.phase_error(phase, phase, amp)
    assert p == {"phase_err": 0.0, "phase_err_weighted": 0.0, "phase_err_target": 0.0}


def test_amplitude_metrics_combine_the_parts_with_the_cfar_settings_given():
    orig = with_targets(noise_db(2, seed=5), TARGETS, snr_db=25.0)
    orig = with_targets(orig, [(112, 0)], snr_db=60.0)  # leakage: the global peak
    recon = np.roll(orig, (2, 1), axis=(1, 2)) + 0.5
    settings = {"guard": (2, 1), "train": (6, 3), "pfa": 1e-4}
    m = rm.amplitude_metrics(orig, recon, target_db=30.0, **settings)
    expected = {
        **rm.amplitude_error_db(orig, recon, 30.0),
        **rm.detection_scores(rm.ca_cfar(orig, **settings), rm.ca_cfar(recon, **settings)),
        **rm.peak_location_error(orig, recon),
        **{
            f"{k}_moving": v
            for k, v in rm.peak_location_error(orig, recon, rm.zero_doppler_rows(224)).items()
        },
    }
    assert m == expected
    assert m["cfar_orig"] != rm.amplitude_metrics(orig, recon)["cfar_orig"]  # settings matter
    assert (m["peak_err_doppler"], m["peak_err_range"]) == (2, 1)  # the leakage moved too
    assert m["amp_mae_db_target"] != rm.amplitude_metrics(orig, recon)["amp_mae_db_target"]


# --------------------------------------------------------------------------- peak location


@pytest.mark.parametrize("row", [80, 2])  # the second crosses the Doppler wrap
@pytest.mark.parametrize("shift", [(3, 0), (0, -2), (-5, 4), (220, 1), (112, 0)])
def test_a_shifted_peak_gives_the_shift(shift, row):
    amp = with_targets(noise_db(2), [(row, 30)], snr_db=50.0)
    moved = np.roll(amp, shift, axis=(1, 2))
    err = rm.peak_location_error(amp, moved)
    dr = min(abs(shift[0]), 224 - abs(shift[0]))  # the Doppler axis wraps around
    assert err == {"peak_err_doppler": dr, "peak_err_range": abs(shift[1])}


def test_peak_errors_are_averaged_over_frames():
    amp = with_targets(noise_db(3, seed=4), [(222, 30)], snr_db=50.0)
    recon = amp.copy()
    recon[0] = np.roll(amp[0], (4, 0), axis=(0, 1))  # to row 2: 4 rows across the wrap
    recon[2] = np.roll(amp[2], (-1, 5), axis=(0, 1))
    err = rm.peak_location_error(amp, recon)
    assert err == {"peak_err_doppler": pytest.approx(5 / 3), "peak_err_range": pytest.approx(5 / 3)}
    amp[1], recon[1] = np.roll(amp[1], (-100, 7), (0, 1)), np.roll(recon[1], (-100, 7), (0, 1))
    assert rm.peak_location_error(amp, recon) == err  # each frame's own peak
    assert rm.peak_location_error(amp[1], recon[1]) == {  # one (H, W) map is a batch of one
        "peak_err_doppler": 0.0,
        "peak_err_range": 0.0,
    }


def test_moving_peak_ignores_the_zero_doppler_band():
    amp = with_targets(noise_db(1), [(112, 0)], snr_db=80.0)  # leakage: the global peak
    amp = with_targets(amp, [(90, 20)], snr_db=40.0)  # the walker
    recon = with_targets(amp, [(90, 20)], snr_db=0.0)
    recon = with_targets(recon, [(94, 21)], snr_db=40.0)
    assert rm.peak_location_error(amp, recon)["peak_err_doppler"] == 0
    moving = rm.peak_location_error(amp, recon, rm.zero_doppler_rows(224))
    assert moving == {"peak_err_doppler": 4, "peak_err_range": 1}
    # The originals are left as they were.
    assert amp[0, 112, 0] == 80.0 and recon[0, 112, 0] == 80.0


def test_zero_doppler_rows():
    np.testing.assert_array_equal(rm.zero_doppler_rows(224), [110, 111, 112, 113, 114])
    np.testing.assert_array_equal(rm.zero_doppler_rows(224, 0), [112])
    np.testing.assert_array_equal(rm.zero_doppler_rows(16, 1), [7, 8, 9])


# --------------------------------------------------------------------------- dB and phase errors


def test_amplitude_error_over_map_and_target_region():
    amp = with_targets(noise_db(2), [(50, 50)], snr_db=60.0)
    region = rm.target_region(amp)
    assert region[:, 50, 50].all() and region.sum() == 2  # noise is > 40 dB below the peak
    recon = amp + 1.0
    recon[:, 50, 50] -= 4.0  # -3 dB on the target
    err = rm.amplitude_error_db(amp, recon)
    assert err["amp_mae_db_target"] == pytest.approx(3.0)
    assert err["amp_mae_db"] == pytest.approx((224 * 64 - 1 + 3) / (224 * 64))


def test_target_region_includes_its_boundary_and_is_per_frame():
    amp = np.full((2, 8, 8), -100.0)
    amp[0, 1, 1], amp[0, 2, 2], amp[0, 3, 3] = 10.0, -30.0, -30.5  # 40 dB and 40.5 dB down
    amp[1, 4, 4], amp[1, 5, 5] = -20.0, -45.0  # its own peak: 25 dB down is inside
    region = rm.target_region(amp)
    assert region.sum() == 4
    assert region[0, 1, 1] and region[0, 2, 2] and not region[0, 3, 3]
    assert region[1, 4, 4] and region[1, 5, 5]
    assert rm.target_region(amp, target_db=20.0).sum() == 2
    assert rm.target_region(amp[1]).shape == (1, 8, 8)


def test_phase_error_wraps_and_weights_by_amplitude():
    assert rm.wrap_phase(np.array([np.pi + 0.1, -np.pi, 3 * np.pi, 0.5, -3.0])) == pytest.approx(
        [-np.pi + 0.1, np.pi, np.pi, 0.5, -3.0]
    )
    amp = with_targets(noise_db(1), [(30, 30)], snr_db=80.0)
    orig = np.full(amp.shape, np.pi - 0.1)
    recon = np.full(amp.shape, -np.pi + 0.1)  # 0.2 rad apart across the +-pi cut
    recon[:, 30, 30] = orig[:, 30, 30]  # the target is right
    e = rm.phase_error(orig, recon, amp)
    assert e["phase_err"] == pytest.approx(0.2 * (1 - 1 / (224 * 64)))
    assert e["phase_err_target"] == 0
    w = 10 ** (amp / 20)  # linear amplitude: the 80 dB target weighs as much as ~8000 noise cells
    expected = 0.2 * (w.sum() - w[0, 30, 30]) / w.sum()
    assert e["phase_err_weighted"] == pytest.approx(expected) and expected < 0.2 * 0.7


def test_phase_error_on_the_target_region_with_known_errors():
    amp = np.full((1, 4, 4), -80.0)
    amp[0, 0, 0], amp[0, 1, 1] = 0.0, -40.0  # two target cells, the second on the boundary
    orig = np.zeros((1, 4, 4))
    recon = np.zeros((1, 4, 4))
    orig[0, 0, 0], recon[0, 0, 0] = 3.0, -3.0  # 6 rad apart one way, 2 pi - 6 the other
    recon[0, 1, 1], recon[0, 3, 3] = -0.5, 1.0
    e00 = 2 * np.pi - 6.0
    e = rm.phase_error(orig, recon, amp)
    assert e["phase_err"] == pytest.approx((e00 + 0.5 + 1.0) / 16)
    assert e["phase_err_target"] == pytest.approx((e00 + 0.5) / 2)
    w = np.full((4, 4), 1e-4)  # -80 dB -> 1e-4 in amplitude
    w[0, 0], w[1, 1] = 1.0, 0.01
    assert e["phase_err_weighted"] == pytest.approx((e00 + 0.005 + 1e-4) / w.sum())
    assert rm.phase_error(orig, recon, amp, target_db=20.0)["phase_err_target"] == pytest.approx(
        e00
    )
    amp[0, 2, 2], recon[0, 2, 2] = -40.5, 2.0  # just outside the default 40 dB
    assert rm.phase_error(orig, recon, amp)["phase_err_target"] == pytest.approx((e00 + 0.5) / 2)


def test_phase_weights_are_relative_to_each_frames_peak():
    """Every frame's peak weighs 1, however strong the frame: a frame 20 dB weaker overall
    counts as much as the first, not ten times less."""
    amp = np.full((2, 4, 4), -60.0)
    amp[0, 0, 0] = 0.0
    amp[1] = amp[0] - 20.0
    orig = np.zeros((2, 4, 4))
    recon = np.zeros((2, 4, 4))
    recon[0, 0, 0], recon[1, 0, 0] = 0.2, 0.6  # an error on each frame's peak only
    w = 1.0 + 15 * 1e-3  # per frame: the peak, and 15 cells 60 dB down
    e = rm.phase_error(orig, recon, amp)
    assert e["phase_err_weighted"] == pytest.approx((0.2 + 0.6) / (2 * w))


def test_amplitude_metrics_default_to_a_40_db_target_region():
    orig = np.full((1, 8, 8), -100.0)
    orig[0, 1, 1], orig[0, 2, 2] = 0.0, -40.5  # the second is just outside the target region
    recon = orig.copy()
    recon[0, 2, 2] += 3.0
    assert rm.amplitude_metrics(orig, recon)["amp_mae_db_target"] == 0.0
    assert rm.amplitude_error_db(orig, recon)["amp_mae_db_target"] == 0.0
    assert rm.amplitude_error_db(orig, recon, 41.0)["amp_mae_db_target"] == pytest.approx(1.5)


@pytest.mark.parametrize(
    "call",
    [
        lambda a, b: rm.amplitude_error_db(a, b),
        lambda a, b: rm.peak_location_error(a, b),
        lambda a, b: rm.amplitude_metrics(a, b),
    ],
)
def test_a_map_of_the_wrong_rank_is_named(call):
    good, bad = np.zeros((1, 8, 8)), np.zeros(8)
    with pytest.raises(ValueError, match=r"expected original amplitude of shape \(N, H, W\)"):
        call(bad, good)
    with pytest.raises(ValueError, match=r"expected reconstructed amplitude of shape \(N, H, W\)"):
        call(good, bad)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="original and reconstruction differ in shape"):
        rm.amplitude_error_db(np.zeros((2, 8, 8)), np.zeros((2, 8, 9)))
    with pytest.raises(ValueError, match="original and reconstruction differ in shape"):
        rm.peak_location_error(np.zeros((2, 8, 8)), np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match=r"amplitude \(1, 8, 8\) does not match phase"):
        rm.phase_error(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match=r"expected amplitude of shape \(N, H, W\) or \(H, W\)"):
        rm.phase_error(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), np.zeros(8))
    with pytest.raises(ValueError, match=r"expected amplitude of shape \(N, H, W\) or \(H, W\)"):
        rm.target_region(np.zeros((1, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"original phase of shape \(N, H, W\)"):
        rm.phase_error(np.zeros((1, 1, 8, 8)), np.zeros((1, 1, 8, 8)), np.zeros((1, 8, 8)))


@pytest.mark.parametrize("settings", [{}, {"guard": (2, 1), "train": (6, 3), "pfa": 1e-4}])
def test_cfar_detects_exactly_the_cells_above_its_threshold(settings):
    rng = np.random.default_rng(3)
    amp = (10 * np.log10(rng.exponential(1.0, size=(3, 48, 24)))).astype(np.float32)
    amp[:, 20:22, 5] += 30  # two strong cells side by side
    threshold = rm.cfar_threshold_db(amp, **settings)
    detected = rm.ca_cfar(amp, **settings)
    assert detected[:, 20:22, 5].all()
    np.testing.assert_array_equal(detected, amp > threshold)
    # raising the training cells' power by 10 dB raises the threshold by 10 dB
    np.testing.assert_allclose(
        rm.cfar_threshold_db(amp + 10, **settings), threshold + 10, atol=1e-6
    )


@pytest.mark.parametrize("settings", [{}, {"guard": (2, 1), "train": (6, 3), "pfa": 1e-4}])
def test_cfar_with_threshold_is_both_functions_in_one_pass(settings):
    rng = np.random.default_rng(4)
    amp = (10 * np.log10(rng.exponential(1.0, size=(3, 48, 24)))).astype(np.float32)
    amp[:, 10, 3] += 25
    amp[:, 30:, :] = -400.0  # a stretch of near-zero power: the threshold's floor at tiny
    detected, threshold = rm.cfar_with_threshold(amp, **settings)
    np.testing.assert_array_equal(detected, rm.ca_cfar(amp, **settings))
    np.testing.assert_array_equal(threshold, rm.cfar_threshold_db(amp, **settings))
    assert detected[:, 10, 3].all() and np.isfinite(threshold).all()
