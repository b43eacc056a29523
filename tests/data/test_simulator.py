"""Radar processing chain, walker kinematics and the FMCW scene simulator."""

from __future__ import annotations

import numpy as np
import pytest

from mmslim.data.layout import frame_filename
from mmslim.data.radar import SPEED_OF_LIGHT, RadarConfig, to_amplitude_db, to_phase
from mmslim.data.simulator import (
    RADAR_POSITION,
    make_scene,
    simulate_dataset,
    simulate_point_target,
    simulate_sequence,
    walker_scatterers,
    write_dataset,
)
from mmslim.data.walker import SEGMENTS, Walker, ellipsoid_rcs

RADAR = RadarConfig()
PI32 = np.float32(np.pi)


def test_radar_numbers_match_the_capture_setup():
    assert RADAR.bandwidth == pytest.approx(1.92e9)
    assert RADAR.range_resolution == pytest.approx(0.078, abs=1e-3)
    assert RADAR.velocity_resolution == pytest.approx(0.0555, abs=1e-3)
    assert RADAR.max_velocity == pytest.approx(6.12, abs=0.01)
    assert RADAR.range_axis().shape == (64,) and RADAR.range_axis()[-1] < 5.0
    v = RADAR.velocity_axis()
    assert v.shape == (224,) and v[112] == 0.0 and v[0] == pytest.approx(-RADAR.max_velocity)
    odd = RadarConfig(n_chirps=5)  # zero velocity on row n // 2 for an odd chirp count too
    np.testing.assert_array_equal(odd.velocity_axis(), np.arange(-2, 3) * odd.velocity_resolution)


@pytest.mark.parametrize(
    "range_m, velocity",
    [(0.5, 0.0), (1.0, 1.0), (2.3, -1.5), (3.7, 4.0), (4.6, -5.5), (2.0, 0.2), (1.4, -0.3)],
)
def test_point_target_lands_in_its_range_bin_and_doppler_row(range_m, velocity):
    rd = simulate_point_target(range_m, velocity, snr_db=40, seed=1)
    assert rd.shape == (224, 64) and rd.dtype == np.complex64
    row, col = np.unravel_index(np.argmax(np.abs(rd)), rd.shape)
    assert abs(col - np.argmin(np.abs(RADAR.range_axis() - range_m))) <= 1
    assert abs(row - np.argmin(np.abs(RADAR.velocity_axis() - velocity))) <= 1


BIN_CENTRES = [(0, 112), (1, 20), (17, 200), (40, 0), (63, 223), (30, 112), (5, 140), (50, 61)]


@pytest.mark.parametrize("col, row", BIN_CENTRES)
def test_target_on_a_bin_centre_peaks_in_exactly_that_bin(col, row):
    """A target at the range of bin ``col`` (at the middle chirp), moving at the velocity of row
    ``row``, peaks in exactly that cell, with the carrier phase of its range there: the range FFT
    references phase to the first ADC sample, the Doppler FFT to the middle chirp, whose offset
    from chirp 0 turns bin ``k = row - 112`` by ``pi k``."""
    range_m, velocity = RADAR.range_axis()[col], RADAR.velocity_axis()[row]
    rd = simulate_point_target(range_m, velocity, snr_db=60, seed=1)
    peak = np.unravel_index(np.argmax(np.abs(rd)), rd.shape)
    assert peak == (row, col)
    carrier = 2 * np.pi * 2 * range_m * RADAR.f_start_hz / SPEED_OF_LIGHT + np.pi * (row - 112)
    assert np.angle(rd[row, col] * np.exp(-1j * carrier)) == pytest.approx(0, abs=1e-4)


