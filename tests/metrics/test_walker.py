"""The walker estimates: a point target found at its range and velocity, errors of zero against
the original itself and of a known size for a map shifted in Doppler, the detector's settings
reaching CA-CFAR, and the gait cadence of a known oscillation."""

from __future__ import annotations

import numpy as np
import pytest

from mmslim.data.radar import RadarConfig
from mmslim.data.simulator import simulate_point_target
from mmslim.metrics.walker import gait_cadence, walker_errors, walker_estimates

RADAR = RadarConfig()
VELOCITIES = (-1.0, 0.8)  # m/s, one point target per frame, at 2.5 m


@pytest.fixture(scope="module")
def maps():
    rd = [simulate_point_target(2.5, v, RADAR, seed=i) for i, v in enumerate(VELOCITIES)]
    return np.stack([20 * np.log10(np.abs(m) + 1e-12) for m in rd]).astype(np.float32)


def _bins():
    ranges, velocities = RADAR.range_axis(), RADAR.velocity_axis()
    return ranges[1] - ranges[0], abs(velocities[1] - velocities[0])


def test_a_point_target_is_found_at_its_range_and_velocity(maps):
    est = walker_estimates(maps, RADAR)
    range_bin, velocity_bin = _bins()
    assert np.all(np.abs(est["range_m"] - 2.5) <= range_bin)
    assert np.all(np.abs(est["velocity_mps"] - np.array(VELOCITIES)) <= velocity_bin)
    assert np.all(est["extent_mps"] < 0.5)  # one point: no limbs, a spread of a few bins


def test_errors_are_zero_for_the_original_and_the_shift_for_a_shifted_map(maps):
    same = walker_errors(maps, maps, RADAR)
    assert all(v == 0 for v in same.values())
    shifted = walker_errors(maps, np.roll(maps, 3, axis=1), RADAR)  # 3 Doppler rows
    assert shifted["walker_velocity_err_mps"] == pytest.approx(3 * _bins()[1])
    assert shifted["walker_range_err_m"] == 0 and shifted["walker_missed"] == 0


def test_the_detector_settings_reach_ca_cfar(maps):
    default = walker_estimates(maps, RADAR)["extent_mps"]
    sensitive = walker_estimates(maps, RADAR, pfa=1e-2)["extent_mps"]  # floor peaks detected
    assert np.all(sensitive > default + 1.0)
    assert walker_errors(maps, maps, RADAR, pfa=1e-2)["walker_extent_err_mps"] == 0


def test_gait_cadence_finds_the_oscillation_of_the_extent():
    t = np.arange(40) / 10.0  # 4 s at 10 frames/s
    extent = 0.5 + 0.2 * np.sin(2 * np.pi * 1.7 * t)  # m/s, a 1.7 Hz oscillation
    assert gait_cadence(extent, 10.0) == pytest.approx(1.7, abs=0.05)
    assert np.isnan(gait_cadence(np.ones(10), 10.0))  # fewer than 16 frames
