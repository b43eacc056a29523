"""What the receiver draws for the noise floor of a decoded amplitude map.

A radar user keeps the floor's *level* (CFAR thresholds are a multiple of it) and nothing of its
texture, which is noise. A decoder that has a few bits for the floor cannot reproduce its
texture; whatever texture it draws is invented, and CA-CFAR reports the invented peaks as
targets. The receiver may therefore replace the decoded floor, with no bits spent:

- ``"none"``: the decoder's output as it is.
- ``"smooth"``: every cell outside the decoded map's own target region (cells within
  ``target_db`` of the frame's peak, grown by one cell) becomes the median of the decoded map
  over a ``size`` window around it: the floor's local level, without invented peaks.
- ``"noise"``: noise filling, as speech and audio codecs fill bands they did not code: the smooth
  floor plus texture drawn from a seeded generator with the statistics of thermal noise
  (Rayleigh amplitude, i.e. exponential power), scaled so that its *median* in dB is the
  smooth floor (a median filter of the decoded map) and its mean power 1.59 dB above it, as
  for real noise. The seed comes from the file's bytes, so a file always decodes to the same
  maps.

The target region is found on the decoded map, the only map the receiver has; the metrics
define it the same way on the original (:func:`mmslim.metrics.radar.target_region`).

References: Herre & Schulz, "Extending the MPEG-4 AAC Codec by Perceptual Noise Substitution",
AES 104th Convention, 1998; 3GPP TS 26.445 (EVS codec, noise filling). Thermal noise has Rayleigh
amplitude and exponential power: Richards, *Fundamentals of Radar Signal Processing*.
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy import ndimage

from mmslim.config import FLOOR_MODES
from mmslim.metrics.radar import target_region

MEDIAN_DB = -10.0 * np.log10(np.log(2.0))  # 1.59 dB: noise's mean power above its median


def seed_of(data: bytes) -> int:
    """A generator seed that depends on every byte of a file (SHA-256, first 8 bytes)."""
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "little")


def restore_floor(
    db: np.ndarray,
    mode: str = "smooth",
    seed: int = 0,
    target_db: float = 40.0,
    size: tuple[int, int] = (5, 5),
) -> np.ndarray:
    """The decoded amplitude maps with their floor redrawn (see the module's docstring).

    db: (N, H, W) decoded amplitude in dB. mode: one of :data:`mmslim.config.FLOOR_MODES`.
    seed: the noise generator's seed (``"noise"`` only; :func:`seed_of` the file). size: the
    median window in (Doppler, range) cells; Doppler wraps around (the FFT is circular) and range
    is mirrored, as in CA-CFAR. Returns a new (N, H, W) float32 array; targets are unchanged.
    """
    if mode not in FLOOR_MODES:
        raise ValueError(f"floor mode {mode!r}; choose one of {', '.join(FLOOR_MODES)}")
    db = np.asarray(db, dtype=np.float32)
    if db.ndim != 3:
        raise ValueError(f"expected (N, H, W) amplitude maps in dB, got shape {db.shape}")
    if mode == "none":
        return db.copy()
    keep = ndimage.binary_dilation(target_region(db, target_db), np.ones((1, 3, 3), dtype=bool))
    (hd, hr) = size[0] // 2, size[1] // 2
    padded = np.pad(db, ((0, 0), (hd, hd), (0, 0)), mode="wrap")  # Doppler is circular
    padded = np.pad(padded, ((0, 0), (0, 0), (hr, hr)), mode="reflect")  # range is mirrored
    floor = ndimage.median_filter(padded, size=(1, *size))[
        :, hd : hd + db.shape[1], hr : -hr or None
    ]
    if mode == "noise":
        power = np.random.default_rng(seed).exponential(1.0, db.shape)  # unit mean power
        floor = floor + (10.0 * np.log10(power) + MEDIAN_DB).astype(np.float32)  # median 0 dB
    return np.where(keep, db, floor).astype(np.float32)


__all__ = ["MEDIAN_DB", "restore_floor", "seed_of"]
