"""The TI 60 GHz FMCW radar and its range-Doppler processing chain.

An FMCW radar sends chirps whose frequency rises linearly (slope ``S``). Mixing the echo of a
target at range ``R`` with the transmitted chirp gives a *beat* tone at ``f_b = 2 S R / c``, so
an FFT over the ADC samples of one chirp (fast time) separates ranges: bin ``k`` holds range
``k * c / (2 B)`` with ``B`` the bandwidth swept while sampling. The beat tone also carries the
phase ``4 pi R / lambda``; across successive chirps (slow time) a target moving at radial velocity
``v`` advances that phase by ``4 pi v T_c / lambda`` per chirp, so a second FFT over the chirps
separates velocities. Both FFTs together give the complex range-Doppler map, ``(224, 64)``.

Which wavelength: ``lambda`` in the beat phase is the one at the chirp start, but the range FFT
references the phase to the middle of the sampled ramp, so the Doppler axis is scaled by the
wavelength at the centre frequency (61.21 GHz): +-6.1 m/s, 5.5 cm/s per row (+-6.2 m/s with the
start wavelength would misplace fast targets by 1-2 rows).

Sign convention: the beat signal is modelled as ``exp(+j 2 pi (f_b t + 2 R / lambda))`` and the
forward FFT is used, so a target whose range *increases* (receding) lands in a row above the
centre row 112 and :meth:`RadarConfig.velocity_axis` is positive for receding targets, negative
for approaching ones. ``velocity_axis()[row]`` is the radial velocity ``dR/dt`` of a target in
that Doppler row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

SPEED_OF_LIGHT = 299_792_458.0  # m/s


def hann(n: int) -> np.ndarray:
    """Periodic (DFT-even) Hann window, ``(n,)`` float64; it sums to exactly ``n / 2``."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


@dataclass(frozen=True)
class RadarConfig:
    """TI 60 GHz FMCW radar as used for the mmSlim captures."""

    f_start_hz: float = 60.25e9  # chirp start frequency
    slope_hz_per_s: float = 75e12  # chirp slope, 75 MHz/us
    sample_rate_hz: float = 5e6  # complex (I/Q) ADC sampling rate
    n_samples: int = 128  # ADC samples per chirp -> 25.6 us sampled, 1.92 GHz swept
    n_chirps: int = 224  # chirps per frame (Doppler FFT length)
    chirp_period_s: float = 200e-6  # time from one chirp start to the next
    frame_rate_hz: float = 10.0  # frames per second
    n_range_bins: int = 64  # range bins kept after the range FFT (0 to ~5 m)

    @property
    def centre_frequency(self) -> float:
        """Frequency in the middle of the sampled ramp (Hz), 61.21 GHz."""
        return self.f_start_hz + self.bandwidth / 2

    @property
    def wavelength(self) -> float:
        """Wavelength that sets the Doppler scale (m), about 4.90 mm.

        The beat phase at ADC sample ``n`` is ``4 pi R (f_start + S t_n) / c``; the (symmetric)
        range window references it to the middle sample, so chirp-to-chirp phase steps measure
        ``dR/dt`` in units of the wavelength at :attr:`centre_frequency`, not at ``f_start``.
        """
        return SPEED_OF_LIGHT / self.centre_frequency

    @property
    def bandwidth(self) -> float:
        """Bandwidth swept while the ADC samples (Hz), 1.92 GHz."""
        return self.slope_hz_per_s * self.n_samples / self.sample_rate_hz

    @property
    def range_resolution(self) -> float:
        """Range-bin spacing ``c / (2 B)`` (m), about 7.8 cm."""
        return SPEED_OF_LIGHT / (2.0 * self.bandwidth)

    @property
    def velocity_resolution(self) -> float:
        """Doppler-row spacing ``lambda / (2 N_chirps T_c)`` (m/s), about 5.5 cm/s."""
        return self.wavelength / (2.0 * self.n_chirps * self.chirp_period_s)

    @property
    def max_velocity(self) -> float:
        """Largest unambiguous radial speed ``lambda / (4 T_c)`` (m/s), about 6.1 m/s."""
        return self.wavelength / (4.0 * self.chirp_period_s)

    @property
    def frame_shape(self) -> tuple[int, int]:
        """Shape of one range-Doppler map: ``(n_chirps, n_range_bins)`` = ``(224, 64)``."""
        return (self.n_chirps, self.n_range_bins)

    def range_axis(self) -> np.ndarray:
        """Range of each kept range bin, ``(64,)`` float64 metres, starting at 0."""
        return np.arange(self.n_range_bins) * self.range_resolution

    def velocity_axis(self) -> np.ndarray:
        """Radial velocity ``dR/dt`` of each Doppler row, ``(224,)`` float64 m/s.

        Row ``n_chirps // 2`` (112) is zero velocity; rows above it are receding targets
        (positive), rows below approaching ones (negative), matching ``np.fft.fftshift``.
        """
        return (np.arange(self.n_chirps) - self.n_chirps // 2) * self.velocity_resolution

    def range_doppler(self, beat: np.ndarray) -> np.ndarray:
        """Complex range-Doppler map of one frame (or a batch) of beat samples.

        Hann window over samples, range FFT (128), keep bins 0-63, Hann window over chirps,
        Doppler FFT (224), fftshift over Doppler. Windows are not normalised, so a unit-amplitude
        tone centred in a bin peaks at ``(128 / 2) * (224 / 2)``.

        beat: ``(..., n_chirps, n_samples)`` = ``(..., 224, 128)`` complex.
        Returns ``(..., 224, 64)`` complex (complex64 for complex64 input, else complex128).
        """
        beat = np.asarray(beat)
        if beat.shape[-2:] != (self.n_chirps, self.n_samples):
            raise ValueError(
                f"beat must end in ({self.n_chirps}, {self.n_samples}), got {beat.shape}"
            )
        single = beat.dtype in (np.complex64, np.float32)
        real_dtype = np.float32 if single else np.float64
        w_range = hann(self.n_samples).astype(real_dtype)
        w_doppler = hann(self.n_chirps).astype(real_dtype)[:, None]  # (224, 1)
        profiles = scipy.fft.fft(beat * w_range, axis=-1)[
            ..., : self.n_range_bins
        ]  # (..., 224, 64)
        rd = scipy.fft.fft(profiles * w_doppler, axis=-2)  # (..., 224, 64)
        return np.fft.fftshift(rd, axes=-2)


def to_amplitude_db(rd: np.ndarray, floor: float = 1e-12) -> np.ndarray:
    """Amplitude in dB, ``20 log10 max(|rd|, floor)``: same shape, real, always finite."""
    return 20.0 * np.log10(np.maximum(np.abs(rd), floor))


def to_phase(rd: np.ndarray) -> np.ndarray:
    """Phase in radians in ``(-pi, pi]`` (``pi`` as rounded in the output dtype): same shape.

    ``np.angle`` returns ``-pi`` for a negative real part with a ``-0.0`` imaginary part; those
    values are mapped to ``+pi`` so the interval is half-open as documented.
    """
    phase = np.angle(rd)
    pi = phase.dtype.type(np.pi)
    return np.where(phase <= -pi, pi, phase)
