"""Simulated range-Doppler frames of a person walking in front of the 60 GHz radar.

The scene: the radar sits at ``(0, 0, 1 m)`` looking along +x. One walker (1.5-1.9 m tall,
0.8-1.6 m/s, Boulic-Thalmann gait from :mod:`mmslim.data.walker`) walks a racetrack loop: a
straight towards, away from or oblique to the radar, a U-turn, back, another U-turn; the loop is
chosen so the pelvis stays between 1.4 and 4.2 m and within 40 degrees of boresight, so every
body part stays inside the kept 0-5 m. Two or three static point reflectors stand around, a
leakage spike (transmitter to receiver coupling) sits at range bin 0, and complex Gaussian
noise sets the map's dynamic range (leakage peak over median noise) to 62-78 dB.

Each scatterer at range ``R`` with RCS ``sigma`` adds ``sqrt(sigma) / R^2 * exp(j 2 pi (f_b t +
2 R / lambda))`` to the beat signal (amplitude 1 for 1 m^2 at 1 m), with ``f_b = 2 S R / c``.
Body positions are evaluated at every chirp, so the Doppler FFT sees the limbs' own velocities
(micro-Doppler); within one 25.6 us chirp the range is taken as constant. The beat signal then
goes through :meth:`RadarConfig.range_doppler`.

Randomness: the person (height, speed, loop anchor and heading, U-turn radius and side) comes
from ``(seed, subject)`` only, so a subject is the same walker in every sequence. The loop
length, where on the loop the recording starts, the gait phase, the reflectors and the noise
level come from ``(seed, subject, sequence)``, and each frame's noise from ``(seed, subject,
sequence, frame)``. The same arguments give bit-identical frames.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from mmslim.config import KINDS, SCENARIO_NAMES
from mmslim.data.layout import frame_filename
from mmslim.data.radar import SPEED_OF_LIGHT, RadarConfig, to_amplitude_db, to_phase
from mmslim.data.walker import Walker, ellipsoid_rcs

RADAR_POSITION = np.array([0.0, 0.0, 1.0])  # metres; boresight is +x
PELVIS_RANGE = (1.4, 4.2)  # ground distance of the pelvis from the radar (m)
MAX_AZIMUTH = np.deg2rad(40.0)  # pelvis stays within this angle of boresight
CHUNK_FRAMES = 8  # frames synthesised per vectorised batch (memory vs. speed)
_SUBJECT, _SEQUENCE, _NOISE, _POINT = 1, 2, 3, 4  # tags that keep random streams apart


@dataclass(frozen=True)
class Loop:
    """Racetrack path on the floor: straight, U-turn, straight back, U-turn."""

    start: tuple[float, float]  # (x, y) where the first straight begins (m)
    heading: float  # direction of the first straight, radians from +x
    length: float  # length of each straight (m)
    turn_radius: float  # radius of the U-turns (m)
    turn_left: bool  # which way the first U-turn goes

    @property
    def perimeter(self) -> float:
        return 2 * self.length + 2 * np.pi * self.turn_radius

    def at(self, distance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Floor position ``(T, 2)`` (m) and walking direction ``(T,)`` (rad) after walking
        ``distance`` ``(T,)`` metres from the start of the first straight."""
        d, r, s = self.length, self.turn_radius, 1.0 if self.turn_left else -1.0
        u = np.mod(distance, self.perimeter)  # (T,)
        th1 = (u - d) / r  # angle into the first U-turn
        th2 = (u - 2 * d - np.pi * r) / r  # angle into the second U-turn
        conds = [u < d, u < d + np.pi * r, u < 2 * d + np.pi * r]
        x = np.select(conds, [u, d + r * np.sin(th1), 2 * d + np.pi * r - u], -r * np.sin(th2))
        y = np.select(conds, [0 * u, s * r * (1 - np.cos(th1)), 2 * s * r + 0 * u])
        y = np.where(conds[2], y, s * r * (1 + np.cos(th2)))
        yaw = np.select(conds, [0 * u, s * th1, np.pi + 0 * u], np.pi + s * th2)
        c, sn = np.cos(self.heading), np.sin(self.heading)
        xy = np.stack([self.start[0] + c * x - sn * y, self.start[1] + sn * x + c * y], axis=-1)
        return xy, yaw + self.heading

    def inside(self) -> bool:
        """Whether the whole loop keeps the pelvis inside the allowed area."""
        xy, _ = self.at(np.linspace(0.0, self.perimeter, 256))
        rho, az = np.hypot(xy[:, 0], xy[:, 1]), np.arctan2(xy[:, 1], xy[:, 0])
        return bool(np.all((rho >= PELVIS_RANGE[0]) & (rho <= PELVIS_RANGE[1])) and
                    np.all(np.abs(az) <= MAX_AZIMUTH))  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    """What differs between recording set-ups: the radar and what the scene holds.

    ``"default"`` is the set-up of the original captures (:class:`RadarConfig`) and of the shipped
    sample. ``"lab77"`` is a second set-up for testing models on data they never saw: a 77 GHz
    radar with less bandwidth (9.8 cm bins, 0-6.2 m), 256 chirps at 160 us, two walkers, five to
    eight static reflectors, more noise (48-58 dB dynamic range).
    """

    radar: RadarConfig = RadarConfig()
    walkers: int = 1  # people walking at once
    reflectors: tuple[int, int] = (2, 3)  # static reflectors, drawn in [lo, hi]
    reflector_rcs_log10: tuple[float, float] = (float(np.log10(0.05)), 0.0)  # log10 RCS (m^2)
    dynamic_range_db: tuple[float, float] = (62.0, 78.0)  # leakage peak over median noise