@pytest.mark.parametrize("col", [0, 9, 63])
def test_static_unit_tone_peaks_at_the_window_sums(col):
    """A unit-amplitude static target on a range-bin centre: both periodic Hann windows sum to
    half their length, so the peak is (128 / 2) (224 / 2) = 7168 and its Doppler neighbours half
    of that (the window's DFT is N/2 at bin 0, -N/4 at bins +-1, 0 elsewhere)."""
    rd = simulate_point_target(RADAR.range_axis()[col], 0.0, snr_db=100)
    assert abs(rd[112, col]) == pytest.approx(64 * 112, rel=1e-5)
    assert abs(rd[111, col]) == pytest.approx(64 * 112 / 2, rel=1e-4)
    assert abs(rd[113, col]) == pytest.approx(64 * 112 / 2, rel=1e-4)
    assert np.abs(np.delete(rd[:, col], [111, 112, 113])).max() < 1e-3 * 64 * 112


@pytest.mark.parametrize("snr_db", [None, 20.0])
def test_noise_power_follows_the_snr_through_both_windows(snr_db):
    """Complex noise of power 10**(-snr/10) per ADC sample (60 dB unless given) comes out of
    the two windowed FFTs with power sum(w_range**2) sum(w_doppler**2) = (3 128 / 8)(3 224 / 8)
    = 4032 times that in every cell away from the target; other seeds draw other noise."""
    snr = {} if snr_db is None else {"snr_db": snr_db}
    rd = simulate_point_target(RADAR.range_axis()[20], 0.0, seed=3, **snr)
    away = np.ones(rd.shape, bool)
    away[110:115, 18:23] = False  # the target's cell and its window's neighbours
    expected = 4032 * 10 ** (-(snr_db or 60.0) / 10)
    assert np.mean(np.abs(rd[away]) ** 2) == pytest.approx(expected, rel=0.02)
    other = simulate_point_target(RADAR.range_axis()[20], 0.0, seed=4, **snr)
    assert not np.array_equal(rd, other)


def test_range_doppler_equals_the_windowed_fft_written_out():
    rng = np.random.default_rng(3)
    beat = rng.standard_normal((224, 128)) + 1j * rng.standard_normal((224, 128))
    n, m = np.arange(128), np.arange(224)
    w_range = 0.5 - 0.5 * np.cos(2 * np.pi * n / 128)
    w_doppler = 0.5 - 0.5 * np.cos(2 * np.pi * m / 224)
    k = np.arange(64)  # range bins kept: 0 to 63
    profiles = (beat * w_range) @ np.exp(-2j * np.pi * np.outer(n, k) / 128)  # (224, 64)
    rows = np.arange(224) - 112  # Doppler bins after fftshift: -112 ... 111
    rd = np.exp(-2j * np.pi * np.outer(rows, m) / 224) @ (profiles * w_doppler[:, None])
    np.testing.assert_allclose(RADAR.range_doppler(beat), rd, rtol=0, atol=1e-9 * np.abs(rd).max())


def test_range_doppler_accepts_batches_and_checks_shape():
    rng = np.random.default_rng(0)
    beat = (rng.standard_normal((2, 3, 224, 128)) + 1j).astype(np.complex64)
    rd = RADAR.range_doppler(beat)
    assert rd.shape == (2, 3, 224, 64) and rd.dtype == np.complex64
    np.testing.assert_allclose(rd[1, 2], RADAR.range_doppler(beat[1, 2]), rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match=r"beat must end in \(224, 128\), got \(2, 3, 224, 100\)"):
        RADAR.range_doppler(beat[..., :100])


def test_amplitude_and_phase_conversions():
    x = np.array([0, 1e-20, 1, -1 - 0j, complex(-1, -0.0), 1j], np.complex64)
    amp, phase = to_amplitude_db(x), to_phase(x)
    assert amp[0] == amp[1] == pytest.approx(-240.0) and amp[2] == 0.0  # floor 1e-12: -240 dB
    assert np.all(phase > -PI32) and np.all(phase <= PI32) and phase[4] == PI32
    np.testing.assert_array_equal(phase, np.float32([0, 0, 0, np.pi, np.pi, np.pi / 2]))


