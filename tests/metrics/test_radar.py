"""Physical-unit metrics on cases with known answers."""

import numpy as np
import pytest

from mmslim.metrics import radar as rm


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


def test_identical_maps_score_perfectly():
    amp = with_targets(noise_db(), TARGETS)
    phase = np.random.default_rng(1).uniform(-np.pi, np.pi, amp.shape)
    m = rm.amplitude_metrics(amp, amp)
    assert m["amp_mae_db"] == m["amp_mae_db_target"] == 0
    assert m["cfar_precision"] == m["cfar_recall"] == m["cfar_f1"] == 1
    assert m["peak_err_doppler"] == m["peak_err_range"] == 0
    assert m["peak_err_doppler_moving"] == m["peak_err_range_moving"] == 0
    p = rm.phase_error(phase, phase, amp)
    assert p == {"phase_err": 0.0, "phase_err_weighted": 0.0, "phase_err_target": 0.0}


@pytest.mark.parametrize("shift", [(3, 0), (0, -2), (-5, 4), (220, 1)])
def test_a_shifted_peak_gives_the_shift(shift):
    amp = with_targets(noise_db(2), [(80, 30)], snr_db=50.0)
    moved = np.roll(amp, shift, axis=(1, 2))
    err = rm.peak_location_error(amp, moved)
    dr = min(abs(shift[0]), 224 - abs(shift[0]))  # the Doppler axis wraps around
    assert err == {"peak_err_doppler": dr, "peak_err_range": abs(shift[1])}


def test_moving_peak_ignores_the_zero_doppler_band():
    amp = with_targets(noise_db(1), [(112, 0)], snr_db=80.0)  # leakage: the global peak
    amp = with_targets(amp, [(90, 20)], snr_db=40.0)  # the walker
    recon = with_targets(amp, [(90, 20)], snr_db=0.0)
    recon = with_targets(recon, [(94, 21)], snr_db=40.0)
    assert rm.peak_location_error(amp, recon)["peak_err_doppler"] == 0
    moving = rm.peak_location_error(amp, recon, rm.zero_doppler_rows(224))
    assert moving == {"peak_err_doppler": 4, "peak_err_range": 1}


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
    assert rm.cfar_alpha(0.1, 1) == pytest.approx(9.0)  # n (pfa^(-1/n) - 1)


def test_detection_scores_with_and_without_tolerance():
    orig = np.zeros((1, 32, 32), bool)
    orig[0, 10, 10] = orig[0, 20, 5] = True
    recon = np.zeros_like(orig)
    recon[0, 11, 10] = True  # one cell off the first target; the second is missed
    s = rm.detection_scores(orig, recon, tolerance=1)
    assert (s["cfar_precision"], s["cfar_recall"]) == (1.0, 0.5)
    assert s["cfar_f1"] == pytest.approx(2 / 3)
    exact = rm.detection_scores(orig, recon, tolerance=0)
    assert (exact["cfar_precision"], exact["cfar_recall"], exact["cfar_f1"]) == (0, 0, 0)
    none = rm.detection_scores(np.zeros_like(orig), np.zeros_like(orig))
    assert none["cfar_f1"] == 1.0  # nothing to find and nothing found


def test_amplitude_error_over_map_and_target_region():
    amp = with_targets(noise_db(2), [(50, 50)], snr_db=60.0)
    region = rm.target_region(amp)
    assert region[:, 50, 50].all() and region.sum() == 2  # noise is > 40 dB below the peak
    recon = amp + 1.0
    recon[:, 50, 50] -= 4.0  # -3 dB on the target
    err = rm.amplitude_error_db(amp, recon)
    assert err["amp_mae_db_target"] == pytest.approx(3.0)
    assert err["amp_mae_db"] == pytest.approx((224 * 64 - 1 + 3) / (224 * 64))


def test_phase_error_wraps_and_weights_by_amplitude():
    assert rm.wrap_phase(np.array([np.pi + 0.1, -np.pi, 3 * np.pi])) == pytest.approx(
        [-np.pi + 0.1, np.pi, np.pi]
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


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="shape"):
        rm.amplitude_error_db(np.zeros((2, 8, 8)), np.zeros((2, 8, 9)))
    with pytest.raises(ValueError, match="pfa"):
        rm.cfar_alpha(1.5, 10)