SCENARIOS: dict[str, Scenario] = {
    "default": Scenario(),
    "lab77": Scenario(
        radar=RadarConfig(
            f_start_hz=77e9, slope_hz_per_s=60e12, n_chirps=256, chirp_period_s=160e-6
        ),
        walkers=2,
        reflectors=(5, 8),
        reflector_rcs_log10=(-1.0, 0.3),
        dynamic_range_db=(48.0, 58.0),
    ),
}
assert tuple(SCENARIOS) == SCENARIO_NAMES, "name each scenario in mmslim.config too"


@dataclass(frozen=True)
class Scene:
    """Everything that stays fixed during one recorded sequence."""

    walker: Walker  # the person and their gait
    loop: Loop  # where they walk
    start_distance: float  # position on the loop at t = 0 (m)
    reflectors: np.ndarray  # (K, 3) static reflector positions (m)
    reflector_rcs: np.ndarray  # (K,) their RCS (m^2)
    leakage_range: float  # apparent range of the TX-RX leakage (m), inside bin 0
    leakage_amplitude: float  # leakage amplitude, in units of a 1 m^2 target at 1 m
    leakage_phase: float  # its constant phase (rad)
    dynamic_range_db: float  # leakage peak over median noise in the map (dB)
    others: tuple[tuple[Walker, Loop, float], ...] = ()  # more walkers: (walker, loop, start)


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def make_scene(
    subject: int, sequence: int, seed: int = 0, scenario: Scenario | str = "default"
) -> Scene:
    """The scene of one sequence; the walker and loop anchor depend only on (seed, subject).
    A scenario with more walkers adds subjects ``subject + 1000 k`` walking at the same time."""
    scenario = SCENARIOS[scenario] if isinstance(scenario, str) else scenario
    walker, loop, rng = _person(subject, sequence, seed)
    others = []
    for k in range(1, scenario.walkers):
        w, lp, r_k = _person(subject + 1000 * k, sequence, seed)
        others.append((w, lp, r_k.uniform(0, lp.perimeter)))
    # The room draws from the first walker's sequence stream, in the order the sample was made.
    n_refl = int(rng.integers(scenario.reflectors[0], scenario.reflectors[1] + 1))
    r, a = rng.uniform(1.2, 4.8, n_refl), np.deg2rad(rng.uniform(-50, 50, n_refl))
    reflectors = np.stack([r * np.cos(a), r * np.sin(a), rng.uniform(0.2, 1.8, n_refl)], axis=-1)
    return Scene(
        walker=walker,
        loop=loop,
        start_distance=rng.uniform(0, loop.perimeter),
        reflectors=reflectors,
        reflector_rcs=10 ** rng.uniform(*scenario.reflector_rcs_log10, n_refl),
        leakage_range=rng.uniform(0.0, 0.02),
        leakage_amplitude=3.0,
        leakage_phase=rng.uniform(-np.pi, np.pi),
        dynamic_range_db=rng.uniform(*scenario.dynamic_range_db),
        others=tuple(others),
    )