def test_sequence_shapes_dtypes_and_value_ranges():
    amp, phase = simulate_sequence(0, 0, 3)
    for x in (amp, phase):
        assert x.shape == (3, 224, 64) and x.dtype == np.float32
    assert np.all(np.isfinite(amp))
    dynamic_range = amp.max(axis=(1, 2)) - np.median(amp, axis=(1, 2))
    assert np.all((dynamic_range > 55) & (dynamic_range < 85)), dynamic_range
    assert np.all(phase > -PI32) and np.all(phase <= PI32)
    # The leakage spike is the brightest cell: range bin 0, zero-Doppler row.
    assert np.all(amp[:, 112, 0] == amp.max(axis=(1, 2)))


def test_same_arguments_give_identical_frames_and_seeds_differ():
    a1, p1 = simulate_sequence(2, 1, 2, seed=5)
    a2, p2 = simulate_sequence(2, 1, 2, seed=5)
    assert a1.tobytes() == a2.tobytes() and p1.tobytes() == p2.tobytes()
    for other in (simulate_sequence(2, 1, 2, seed=6), simulate_sequence(2, 2, 2, seed=5)):
        assert not np.array_equal(a1, other[0])
    # A longer run (crossing a synthesis chunk) starts with the same frames.
    longer, _ = simulate_sequence(2, 1, 10, seed=5)
    np.testing.assert_array_equal(longer[:2], a1)


def test_a_subject_is_the_same_person_in_every_sequence():
    scenes = [make_scene(3, seq) for seq in range(3)]
    assert len({(s.walker.height, s.walker.speed, s.loop.start) for s in scenes}) == 1
    assert len({s.dynamic_range_db for s in scenes}) == 3
    assert make_scene(4, 0).walker.height != scenes[0].walker.height


def test_walker_stays_inside_the_kept_ranges():
    scene = make_scene(1, 0)
    loop_time = scene.loop.perimeter / scene.walker.speed
    pos, rcs = walker_scatterers(scene, np.linspace(0, loop_time, 300))
    ranges = np.linalg.norm(pos - RADAR_POSITION, axis=-1)
    assert pos.shape == (300, len(SEGMENTS), 3) and rcs.shape == (300, len(SEGMENTS))
    assert ranges.min() > 0.9 and ranges.max() < RADAR.range_axis()[-1]
    assert np.all(rcs > 0) and np.all(pos[..., 2] > -0.05)


