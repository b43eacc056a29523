"""The receiver's floor (mmslim.codec.floor): targets kept, invented peaks gone, noise filling
with the statistics of thermal noise and the same maps for the same file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmslim.codec.floor import MEDIAN_DB, restore_floor, seed_of
from mmslim.codec.maps import compress_maps, decompress_maps
from mmslim.metrics.radar import ca_cfar, target_region
from mmslim.nn import MMSlim


def _scene(n: int = 2, floor_db: float = 20.0) -> np.ndarray:
    """(n, 64, 32) dB: a flat floor, a 3x3 target 60 dB above it, and a 14 dB spike (a peak a
    decoder invented) far from the target."""
    db = np.full((n, 64, 32), floor_db, dtype=np.float32)
    db[:, 30:33, 10:13] = floor_db + 60.0
    db[:, 5, 25] = floor_db + 14.0
    return db


def test_smooth_keeps_targets_and_removes_invented_peaks():
    db = _scene()
    out = restore_floor(db, "smooth")
    keep = target_region(db)
    np.testing.assert_array_equal(out[keep], db[keep])  # the target untouched
    assert out[0, 5, 25] == pytest.approx(20.0)  # the spike is now the floor's median
    assert ca_cfar(db)[:, 5, 25].all()  # CFAR reported the invented peak ...
    assert not ca_cfar(out)[:, 5, 25].any()  # ... and no longer does
    assert ca_cfar(out)[:, 31, 11].all()  # the target is still detected


def test_smooth_median_wraps_doppler_and_mirrors_range():
    db = np.zeros((1, 16, 8), dtype=np.float32)
    db[0, 0, :] = 10.0  # the first Doppler row and the last are neighbours (the FFT is circular)
    db[0, -1, :] = 10.0
    db[0, 1, :] = 10.0
    db[0, 8, 4] = 11.0  # the peak; with target_db 0.5 every other cell is floor
    out = restore_floor(db, "smooth", target_db=0.5, size=(5, 1))
    # Row 0's window is rows -2..2 = {14, 15, 0, 1, 2}: three of five are 10 dB, so the median
    # is 10; without the wrap (rows 0..2 mirrored) it would differ at row 15.
    assert out[0, 0, 0] == 10.0 and out[0, 15, 0] == 10.0
    assert out[0, 8, 0] == 0.0


def test_noise_filling_has_the_statistics_of_thermal_noise():
    db = np.full((64, 224, 64), 30.0, dtype=np.float32)
    db[:, 0, 0] = 31.0  # each frame's peak: with target_db 0.5 every other cell is floor
    out = restore_floor(db, "noise", seed=3, target_db=0.5)
    assert np.median(out) == pytest.approx(30.0, abs=0.05)  # median at the smooth floor
    mean_power_db = 10 * np.log10(np.mean(10 ** (out / 10)))
    assert mean_power_db == pytest.approx(30.0 + MEDIAN_DB, abs=0.05)
    assert out.std() == pytest.approx(5.57, abs=0.05)  # std of 10 log10(exponential)


def test_noise_filling_depends_on_the_seed_only():
    db = _scene()
    a = restore_floor(db, "noise", seed=1)
    np.testing.assert_array_equal(a, restore_floor(db, "noise", seed=1))
    assert not np.array_equal(a, restore_floor(db, "noise", seed=2))
    assert seed_of(b"file") == seed_of(b"file") != seed_of(b"filf")


def test_bad_mode_and_shape_are_refused():
    with pytest.raises(ValueError, match="floor mode 'speckle'"):
        restore_floor(_scene(), "speckle")
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        restore_floor(_scene()[0], "smooth")


def test_decompress_maps_applies_the_floor(tiny_config, few_frames):
    torch.manual_seed(0)
    model = MMSlim(tiny_config).eval()
    maps = few_frames(1, 2).amplitude  # (4, 224, 64) dB
    data = compress_maps(model, maps, "amplitude", "huffman")
    raw = decompress_maps(model, data, kind="amplitude")[0]  # the default: as decoded
    np.testing.assert_array_equal(raw, decompress_maps(model, data, floor="none")[0])
    smooth = decompress_maps(model, data, kind="amplitude", floor="smooth")[0]
    np.testing.assert_array_equal(smooth, restore_floor(raw, "smooth"))
    noisy = decompress_maps(model, data, kind="amplitude", floor="noise")[0]
    np.testing.assert_array_equal(noisy, decompress_maps(model, data, floor="noise")[0])
    lo, hi = maps.min(axis=(1, 2)), maps.max(axis=(1, 2))
    assert (noisy.min(axis=(1, 2)) >= lo - 1e-3).all() and (
        noisy.max(axis=(1, 2)) <= hi + 1e-3
    ).all()
