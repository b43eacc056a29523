"""Rows that are not codecs, measured by ``mmslim bench rd`` beside the codecs on the same frames:
what a map returns from the original alone, so a codec's figures can be read against them.

- :func:`texture_free`: the original's target cells and its floor's local mean, the best a
  decoder that draws no floor texture could return (its PSNR over a constant map is about the
  most such a codec reaches);
- :func:`with_noise`: the original plus 1 dB of white noise, how far each metric moves for an
  error that small (the metrics' own noise floor).
"""

from __future__ import annotations

import numpy as np

from mmslim.bench.rd import distortion, find_checkpoints, scenario_sets, sequence_labels
from mmslim.metrics.radar import target_region


def texture_free(orig: np.ndarray, target_db: float = 40.0, size: int = 9) -> np.ndarray:
    """Not a codec: the best a decoder that draws no floor texture could return. The original
    (N, H, W) dB on its target region (cells within ``target_db`` of each frame's peak) and,
    elsewhere, the floor's local mean in dB (a ``size`` x ``size`` box, Doppler wrapping round,
    range mirrored). Its PSNR over a constant map is about the most a texture-free codec reaches."""
    from scipy import ndimage

    orig = np.asarray(orig, np.float32)
    # per axis: frames apart; Doppler wraps round (the FFT is circular); range mirrored
    local = ndimage.uniform_filter(orig, size=(1, size, size), mode=("nearest", "wrap", "mirror"))
    return np.where(target_region(orig, target_db), orig, local).astype(np.float32)


def with_noise(orig: np.ndarray, std_db: float = 1.0, seed: int = 0) -> np.ndarray:
    """Not a codec: the original (N, H, W) dB plus white Gaussian noise of ``std_db`` dB (seeded).
    How far the radar metrics move for an error that small is their own noise floor: on the
    lab77 scenario (two walkers) the walker estimates move several times more than on the
    held-out walkers (the README gives the figures)."""
    rng = np.random.default_rng(seed)
    orig = np.asarray(orig, np.float32)
    return (orig + rng.normal(0.0, std_db, orig.shape)).astype(np.float32)


# Rows that are not codecs, measured beside them: name -> the map they return from the original.
REFERENCES = {"texture-free reference": texture_free, "1 dB noise reference": with_noise}


def reference_rows(data=None, checkpoint=None, frames=None, scenarios=("held-out",)) -> list[dict]:
    """The amplitude distortions of each of :data:`REFERENCES` on the frames :func:`run_rd`
    measures (same arguments): one row per reference and scenario (no rate: nothing is coded)."""
    split_from = next(iter(find_checkpoints(checkpoint).values())) if checkpoint else None
    rows = []
    for scenario, (val, radar) in scenario_sets(data, split_from, frames, scenarios).items():
        amp = val.amplitude
        for name, reference in REFERENCES.items():
            scores = distortion("amplitude", amp, reference(amp), amp, radar, sequence_labels(val))
            rows.append({"scenario": scenario, "kind": "amplitude", "codec": name, **scores})
    return rows


__all__ = ["REFERENCES", "reference_rows", "texture_free", "with_noise"]
