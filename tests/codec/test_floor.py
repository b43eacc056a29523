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


def test_seed_and_noise_values_exactly():
    assert seed_of(b"file") == 1991699577349446715  # SHA-256's first 8 bytes, little-endian
    assert seed_of(b"") == int.from_bytes(bytes.fromhex("e3b0c44298fc1c14"), "little")
    assert MEDIAN_DB == pytest.approx(1.591745, abs=1e-6)
    db = np.full((1, 8, 8), 20.0, dtype=np.float32)
    db[0, 4, 4] = 21.0  # the peak; with target_db 0.5 only it is a target
    out = restore_floor(db, "noise", seed=7, target_db=0.5)
    power = np.random.default_rng(7).exponential(1.0, db.shape)
    noise = (10.0 * np.log10(power) + MEDIAN_DB).astype(np.float32)
    keep = np.zeros(db.shape, dtype=bool)
    keep[0, 3:6, 3:6] = True  # the peak grown by one cell, diagonals included
    expected = np.where(keep, db, np.float32(20.0) + noise)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float32
    default = restore_floor(db, "noise", target_db=0.5)
    np.testing.assert_array_equal(default, restore_floor(db, "noise", seed=0, target_db=0.5))


def _reference_smooth(db: np.ndarray, target_db: float, size: tuple[int, int]) -> np.ndarray:
    """restore_floor's "smooth", cell by cell: Doppler indices wrap, range indices mirror
    (-1 -> 1), each frame alone; targets of a frame grown by its 8 neighbours."""
    n, h, w = db.shape
    hd, hr = size[0] // 2, size[1] // 2
    out = db.copy()
    for k in range(n):
        target = db[k] >= db[k].max() - target_db
        for i in range(h):
            for j in range(w):
                rows = [(i + d) % h for d in range(-hd, hd + 1)]
                cols = [
                    abs(j + d) if j + d < w else 2 * (w - 1) - (j + d) for d in range(-hr, hr + 1)
                ]
                near = target[max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2].any()
                if not near:
                    out[k, i, j] = np.median(db[k][np.ix_(rows, cols)])
    return out


def test_smooth_equals_a_cell_by_cell_reference():
    rng = np.random.default_rng(4)
    db = rng.normal(20.0, 4.0, size=(2, 12, 10)).astype(np.float32)
    db[0, 6, 5] = 60.0  # frame 0's target; frame 1's strongest cell is elsewhere
    db[1, 1, 8] = 60.0
    for size in ((5, 5), (3, 5), (5, 3)):
        out = restore_floor(db, "smooth", target_db=30.0, size=size)
        np.testing.assert_array_equal(out, _reference_smooth(db, 30.0, size))


def test_none_is_a_float32_copy_and_errors_word_for_word():
    db = _scene().astype(np.float64)
    out = restore_floor(db, "none")
    assert out.dtype == np.float32 and not np.shares_memory(out, db)
    np.testing.assert_array_equal(out, db)
    db32 = _scene()
    assert restore_floor(db32, "none") is not db32
    with pytest.raises(ValueError, match="^floor mode 'x'; choose one of none, smooth, noise$"):
        restore_floor(db32, "x")
    with pytest.raises(
        ValueError, match=r"^expected \(N, H, W\) amplitude maps in dB, got shape \(64, 32\)$"
    ):
        restore_floor(db32[0], "none")


def test_default_floor_is_smooth_over_5x5_with_targets_40_db_down():
    db = np.full((1, 16, 16), 0.0, dtype=np.float32)
    db[0, 8, 8] = 50.0  # the peak
    db[0, 2, 2] = 10.5  # 39.5 dB down: a target, kept
    db[0, 2, 12] = 9.5  # 40.5 dB down: floor, so the median erases it
    db[0, 11:14, 2:5] = 5.0  # 9 of a 5x5 window: gone; a 3x3 window would keep it
    out = restore_floor(db)
    assert out[0, 2, 2] == 10.5 and out[0, 2, 12] == 0.0
    np.testing.assert_array_equal(out, restore_floor(db, "smooth", 0, 40.0, (5, 5)))
    assert out[0, 12, 3] == 0.0
    assert restore_floor(db, "smooth", size=(3, 3))[0, 12, 3] == 5.0