@pytest.mark.parametrize("subject", [0, 1])
def test_strongest_moving_cell_is_near_the_torso(subject):
    n = 12
    amp, _ = simulate_sequence(subject, 0, n)
    t = np.arange(n) / RADAR.frame_rate_hz + (RADAR.n_chirps // 2) * RADAR.chirp_period_s
    scene, torso = make_scene(subject, 0), SEGMENTS.index("torso")
    torso_range = [
        np.linalg.norm(walker_scatterers(scene, t + dt)[0][:, torso] - RADAR_POSITION, axis=-1)
        for dt in (0.0, 1e-3)
    ]
    radial_speed = (torso_range[1] - torso_range[0]) / 1e-3
    masked = amp.copy()
    masked[:, :, :2] = -np.inf  # leakage
    masked[:, 110:115, :] = -np.inf  # static reflectors sit in the zero-Doppler row
    rows, cols = np.unravel_index(masked.reshape(n, -1).argmax(axis=1), (224, 64))
    moving = np.abs(radial_speed) > 0.3
    assert moving.sum() >= n // 2
    np.testing.assert_array_less(
        np.abs(cols - torso_range[0] / RADAR.range_resolution)[moving], 4.0
    )
    # The Doppler row has the sign of the torso's radial velocity (+ = receding).
    velocity = RADAR.velocity_axis()[rows]
    assert np.all(np.sign(velocity[moving]) == np.sign(radial_speed[moving]))


def test_walker_gait_is_plausible():
    walker = Walker(height=1.75, speed=1.2)
    assert 0.9 < walker.cycle_duration < 1.3 and 0.55 < walker.support_fraction < 0.7
    centres, axes = walker.pose(np.linspace(0, 2 * walker.cycle_duration, 200))
    assert centres.shape == axes.shape == (200, len(SEGMENTS), 3)
    np.testing.assert_allclose(np.linalg.norm(axes, axis=-1), 1.0, atol=1e-9)
    head, feet = SEGMENTS.index("head"), [SEGMENTS.index("foot_l"), SEGMENTS.index("foot_r")]
    assert 0.85 * 1.75 < centres[:, head, 2].min() and centres[:, head, 2].max() < 1.75
    assert centres[:, feet, 2].min() > -0.03 and centres[:, feet, 2].max() < 0.3
    # Left and right legs swing half a cycle apart: opposite forward offsets on average.
    assert np.corrcoef(centres[:, feet[0], 0], centres[:, feet[1], 0])[0, 1] < -0.5


def test_ellipsoid_rcs_limits():
    look = np.array([[0.6, 0.0, 0.8]])  # (1, 3), any direction
    sphere = ellipsoid_rcs(np.array([[0.1, 0.1, 0.1]]), np.array([[0.0, 0, 1]]), [0, 1.0, 0], look)
    np.testing.assert_allclose(sphere, np.pi * 0.01)
    # A cylinder-like ellipsoid seen broadside: pi c^2; end-on: pi a^2 b^2 / c^2.
    axes = np.array([[0.05, 0.05, 0.2]])
    broad = ellipsoid_rcs(axes, np.array([[0.0, 0, 1]]), [0, 1.0, 0], np.array([[1.0, 0, 0]]))
    end_on = ellipsoid_rcs(axes, np.array([[1.0, 0, 0]]), [0, 1.0, 0], np.array([[1.0, 0, 0]]))
    np.testing.assert_allclose([broad[0], end_on[0]], [np.pi * 0.04, np.pi * 0.05**4 / 0.04])


def test_write_dataset_writes_both_maps_per_frame(tmp_path):
    assert write_dataset(tmp_path, subjects=2, sequences=1, frames=2, progress=False) == 4
    for sub in ("amplitude", "phase"):
        names = sorted(p.name for p in (tmp_path / sub).iterdir())
        assert names == sorted(frame_filename(s, 0, f) for s in range(2) for f in range(2))
    amp, phase = simulate_sequence(1, 0, 2)
    saved = np.load(tmp_path / "amplitude" / frame_filename(1, 0, 1))
    assert saved.dtype == np.float32 and saved.shape == (224, 64)
    np.testing.assert_array_equal(saved, amp[1])
    np.testing.assert_array_equal(np.load(tmp_path / "phase" / frame_filename(1, 0, 1)), phase[1])
    in_memory = simulate_dataset(2, 1, 2, progress=False)
    assert list(in_memory.subject) == ["subj00", "subj00", "subj01", "subj01"]
    assert list(in_memory.sequence) == ["seq00"] * 4
    assert in_memory.frame.tolist() == [0, 1, 0, 1] and in_memory.frame.dtype == np.int64
    np.testing.assert_array_equal(in_memory.amplitude[3], saved)
    np.testing.assert_array_equal(in_memory.phase[3], phase[1])


def test_seed_and_scenario_reach_every_written_frame(tmp_path):
    """Also: the output folder may not exist yet, and writing again into it overwrites."""
    out = tmp_path / "new" / "set"
    for kwargs in ({"seed": 5}, {"scenario": "lab77"}):
        assert write_dataset(out, subjects=1, sequences=1, frames=1, progress=False, **kwargs) == 1
        expected = simulate_sequence(0, 0, 1, **kwargs)[0][0]
        np.testing.assert_array_equal(
            np.load(out / "amplitude" / frame_filename(0, 0, 0)), expected
        )
        in_memory = simulate_dataset(1, 1, 1, progress=False, **kwargs)
        np.testing.assert_array_equal(in_memory.amplitude[0], expected)
    assert expected.shape == (256, 64)  # the lab77 radar's 256 chirps
    assert not np.array_equal(simulate_sequence(0, 0, 1, seed=5)[0], simulate_sequence(0, 0, 1)[0])
