"""Distortion that radar users care about, in physical units (pure numpy, vectorised).

Every function takes batches of maps ``(N, H, W)`` (``H`` Doppler rows, ``W`` range bins), the
original first and the reconstruction second, after de-normalisation: amplitude in dB
(``20 log10 |rd|``), phase in radians.

- **Amplitude error** (:func:`amplitude_error_db`): mean absolute error in dB over the whole map
  and over the *target region*, the cells of the original within ``target_db`` (40 dB) of its
  frame's peak (:func:`target_region`).
- **CA-CFAR** (:func:`ca_cfar`): 2-D cell-averaging CFAR on linear power ``10^(dB / 10)``. Each
  cell's noise level is the mean power of the *training* cells: a ``(2(g+t)+1)`` window around it
  minus the ``(2g+1)`` guard window (defaults ``guard=(4, 2)``, ``train=(8, 4)`` cells per side in
  (Doppler, range): the walker's micro-Doppler spreads over rows, so the window is taller than
  wide; 280 training cells). The cell is a detection if its power exceeds ``alpha`` times that
  level, with ``alpha = n (pfa^(-1/n) - 1)`` for ``n`` training cells (Richards, *Fundamentals of
  Radar Signal Processing*, ch. 7: exact for a square-law detector in exponential, i.e. complex
  Gaussian, noise); ``pfa = 1e-6`` gives ``alpha`` = 11.5 dB and 0.01 false alarms per 224 x 64
  frame of pure noise. The Doppler axis wraps around (the Doppler FFT is circular). The range
  axis does not: near its edges the window is cut off, the training cells past the edge are left
  out and ``alpha`` is solved for the ``n`` cells that remain, so the false-alarm rate stays
  ``pfa`` there too (Richards, ch. 7). Mirroring the range axis instead (edge cell repeated)
  would put the cell under test among its own training cells at the ``c``-th bin from either
  edge whenever ``g < 2c + 1 <= g + t`` (range guard ``g``, training ``t``): bins 1, 2, 61 and
  62 for the defaults, the edge bins for a range guard of 0. Such a cell raises its own
  threshold and is never detected once ``alpha >= n``; guard cells would leak into the training
  cells near the edges as well.
- **Detection scores** (:func:`detection_scores`): the reconstruction's detections against the
  original's. A detection counts as matched if a detection of the other map lies within
  ``tolerance`` cells (Chebyshev distance; default 1, i.e. the 3 x 3 neighbourhood, since a
  target straddling two cells may be detected in either; ``tolerance=0`` is exact cell match).
  As in CA-CFAR the Doppler distance wraps around (row 0 neighbours row H - 1); range does not.
  precision = matched reconstruction detections / reconstruction detections, recall = matched
  original detections / original detections, F1 their harmonic mean, all pooled over the batch.
  A map with no detections has nothing wrong in it: precision (or recall) is then 1.
- **Peak location error** (:func:`peak_location_error`): mean absolute offset in Doppler rows
  (circular) and range bins between the strongest cell of the original and of the
  reconstruction. With ``exclude_rows`` (e.g. the zero-Doppler band) those rows are left out
  first, so the peak is the strongest *moving* target rather than static clutter or leakage.
- **Phase error** (:func:`phase_error`): the circular difference ``angle(e^{i(phi_hat - phi)})``
  in (-pi, pi]; its mean absolute value over the whole map, weighted by the original's linear
  amplitude ``10^(dB / 20)``, and over the target region only. Phase is noise wherever there is
  no target (notebook 00 shows it), so the last two are the ones that matter.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

# Edges of (N, H, W) windows: batch (unused, windows are 1 frame deep), Doppler (circular),
# range (cells past the edge are zeros, and left out of every count).
CFAR_MODES = ("nearest", "wrap", "constant")


def _batch(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"expected {name} of shape (N, H, W) or (H, W), got {x.shape}")
    return x


def _pair(orig, recon, name: str = "maps") -> tuple[np.ndarray, np.ndarray]:
    orig, recon = _batch(orig, f"original {name}"), _batch(recon, f"reconstructed {name}")
    if orig.shape != recon.shape:
        raise ValueError(
            f"original and reconstruction differ in shape: {orig.shape}, {recon.shape}"
        )
    return orig, recon


def target_region(amp_db: np.ndarray, target_db: float = 40.0) -> np.ndarray:
    """Cells within ``target_db`` of their frame's peak: (N, H, W) dB -> (N, H, W) bool."""
    amp_db = _batch(amp_db, "amplitude")
    return amp_db >= amp_db.max(axis=(1, 2), keepdims=True) - target_db


def amplitude_error_db(orig_db, recon_db, target_db: float = 40.0) -> dict[str, float]:
    """Mean absolute amplitude error in dB: ``amp_mae_db`` (whole map) and ``amp_mae_db_target``
    (target region of the original). orig_db, recon_db: (N, H, W) dB."""
    orig, recon = _pair(orig_db, recon_db, "amplitude")
    err = np.abs(recon - orig)  # (N, H, W)
    return {
        "amp_mae_db": float(err.mean()),
        "amp_mae_db_target": float(err[target_region(orig, target_db)].mean()),
    }