def _person(subject: int, sequence: int, seed: int) -> tuple[Walker, Loop, np.random.Generator]:
    """One walker, their loop, and the sequence's random stream (to draw the rest from)."""
    rng = _rng(seed, _SUBJECT, subject)
    height, speed = rng.uniform(1.5, 1.9), rng.uniform(0.8, 1.6)
    turn_radius, left = rng.uniform(0.2, 0.35), bool(rng.random() < 0.5)
    for _ in range(1000):  # draw anchor and heading until a 1.5 m loop fits
        rho, az = rng.uniform(*PELVIS_RANGE), rng.uniform(-0.9, 0.9) * MAX_AZIMUTH
        mode = rng.integers(3)  # 0: away from the radar, 1: towards it, 2: oblique
        off = rng.uniform(-15, 15) if mode < 2 else rng.choice([-1, 1]) * rng.uniform(30, 70)
        turn_back = mode == 1 or (mode == 2 and rng.random() < 0.5)  # start walking inwards
        heading = az + np.deg2rad(off) + (np.pi if turn_back else 0.0)
        anchor = (rho * np.cos(az), rho * np.sin(az))
        if Loop(anchor, heading, 1.5, turn_radius, left).inside():
            break
    else:  # pragma: no cover - the area is large enough that this never happens
        raise RuntimeError(f"no walking loop fits for subject {subject}")

    rng = _rng(seed, _SEQUENCE, subject, sequence)
    longest = 1.5
    while longest < 3.0 and Loop(anchor, heading, longest + 0.1, turn_radius, left).inside():
        longest += 0.1
    loop = Loop(anchor, heading, rng.uniform(1.5, longest), turn_radius, left)
    walker = Walker(height=height, speed=speed, phase0=rng.random())
    return walker, loop, rng


def walker_scatterers(scene: Scene, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World positions ``(T, 16 P, 3)`` (m) and RCS ``(T, 16 P)`` (m^2) of the body segments
    (:data:`mmslim.data.walker.SEGMENTS`) of the scene's ``P`` walkers at times ``t`` ``(T,)``."""
    people = [(scene.walker, scene.loop, scene.start_distance), *scene.others]
    parts = [_body_scatterers(w, loop, start, t) for w, loop, start in people]
    return np.concatenate([p for p, _ in parts], axis=1), np.concatenate([r for _, r in parts], 1)


def _body_scatterers(walker: Walker, loop: Loop, start: float, t: np.ndarray):
    """One walker's segment positions ``(T, 16, 3)`` and RCS ``(T, 16)`` at times ``t``."""
    centres, axes = walker.pose(t)  # (T, 16, 3) each, body frame
    xy, yaw = loop.at(start + walker.speed * t)  # (T, 2), (T,)
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]  # (T, 1)

    def to_world(v: np.ndarray) -> np.ndarray:  # rotate body frame by the walking direction
        return np.stack(
            [c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1], v[..., 2]], -1
        )

    positions = to_world(centres) + np.concatenate([xy, np.zeros_like(yaw)[:, None]], -1)[:, None]
    look = RADAR_POSITION - positions
    look /= np.linalg.norm(look, axis=-1, keepdims=True)  # (T, 16, 3) unit, towards the radar
    lateral = np.stack([-s, c, 0 * c], axis=-1)  # (T, 1, 3): the body's left in world axes
    return positions, ellipsoid_rcs(walker.semi_axes, to_world(axes), lateral, look)


