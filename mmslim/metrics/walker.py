"""What a radar user derives from a range-Doppler map of a walker, and how far a codec moves it.

From each amplitude map (dB), the *moving* CA-CFAR detections (:func:`mmslim.metrics.radar.
ca_cfar`, outside the zero-Doppler band and the leakage bins) give:

- **range** (m): the power-weighted mean range of the moving detections;
- **radial velocity** (m/s): their power-weighted median velocity (the torso carries most power,
  so this is the walker's bulk speed towards or away from the radar);
- **micro-Doppler extent** (m/s): the spread of limb velocities, the 90th minus the 10th
  percentile of the detections' velocities (arms and legs swing faster and slower than the
  torso: a codec that smooths them away shrinks this);

and, over a sequence of consecutive frames, the **gait cadence** (Hz): the strongest frequency
of the micro-Doppler extent's oscillation between 0.5 and 3 Hz (limbs spread most at mid-swing,
twice per gait cycle).

:func:`walker_errors` compares the estimates from decoded maps with those from the originals;
a frame where one map has moving detections and the other none counts as a *miss*. Reference for
micro-Doppler of walkers: V. C. Chen, *The Micro-Doppler Effect in Radar*, Artech House 2011, ch. 6.
"""

from __future__ import annotations

import numpy as np

from mmslim.data.radar import RadarConfig
from mmslim.metrics.radar import _batch, ca_cfar, zero_doppler_rows

LEAKAGE_BINS = 2  # range bins 0-1 hold the transmitter-receiver leakage


def walker_estimates(amp_db, radar: RadarConfig | None = None, **cfar) -> dict[str, np.ndarray]:
    """Per-frame ``range_m``, ``velocity_mps``, ``extent_mps`` (each (N,), NaN where the frame has
    no moving detection). amp_db: (N, H, W) dB; ``radar`` gives the axes (its ``n_chirps`` must
    equal H); ``cfar`` goes to :func:`ca_cfar`."""
    amp = _batch(amp_db, "amplitude")
    n, h, w = amp.shape
    radar = radar or RadarConfig()
    if radar.frame_shape[0] != h:
        raise ValueError(f"radar has {radar.n_chirps} Doppler rows, the maps {h}")
    det = ca_cfar(amp, **cfar)  # (N, H, W)
    det[:, zero_doppler_rows(h)] = False  # static clutter and leakage
    det[:, :, :LEAKAGE_BINS] = False
    ranges, velocities = radar.range_axis()[:w], radar.velocity_axis()  # (W,), (H,)
    out = {k: np.full(n, np.nan) for k in ("range_m", "velocity_mps", "extent_mps")}
    for i in range(n):
        rows, cols = np.nonzero(det[i])
        if rows.size == 0:
            continue
        power = 10.0 ** ((amp[i, rows, cols] - amp[i, rows, cols].max()) / 10.0)  # (M,)
        v = velocities[rows]
        out["range_m"][i] = float((power * ranges[cols]).sum() / power.sum())
        order = np.argsort(v)
        cdf = np.cumsum(power[order]) / power.sum()
        out["velocity_mps"][i] = float(v[order][np.searchsorted(cdf, 0.5)])
        out["extent_mps"][i] = float(np.percentile(v, 90) - np.percentile(v, 10))
    return out


def gait_cadence(extent_mps: np.ndarray, frame_rate_hz: float) -> float:
    """Strongest oscillation frequency (Hz) in 0.5-3 Hz of a sequence's micro-Doppler extent
    (T,) (NaN frames filled with the mean); NaN for fewer than 16 frames."""
    x = np.asarray(extent_mps, dtype=np.float64)
    if x.size < 16 or np.isnan(x).all():
        return float("nan")
    x = np.where(np.isnan(x), np.nanmean(x), x)
    n_fft = 8 * x.size  # zero-padding: a finer frequency grid, not more resolution
    spectrum = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(x.size), n_fft))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / frame_rate_hz)
    band = (freqs >= 0.5) & (freqs <= 3.0)
    return float(freqs[band][spectrum[band].argmax()])


def walker_errors(
    orig_db, recon_db, radar: RadarConfig | None = None, sequences=None, **cfar
) -> dict[str, float]:
    """Mean |estimate from the reconstruction - estimate from the original| of each quantity,
    over frames where both have moving detections: ``walker_range_err_m``,
    ``walker_velocity_err_mps``, ``walker_extent_err_mps``; ``walker_missed``: share of frames
    where exactly one of the two has none. With ``sequences`` ((N,) labels of consecutive
    frames), also ``cadence_err_hz`` over sequences of at least 16 frames. ``cfar``: the
    detector's settings (:func:`ca_cfar`), the same for both maps."""
    radar = radar or RadarConfig()
    a, b = walker_estimates(orig_db, radar, **cfar), walker_estimates(recon_db, radar, **cfar)
    both = ~np.isnan(a["range_m"]) & ~np.isnan(b["range_m"])
    either = ~np.isnan(a["range_m"]) | ~np.isnan(b["range_m"])
    out = {}
    for key, name in (("range_m", "range_err_m"), ("velocity_mps", "velocity_err_mps"),
                      ("extent_mps", "extent_err_mps")):  # fmt: skip
        err = np.abs(a[key] - b[key])[both]
        out[f"walker_{name}"] = float(err.mean()) if err.size else float("nan")
    out["walker_missed"] = float((either & ~both).mean())
    if sequences is not None:
        errs = []
        for label in dict.fromkeys(np.asarray(sequences)):
            sel = np.asarray(sequences) == label
            fa = gait_cadence(a["extent_mps"][sel], radar.frame_rate_hz)
            fb = gait_cadence(b["extent_mps"][sel], radar.frame_rate_hz)
            if not (np.isnan(fa) or np.isnan(fb)):
                errs.append(abs(fa - fb))
        out["cadence_err_hz"] = float(np.mean(errs)) if errs else float("nan")
    return out


__all__ = ["LEAKAGE_BINS", "gait_cadence", "walker_errors", "walker_estimates"]