def cfar_alpha(pfa: float, n_train: int) -> float:
    """CA-CFAR threshold factor on linear power: ``n (pfa^(-1/n) - 1)``; ``n_train`` an int or
    an array of per-cell counts (then one factor per cell)."""
    if not 0 < pfa < 1 or np.min(n_train) < 1:
        raise ValueError(f"need 0 < pfa < 1 and n_train >= 1, got {pfa}, {np.min(n_train)}")
    return n_train * (pfa ** (-1.0 / n_train) - 1.0)


def ca_cfar(
    amp_db,
    guard: tuple[int, int] = (4, 2),
    train: tuple[int, int] = (8, 4),
    pfa: float = 1e-6,
    dtype=np.float64,
) -> np.ndarray:
    """2-D cell-averaging CFAR detections of amplitude maps.

    Args:
        amp_db: (N, H, W) or (H, W) amplitude in dB (``20 log10 |rd|``).
        guard: guard cells on each side of the cell under test, (Doppler, range).
        train: training cells beyond the guard cells, on each side, (Doppler, range).
        pfa: design probability of false alarm per cell.
        dtype: of the arithmetic: float64 for the metrics; the sender's detections
            (:mod:`mmslim.codec.detections`) use float32, twice as fast.

    Returns (N, H, W) bool, True where a target is detected.
    """
    dtype = np.dtype(dtype)
    power = np.power(dtype.type(10.0), _batch(amp_db, "amplitude").astype(dtype) / dtype.type(10))
    scale = _cfar_scale(power.shape[1:], tuple(guard), tuple(train), pfa).astype(dtype)
    noise_sum = np.maximum(_training_sums(power, guard, train), 0.0)  # (N, H, W)
    return power > scale * noise_sum


def cfar_threshold_db(
    amp_db, guard: tuple[int, int] = (4, 2), train: tuple[int, int] = (8, 4), pfa: float = 1e-6
) -> np.ndarray:
    """(N, H, W) float64: the level in dB each cell must exceed for :func:`ca_cfar` (same
    arguments) to detect it: the threshold factor times its training cells' power."""
    return cfar_with_threshold(amp_db, guard, train, pfa)[1]