def _beat(ranges: np.ndarray, amplitudes: np.ndarray, radar: RadarConfig) -> np.ndarray:
    """Sum of beat tones over the last axis: ranges (m) and amplitudes ``(..., S)`` ->
    ``(..., n_samples)`` complex64."""
    bins = (ranges / radar.range_resolution).astype(np.float32)  # f_b in FFT bins
    cycles = 2 * ranges * radar.f_start_hz / SPEED_OF_LIGHT  # 2 R / lambda at the chirp start
    carrier = (2 * np.pi * np.mod(cycles, 1.0)).astype(np.float32)
    ramp = (2 * np.pi / radar.n_samples) * np.arange(radar.n_samples, dtype=np.float32)
    arg = bins[..., None] * ramp + carrier[..., None]  # (..., S, n_samples)
    amp = amplitudes.astype(np.float32)[..., None, :]  # (..., 1, S)
    out = np.empty(arg.shape[:-2] + (radar.n_samples,), np.complex64)
    out.real = (amp @ np.cos(arg))[..., 0, :]  # (..., n_samples)
    out.imag = (amp @ np.sin(arg))[..., 0, :]
    return out


def _noise_std(scene: Scene, radar: RadarConfig) -> float:
    """Noise std per complex sample that puts the median noise cell ``dynamic_range_db`` below
    the leakage peak (Hann sums N/2, Hann power sums 3N/8; median Rayleigh = sqrt(ln 2) rms)."""
    peak = scene.leakage_amplitude * (radar.n_samples / 2) * (radar.n_chirps / 2)
    rms_gain = np.sqrt(3 * radar.n_samples / 8 * 3 * radar.n_chirps / 8)
    return peak / (rms_gain * np.sqrt(np.log(2)) * 10 ** (scene.dynamic_range_db / 20))


def render(
    scene: Scene, frames: np.ndarray, noise_key: tuple[int, ...], radar: RadarConfig
) -> np.ndarray:
    """Complex range-Doppler maps ``(F, 224, 64)`` complex64 of the given frame numbers ``(F,)``.

    ``noise_key`` seeds each frame's noise together with its frame number.
    """
    frames = np.asarray(frames)
    chirp_t = np.arange(radar.n_chirps) * radar.chirp_period_s
    t = (frames[:, None] / radar.frame_rate_hz + chirp_t).ravel()  # (F*224,) chirp start times
    pos, rcs = walker_scatterers(scene, t)  # (F*224, 16, 3), (F*224, 16)
    ranges = np.linalg.norm(pos - RADAR_POSITION, axis=-1)
    beat = _beat(ranges, np.sqrt(rcs) / ranges**2, radar)  # (F*224, n_samples)
    beat = beat.reshape(len(frames), radar.n_chirps, radar.n_samples)  # (F, 224, 128)

    r_static = np.linalg.norm(scene.reflectors - RADAR_POSITION, axis=-1)  # (K,)
    static = _beat(r_static, np.sqrt(scene.reflector_rcs) / r_static**2, radar)  # (n_samples,)
    leak = _beat(np.array([scene.leakage_range]), np.array([scene.leakage_amplitude]), radar)
    static += leak * np.complex64(np.exp(1j * scene.leakage_phase))
    sigma = np.float32(_noise_std(scene, radar) / np.sqrt(2))
    for i, frame in enumerate(frames):
        noise = _rng(*noise_key, frame).standard_normal(
            (radar.n_chirps, radar.n_samples, 2), np.float32
        )
        beat[i] += static + sigma * noise.view(np.complex64)[..., 0]
    return radar.range_doppler(beat)


def simulate_sequence(
    subject: int,
    sequence: int,
    n_frames: int,
    seed: int = 0,
    radar: RadarConfig | None = None,
    scenario: Scenario | str = "default",
) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude (dB) and phase (rad, in (-pi, pi]) of consecutive frames, each ``(n_frames, H,
    W)`` float32 (224 x 64 for the default radar). Frames are 1 / frame_rate apart; the same
    arguments give bit-identical output. ``radar`` overrides the scenario's radar."""
    scenario = SCENARIOS[scenario] if isinstance(scenario, str) else scenario
    radar = radar or scenario.radar
    scene = make_scene(subject, sequence, seed, scenario)
    amp = np.empty((n_frames, *radar.frame_shape), np.float32)
    phase = np.empty_like(amp)
    for lo in range(0, n_frames, CHUNK_FRAMES):
        idx = np.arange(lo, min(lo + CHUNK_FRAMES, n_frames))
        rd = render(scene, idx, (seed, _NOISE, subject, sequence), radar)  # (F, 224, 64)
        amp[idx], phase[idx] = to_amplitude_db(rd), to_phase(rd)
    return amp, phase


