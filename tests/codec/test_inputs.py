"""What may be coded: check_maps names the real problem of a bad map, and compress_maps uses it."""

from __future__ import annotations

import re

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


def test_plausible_ranges_are_closed_and_exact():
    for value in (-1000.0, 1000.0):
        check_maps(with_cell(GOOD_DB, value), "amplitude")  # the bounds themselves pass
    for value in (-1000.5, 1000.5):
        with pytest.raises(DataError, match="outside the plausible range"):
            check_maps(with_cell(GOOD_DB, value), "amplitude")
    for value in (-np.pi - 5e-5, np.pi + 5e-5):
        check_maps(with_cell(GOOD_RAD, np.float32(value)), "phase")
    for value in (-np.pi - 2e-4, np.pi + 2e-4):
        with pytest.raises(DataError, match="outside the plausible range of phase"):
            check_maps(with_cell(GOOD_RAD, np.float32(value)), "phase")


def test_refusals_word_for_word():
    cases = [
        (
            GOOD_DB.astype(np.uint8),
            "phase",
            "maps hold uint8 values, not floats; if they are "
            "phase in rad, convert them with maps.astype(np.float32)",
        ),
        (
            np.array([["a"]]),
            "amplitude",
            "maps have dtype <U1; expected float amplitude maps in dB",
        ),
        (
            GOOD_DB[0],
            "amplitude",
            "maps have shape (64, 64); expected (N, H, W): N frames of H x W",
        ),
        (
            np.zeros((2, 0, 64), np.float32),
            "amplitude",
            "maps hold no frames (shape (2, 0, 64)); there is nothing to code",
        ),
        (
            with_cell(GOOD_DB, np.inf),
            "amplitude",
            "maps: frame 1 holds NaN or inf; replace those "
            "cells (e.g. clip a log of zero to the noise floor) or drop the frame",
        ),
        (
            np.stack([GOOD_DB[0], np.full((64, 64), 2.5, np.float32)]),
            "amplitude",
            "maps: frame 1 "
            "is constant (every value 2.5 dB), so it cannot be normalised to [0, 1]; drop it, it "
            "carries no information beyond that value",
        ),
        (
            np.stack([GOOD_DB[0], np.linspace(0, 1100, 4096, dtype=np.float32).reshape(64, 64)]),
            "amplitude",
            "maps: frame 1 holds values in [0, 1100], outside the plausible range of "
            "amplitude in dB [-1000, 1000]; convert linear values to dB (10*np.log10 of power) and "
            "replace sentinel values",
        ),
        (
            np.stack([GOOD_RAD[0], np.eye(64, dtype=np.float32) + 4.0]),
            "phase",
            "maps: frame 1 holds values in [4, 5], outside the plausible range of phase in rad "
            "[-3.14169, 3.14169]; wrap radians into (-pi, pi] with np.angle(np.exp(1j * x)); "
            "convert degrees first",
        ),
    ]
    for maps, kind, message in cases:
        with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
            check_maps(maps, kind)
    with pytest.raises(
        ValueError, match=r"^kind must be one of \('amplitude', 'phase'\), got 'x'$"
    ):
        check_maps(GOOD_DB, "x")
    message = (
        "grid hold complex values (complex64); mmslim codes amplitude and phase as two real maps: "
        "pass 20*np.log10(np.abs(x)) as amplitude (dB) and np.angle(x) as phase"
    )
    with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
        check_maps(GOOD_DB.astype(np.complex64), "amplitude", name="grid")


def test_a_single_cell_frame_is_constant_not_empty():
    with pytest.raises(DataError, match="^maps: frame 0 is constant"):
        check_maps(np.ones((1, 1, 1), np.float32), "amplitude")


def test_float32_maps_are_not_copied():
    assert check_maps(GOOD_DB, "amplitude") is GOOD_DB