def cfar_with_threshold(
    amp_db, guard: tuple[int, int] = (4, 2), train: tuple[int, int] = (8, 4), pfa: float = 1e-6
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ca_cfar` (float64) and :func:`cfar_threshold_db` of the same maps from one pass
    over the training windows: ((N, H, W) bool, (N, H, W) float64 dB), each equal to what its
    own function returns."""
    power = np.power(10.0, _batch(amp_db, "amplitude").astype(np.float64) / 10)
    scale = _cfar_scale(power.shape[1:], tuple(guard), tuple(train), pfa)
    sums = _training_sums(power, guard, train)  # (N, H, W)
    detected = power > scale * np.maximum(sums, 0.0)
    threshold = 10.0 * np.log10(scale * np.maximum(sums, np.finfo(np.float64).tiny))
    return detected, threshold


def _training_sums(x: np.ndarray, guard, train) -> np.ndarray:
    """Sums of ``x`` (N, H, W) over each cell's training window (the outer window less the
    guard window around the cell); ``uniform_filter`` gives window means, times the window size
    they are window sums."""
    (gd, gr), (td, tr) = guard, train
    inner = (1, 2 * gd + 1, 2 * gr + 1)  # guard window, cell under test included
    outer = (1, 2 * (gd + td) + 1, 2 * (gr + tr) + 1)
    outer_sum = ndimage.uniform_filter(x, outer, mode=CFAR_MODES, cval=0.0) * np.prod(outer)
    inner_sum = ndimage.uniform_filter(x, inner, mode=CFAR_MODES, cval=0.0) * np.prod(inner)
    return outer_sum - inner_sum


@functools.lru_cache(maxsize=16)
def _cfar_scale(shape: tuple[int, int], guard, train, pfa: float) -> np.ndarray:
    """(1, H, W) float64: the threshold factor over the number of training cells of each cell
    of an (H, W) map (fewer near the range edges), so that detection is ``power > scale *
    training sum``. Cached: it depends on the map's shape and the settings only."""
    n_train = np.rint(_training_sums(np.ones((1, *shape)), guard, train))  # (1, H, W)
    if n_train.min() < 1:
        raise ValueError(
            f"guard={tuple(guard)}, train={tuple(train)} leave a cell of a {shape} map "
            "without training cells: use more training cells"
        )
    scale = cfar_alpha(pfa, n_train) / n_train
    scale.setflags(write=False)
    return scale


def detection_scores(det_orig, det_recon, tolerance: int = 1) -> dict[str, float]:
    """Precision, recall and F1 of the reconstruction's detections against the original's.

    det_orig, det_recon: (N, H, W) bool (e.g. from :func:`ca_cfar`). Matches within
    ``tolerance`` cells (Chebyshev); counts pooled over the batch. Returns ``cfar_precision``,
    ``cfar_recall``, ``cfar_f1`` and the detection counts ``cfar_orig``, ``cfar_recon`` per frame.
    """
    orig = np.asarray(det_orig, dtype=bool)
    recon = np.asarray(det_recon, dtype=bool)
    if orig.shape != recon.shape or orig.ndim != 3:
        raise ValueError(f"expected two (N, H, W) detection maps, got {orig.shape}, {recon.shape}")
    near = (1, 2 * tolerance + 1, 2 * tolerance + 1)  # per frame; Doppler wraps, range does not
    near_orig = ndimage.maximum_filter(orig, near, mode=CFAR_MODES, cval=False)
    near_recon = ndimage.maximum_filter(recon, near, mode=CFAR_MODES, cval=False)
    n_orig, n_recon = int(orig.sum()), int(recon.sum())
    precision = (recon & near_orig).sum() / n_recon if n_recon else 1.0
    recall = (orig & near_recon).sum() / n_orig if n_orig else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "cfar_precision": float(precision),
        "cfar_recall": float(recall),
        "cfar_f1": float(f1),
        "cfar_orig": n_orig / len(orig),
        "cfar_recon": n_recon / len(orig),
    }


def peak_location_error(orig_db, recon_db, exclude_rows=None) -> dict[str, float]:
    """Mean absolute offset of the strongest cell, ``peak_err_doppler`` (rows, circular) and
    ``peak_err_range`` (bins). orig_db, recon_db: (N, H, W); ``exclude_rows``: rows to leave
    out of the search (e.g. the zero-Doppler band), any index array or slice, or None."""
    orig, recon = _pair(orig_db, recon_db, "amplitude")
    n, h, w = orig.shape
    if exclude_rows is not None:
        orig, recon = orig.copy(), recon.copy()
        orig[:, exclude_rows] = recon[:, exclude_rows] = -np.inf
    r0, c0 = np.unravel_index(orig.reshape(n, -1).argmax(axis=1), (h, w))  # (N,), (N,)
    r1, c1 = np.unravel_index(recon.reshape(n, -1).argmax(axis=1), (h, w))
    dr = np.abs(r1 - r0)
    return {
        "peak_err_doppler": float(np.minimum(dr, h - dr).mean()),  # Doppler wraps around
        "peak_err_range": float(np.abs(c1 - c0).mean()),
    }


def wrap_phase(x: np.ndarray) -> np.ndarray:
    """Angles wrapped to (-pi, pi]."""
    wrapped = np.remainder(np.asarray(x) + np.pi, 2 * np.pi) - np.pi  # [-pi, pi)
    return np.where(wrapped == -np.pi, np.pi, wrapped)


def phase_error(orig_rad, recon_rad, amp_db, target_db: float = 40.0) -> dict[str, float]:
    """Mean absolute circular phase error in radians: ``phase_err`` (whole map, unweighted),
    ``phase_err_weighted`` (weighted by the original's linear amplitude) and
    ``phase_err_target`` (target region only). orig_rad, recon_rad, amp_db: (N, H, W)."""
    orig, recon = _pair(orig_rad, recon_rad, "phase")
    amp = _batch(amp_db, "amplitude")
    if amp.shape != orig.shape:
        raise ValueError(f"amplitude {amp.shape} does not match phase {orig.shape}")
    err = np.abs(wrap_phase(recon - orig))  # (N, H, W) in [0, pi]
    weight = 10.0 ** ((amp - amp.max(axis=(1, 2), keepdims=True)) / 20.0)  # peak 1: no overflow
    return {
        "phase_err": float(err.mean()),
        "phase_err_weighted": float((weight * err).sum() / weight.sum()),
        "phase_err_target": float(err[target_region(amp, target_db)].mean()),
    }


def zero_doppler_rows(height: int, half_width: int = 2) -> np.ndarray:
    """Rows of the zero-Doppler band (static clutter, leakage) after fftshift: (2k+1,) int."""
    return np.arange(height // 2 - half_width, height // 2 + half_width + 1)


def amplitude_metrics(orig_db, recon_db, target_db: float = 40.0, **cfar) -> dict[str, float]:
    """All amplitude metrics at once: dB error, CFAR scores (``cfar`` goes to :func:`ca_cfar`),
    peak error of the strongest cell and of the strongest moving target (``*_moving``)."""
    orig, recon = _pair(orig_db, recon_db, "amplitude")
    moving = peak_location_error(orig, recon, zero_doppler_rows(orig.shape[1]))
    return {
        **amplitude_error_db(orig, recon, target_db),
        **detection_scores(ca_cfar(orig, **cfar), ca_cfar(recon, **cfar)),
        **peak_location_error(orig, recon),
        **{f"{k}_moving": v for k, v in moving.items()},
    }


__all__ = [
    "amplitude_error_db",
    "amplitude_metrics",
    "ca_cfar",
    "cfar_alpha",
    "cfar_threshold_db",
    "cfar_with_threshold",
    "detection_scores",
    "peak_location_error",
    "phase_error",
    "target_region",
    "wrap_phase",
    "zero_doppler_rows",
]