def simulate_point_target(
    range_m: float,
    velocity_mps: float,
    radar: RadarConfig | None = None,
    snr_db: float = 60.0,
    seed: int = 0,
) -> np.ndarray:
    """Range-Doppler map ``(224, 64)`` complex64 of one unit-amplitude point target.

    The target is at ``range_m`` at the middle chirp and moves radially at ``velocity_mps``
    (positive = receding, as :meth:`RadarConfig.velocity_axis`). ``snr_db`` is per ADC sample,
    before the ~44 dB gain of the two FFTs.
    """
    radar = radar or RadarConfig()
    chirps = np.arange(radar.n_chirps) - radar.n_chirps // 2
    ranges = range_m + velocity_mps * radar.chirp_period_s * chirps  # (224,)
    beat = _beat(ranges[:, None], np.ones((radar.n_chirps, 1)), radar)  # (224, 128)
    noise = _rng(seed, _POINT).standard_normal((*beat.shape, 2), np.float32)
    beat += np.float32(10 ** (-snr_db / 20) / np.sqrt(2)) * noise.view(np.complex64)[..., 0]
    return radar.range_doppler(beat)


def _all_sequences(subjects, sequences, frames, seed, progress, scenario="default"):
    """Yield ``(subject, sequence, amplitude, phase)`` for every sequence, with a progress bar."""
    with tqdm(total=subjects * sequences * frames, disable=not progress, unit="frame") as bar:
        for subject in range(subjects):
            for sequence in range(sequences):
                maps = simulate_sequence(subject, sequence, frames, seed, scenario=scenario)
                yield subject, sequence, *maps
                bar.update(frames)


def write_dataset(
    out_dir: str | Path,
    subjects: int,
    sequences: int,
    frames: int,
    seed: int = 0,
    progress: bool = True,
    scenario: str = "default",
) -> int:
    """Write ``out_dir/amplitude/NAME`` and ``out_dir/phase/NAME``, float32 ``(224, 64)`` each,
    NAME from :func:`mmslim.data.layout.frame_filename`; subjects and sequences count from 0.
    Returns the number of frames written."""
    out_dir = Path(out_dir)
    for sub in KINDS:
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    written = 0
    for subject, sequence, amp, phase in _all_sequences(
        subjects, sequences, frames, seed, progress, scenario
    ):
        for frame in range(frames):
            name = frame_filename(subject, sequence, frame)
            np.save(out_dir / "amplitude" / name, amp[frame])
            np.save(out_dir / "phase" / name, phase[frame])
            written += 1
    return written


def simulate_dataset(
    subjects: int,
    sequences: int,
    frames: int,
    seed: int = 0,
    progress: bool = True,
    scenario: str = "default",
):
    """The same frames as :func:`write_dataset`, in memory as a
    :class:`mmslim.data.dataset.FrameSet` (amplitude and phase ``(N, 224, 64)`` float32)."""
    from mmslim.data.dataset import FrameSet  # imports torch; keep the simulator light

    parts = list(_all_sequences(subjects, sequences, frames, seed, progress, scenario))
    return FrameSet(
        amplitude=np.concatenate([amp for _, _, amp, _ in parts]),  # (N, 224, 64)
        phase=np.concatenate([phase for _, _, _, phase in parts]),
        subject=np.repeat([f"subj{s:02d}" for s, _, _, _ in parts], frames),
        sequence=np.repeat([f"seq{q:02d}" for _, q, _, _ in parts], frames),
        frame=np.tile(np.arange(frames, dtype=np.int64), len(parts)),
    )


def benchmark(n_frames: int = 100) -> dict[str, float]:
    """Time :func:`simulate_sequence` (synthesis + processing) in this process."""
    simulate_sequence(0, 0, 2)  # warm-up: imports, FFT plans
    start = time.perf_counter()
    simulate_sequence(0, 0, n_frames)
    seconds = time.perf_counter() - start
    return {"frames_per_s": n_frames / seconds, "seconds": seconds, "n_frames": n_frames}
