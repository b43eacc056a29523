"""What may be coded: check_maps names the real problem of a bad map, and compress_maps uses it."""

from __future__ import annotations

import numpy as np
import pytest

from mmslim.codec import check_maps, compress_maps
from mmslim.codec.inputs import VALUE_RANGES
from mmslim.data.dataset import DataError
from mmslim.training.checkpoint import load_model
from tests.codec.golden_files import GOLDEN

RNG = np.random.default_rng(0)
GOOD_DB = RNG.normal(40.0, 10.0, size=(2, 64, 64)).astype(np.float32)  # (N, H, W) dB
GOOD_RAD = RNG.uniform(-np.pi, np.pi, size=(2, 64, 64)).astype(np.float32)


def with_cell(maps: np.ndarray, value) -> np.ndarray:
    out = maps.astype(np.result_type(maps, np.asarray(value)))
    out[1, 3, 5] = value
    return out


@pytest.mark.parametrize(
    ("maps", "kind", "message"),
    [
        (GOOD_DB.astype(np.complex64), "amplitude", "complex values.*np.angle"),
        (GOOD_DB.astype(np.int16), "amplitude", "int16 values.*astype"),
        (GOOD_DB > 40, "amplitude", "bool values"),
        (np.zeros((0, 64, 64), np.float32), "amplitude", "no frames"),
        (GOOD_DB[0], "amplitude", r"expected \(N, H, W\)"),
        (np.full((2, 64, 64), 3.0, np.float32), "amplitude", "frame 0 is constant"),
        (with_cell(GOOD_DB, np.nan), "amplitude", "frame 1 holds NaN or inf"),
        (with_cell(GOOD_DB, 1e38), "amplitude", "frame 1 holds values.*outside the plausible"),
        (with_cell(GOOD_DB, -1e38), "amplitude", "outside the plausible range of amplitude"),
        (GOOD_RAD + np.pi, "phase", r"outside the plausible range of phase.*np\.angle"),
        (np.array([["a"]]), "amplitude", "dtype <U1"),
    ],
)
def test_bad_maps_are_named(maps, kind, message):
    with pytest.raises(DataError, match=message):
        check_maps(maps, kind)


def test_good_maps_pass_as_float32():
    for maps, kind in ((GOOD_DB, "amplitude"), (GOOD_RAD.astype(np.float64), "phase")):
        checked = check_maps(maps, kind)
        assert checked.dtype == np.float32 and checked.shape == maps.shape
    low, high = VALUE_RANGES["phase"]
    assert low < -np.pi and np.float32(np.pi) < high  # float32 pi is a little above pi


def test_compress_maps_refuses_before_the_model_runs():
    model = load_model(GOLDEN / "model.pt")[0]
    with pytest.raises(DataError, match="constant"):
        compress_maps(model, np.full((1, 64, 64), 7.0), "amplitude", "fixed")
    with pytest.raises(DataError, match="40 x 64.*crop or pad"):
        compress_maps(model, GOOD_DB[:, :40], "amplitude", "fixed")
    with pytest.raises(DataError, match="do not match"):
        compress_maps(model, GOOD_RAD, "phase", "fixed", mask_source=GOOD_DB[:1])
