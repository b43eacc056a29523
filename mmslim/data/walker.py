"""Walking-human kinematics (Boulic-Thalmann model) and ellipsoid RCS of the body segments.

We implement the global human walking model of Boulic, Magnenat-Thalmann & Thalmann (1990), "A
global human walking model with real-time kinematic personification", The Visual Computer 6,
344-358, with the trajectories and control points used in V. C. Chen's walking-human micro-Doppler
simulation ("The Micro-Doppler Effect in Radar", 2011). Our own vectorised numpy version:

- A walker is a height ``H`` and a speed ``V``. Leg length ``Ht = 0.491 H`` (thigh + shin). The
  relative velocity ``RV = V / Ht`` sets the gait: relative cycle length ``1.346 sqrt(RV)`` (in
  ``Ht``), cycle duration ``Dc = 1.346 sqrt(RV) / RV`` seconds, support duration
  ``Ds = 0.752 Dc - 0.143`` s. Three regimes: ``RV < 0.5``, ``0.5 <= RV < 1.3``, ``1.3 <= RV <= 3``
  (our walkers, 1.5-1.9 m at 0.8-1.6 m/s, have RV from about 0.85 to 2.2).
- Over the normalised cycle ``p in [0, 1)`` (right heel strike at ``p = 0``) the model gives the
  body-centre oscillations (vertical, lateral, forward/backward, in units of ``Ht``), pelvis
  torsion and list, hip/knee/ankle flexion, thorax torsion and lean, shoulder and elbow flexion
  (degrees). Flexion curves are periodic PCHIP interpolations of control points that depend on
  ``RV``. Left limbs run half a cycle behind the right ones.
- Segments follow by forward kinematics: legs hang from the (rotated) pelvis, arms from the
  (rotated) thorax, each limb bending in its sagittal plane. Lengths are anthropometric fractions
  of ``H`` (Drillis & Contini): thigh 0.245, shin 0.246, upper arm 0.186, forearm 0.146, hand
  0.108, foot 0.152, hip to shoulder 0.288, shoulder width 0.259, hip width 0.191.

Departures from Chen's script, all deliberate: lengths and oscillations are in metres (his moves
the body by relative, not metric, cycle lengths); the gait-a lateral/forward amplitudes are
negated so they join the other regimes continuously at ``RV = 0.5``; a typo in the fast-regime
elbow control point is fixed (``RV - 1.3``, not ``RV - .13``); angle signs are stated for our
frame (pelvis torsion brings the leading leg's hip forward, the thorax counter-rotates, the
forward/backward rotation leans the upper body 0-4 degrees forward). The pelvis list amplitude
(``0.01 RV`` degrees) is kept as in that script; it is negligible. The model is kinematic only:
nothing pins the stance foot to the floor, so it slides a little (well under the foot's swing
speed, which is what the radar sees).

Body frame: x forward, y left, z up, origin on the ground below the pelvis, moving at the mean
walking speed (the simulator moves and turns that origin along the walker's path).

Each segment scatters as an ellipsoid with semi-axes ``(a, b, c)`` (a lateral, b depth, c along
the segment): ``RCS = pi a^2 b^2 c^2 / (a^2 u_a^2 + b^2 u_b^2 + c^2 u_c^2)^2`` where ``u`` is the
unit vector towards the radar in the ellipsoid's frame (the physical-optics ellipsoid formula).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

# Body-segment scatterers, in output order, with ellipsoid semi-axes (a lateral, b depth or
# thickness, c along the segment) as fractions of the walker's height.
SEGMENTS: tuple[str, ...] = (
    "head", "neck", "torso", "pelvis",
    "upper_arm_l", "upper_arm_r", "forearm_l", "forearm_r", "hand_l", "hand_r",
    "thigh_l", "thigh_r", "shin_l", "shin_r", "foot_l", "foot_r",
)  # fmt: skip
_SEMI_AXES = np.array(
    [
        [0.045, 0.055, 0.065],  # head
        [0.032, 0.032, 0.026],  # neck
        [0.085, 0.060, 0.150],  # torso (hip joints to shoulders)
        [0.095, 0.060, 0.050],  # pelvis
        *[[0.025, 0.025, 0.093]] * 2,  # upper arms
        *[[0.020, 0.020, 0.073]] * 2,  # forearms
        *[[0.010, 0.024, 0.054]] * 2,  # hands (flat, palm towards the body)
        *[[0.040, 0.040, 0.1225]] * 2,  # thighs
        *[[0.028, 0.028, 0.123]] * 2,  # shins
        *[[0.030, 0.025, 0.076]] * 2,  # feet
    ]
)  # (16, 3)

# Segment lengths as fractions of height (Drillis & Contini).
_THIGH, _SHIN, _FOOT = 0.245, 0.246, 0.152
_UPPER_ARM, _FOREARM, _HAND = 0.186, 0.146, 0.108
_HIP_TO_SHOULDER, _NECK, _HEAD = 0.288, 0.052, 0.130
_HALF_SHOULDERS, _HALF_HIPS, _ANKLE_HEIGHT = 0.1295, 0.0955, 0.039


def _periodic_pchip(xs, ys) -> PchipInterpolator:
    """PCHIP through control points repeated with period 1; evaluate it at ``p % 1``."""
    xs = np.asarray(xs, float) % 1.0
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], np.asarray(ys, float)[order]
    keep = np.r_[True, np.diff(xs) > 1e-9]  # a point at 1.0 duplicates the one at 0.0
    xs, ys = xs[keep], ys[keep]
    return PchipInterpolator(np.concatenate([xs - 1, xs, xs + 1]), np.tile(ys, 3))


def _rot_z(angle: np.ndarray) -> np.ndarray:
    """Rotations about z (yaw), ``(T,)`` radians -> ``(T, 3, 3)``."""
    c, s, o, i = np.cos(angle), np.sin(angle), np.zeros_like(angle), np.ones_like(angle)
    return np.stack([c, -s, o, s, c, o, o, o, i], axis=-1).reshape(-1, 3, 3)  # (T, 3, 3)


def _rot_x(angle: np.ndarray) -> np.ndarray:
    """Rotations about x (roll), ``(T,)`` radians -> ``(T, 3, 3)``."""
    c, s, o, i = np.cos(angle), np.sin(angle), np.zeros_like(angle), np.ones_like(angle)
    return np.stack([i, o, o, o, c, -s, o, s, c], axis=-1).reshape(-1, 3, 3)  # (T, 3, 3)


def _rot_y(angle: np.ndarray) -> np.ndarray:
    """Rotations about y, ``(T,)`` radians -> ``(T, 3, 3)``; positive tips +z towards +x."""
    c, s, o, i = np.cos(angle), np.sin(angle), np.zeros_like(angle), np.ones_like(angle)
    return np.stack([c, o, s, o, i, o, -s, o, c], axis=-1).reshape(-1, 3, 3)  # (T, 3, 3)


def _sagittal(angle: np.ndarray) -> np.ndarray:
    """Unit vector hanging down, swung forward by ``angle`` (radians): ``(..., 3)``."""
    return np.stack([np.sin(angle), np.zeros_like(angle), -np.cos(angle)], axis=-1)


@dataclass(frozen=True)
class Walker:
    """One person walking at constant speed (Boulic-Thalmann gait, see the module docstring)."""

    height: float = 1.75  # body height H (m)
    speed: float = 1.2  # mean walking speed V (m/s)
    phase0: float = 0.0  # gait phase at t = 0, in cycles (0 = right heel strike)

    @property
    def leg_length(self) -> float:
        """Ht, hip-to-ankle length (m)."""
        return (_THIGH + _SHIN) * self.height

    @property
    def relative_velocity(self) -> float:
        """RV = V / Ht (leg lengths per second)."""
        return self.speed / self.leg_length

    @property
    def cycle_duration(self) -> float:
        """Duration of one gait cycle, two steps (s)."""
        rv = self.relative_velocity
        return 1.346 * np.sqrt(rv) / rv

    @property
    def support_fraction(self) -> float:
        """Fraction of the cycle a foot is on the ground (toe-off at this phase)."""
        return 0.752 - 0.143 / self.cycle_duration

    @property
    def semi_axes(self) -> np.ndarray:
        """Ellipsoid semi-axes (a lateral, b depth, c along the segment), ``(16, 3)`` metres."""
        return _SEMI_AXES * self.height

    def _curves(self) -> dict[str, PchipInterpolator]:
        """Flexion / torsion control-point curves (degrees) for this walker's RV."""
        rv, ds = self.relative_velocity, self.support_fraction
        if not 0 < rv <= 3:
            raise ValueError(f"relative velocity {rv:.2f} outside the model's range (0, 3]")
        k = (rv - 1.3) / 1.7  # 0 at the start of the fast regime, 1 at RV = 3
        m = (rv - 0.5) / 0.8  # 0 at the start of the medium regime, 1 at RV = 1.3
        if rv < 0.5:
            hip = [(-0.1, 50 * rv), (0.5, -30 * rv), (0.9, 50 * rv)]
            knee = [(0.17, 3), (0.4, 3), (0.75, 140 * rv), (1.0, 3)]
            ankle = [(0, -3), (0.08, -30 * rv - 3), (0.5, 22 * rv - 3), (ds, -34 * rv - 3)]
            elbow = [(0.05, 6 * rv + 3), (0.5, 34 * rv + 3), (0.9, 10 * rv + 3)]
        elif rv < 1.3:
            hip = [(-0.1, 25), (0.5, -15), (0.9, 25)]
            knee = [(0.17, 3), (0.4, 3), (0.75, 70), (1.0, 3)]
            ankle = [(0, -3), (0.08, -18), (0.5, 8), (ds, -20)]
            elbow = [(0.05, 8 * m + 6), (0.01 * m + 0.5, 24 * m + 20), (0.9, 9 * m + 8)]
        else:
            hip = [(0.2 * k - 0.1, 5 * k + 25), (0.5, -15), (0.9, 6 * k + 25)]
            knee = [(0.17 - 0.05 * k, 22 * k + 3), (0.4, 3), (0.75 - 0.05 * k, 70 - 5 * k)]
            knee.append((1 - 0.03 * k, 3 * k + 3))
            ankle = [(0, 5 * k - 3), (0.08, 4 * k - 18), (0.5 - 0.1 * k, 8 - 3 * k)]
            ankle.append((ds, -8 * k - 20))
            elbow = [
                (0.05, 14 - 6 * k),
                (0.51 + 0.04 * k, 26 * k + 44),
                (0.9 - 0.1 * k, 17 - 6 * k),
            ]
        ankle.append((0.85, ankle[0][1]))  # back to the heel-strike angle during swing
        thorax = [(0.1, 4 / 3 * rv), (0.4, -4.5 / 3 * rv), (0.6, -4 / 3 * rv), (0.9, 4.5 / 3 * rv)]
        curves = dict(hip=hip, knee=knee, ankle=ankle, elbow=elbow, thorax=thorax)
        return {name: _periodic_pchip(*zip(*pts, strict=True)) for name, pts in curves.items()}

    def pose(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Segment centres and long axes in the body frame at times ``t``.

        t: ``(T,)`` seconds. Returns ``centres (T, 16, 3)`` metres and ``axes (T, 16, 3)`` unit
        vectors along each segment's c semi-axis, in :data:`SEGMENTS` order.
        """
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        rv, ht, h = self.relative_velocity, self.leg_length, self.height
        p = (t / self.cycle_duration + self.phase0) % 1.0  # (T,) normalised gait phase
        curves = self._curves()
        deg = np.pi / 180

        # Body-centre oscillations (Boulic appendix A), in units of Ht.
        slow = rv < 0.5
        a_lat = -(0.128 * rv - 0.128 * rv**2) if slow else -0.032
        a_fwd = -(0.084 * rv - 0.084 * rv**2) if slow else -0.021
        vert = 0.015 * rv * (np.sin(2 * np.pi * (2 * p - 0.35)) - 1)
        lat = a_lat * np.sin(2 * np.pi * (p - 0.1))
        fwd = a_fwd * np.sin(2 * np.pi * (2 * p + 2 * (0.625 - self.support_fraction)))
        hip_height = _ANKLE_HEIGHT * h + ht + vert * ht
        origin = np.stack([fwd * ht, lat * ht, hip_height], axis=-1)[:, None, :]  # (T, 1, 3)

        # Pelvis and thorax rotations (Boulic appendices B and D).
        a_tilt = 8 * rv - 8 * rv**2 if slow else 2.0
        lean = a_tilt * (1 - np.sin(2 * np.pi * (2 * p - 0.1))) * deg  # forward lean, >= 0
        pelvis_list = _pelvis_list(p, 0.01 * rv) * deg
        pelvis_yaw = 4 * rv * np.cos(2 * np.pi * p) * deg  # right hip forward at p = 0
        thorax_yaw = -curves["thorax"](p) * deg  # counter-rotates against the pelvis
        r_pelvis = _rot_z(pelvis_yaw) @ _rot_x(pelvis_list)  # (T, 3, 3)
        r_thorax = _rot_z(thorax_yaw) @ _rot_y(lean)  # (T, 3, 3)

        # Legs and arms, both sides at once: side index 0 = left (half a cycle later), 1 = right.
        ps = np.stack([(p + 0.5) % 1.0, p], axis=1)  # (T, 2)
        side = np.array([1.0, -1.0])[None, :, None]  # (1, 2, 1): +y is left
        thigh_ang = curves["hip"](ps) * deg  # (T, 2), forward swing from vertical
        shin_ang = thigh_ang - curves["knee"](ps) * deg
        foot_ang = shin_ang + curves["ankle"](ps) * deg  # 0 = foot horizontal
        hip = side * np.array([0.0, _HALF_HIPS * h, 0.0])  # (1, 2, 3)
        knee = hip + _THIGH * h * _sagittal(thigh_ang)  # (T, 2, 3)
        ankle = knee + _SHIN * h * _sagittal(shin_ang)  # (T, 2, 3)
        foot_dir = _sagittal(foot_ang + np.pi / 2)  # (T, 2, 3), forward when foot_ang = 0
        foot = ankle + 0.3 * _FOOT * h * foot_dir - [0, 0, 0.5 * _ANKLE_HEIGHT * h]

        upper_arm_ang = (3 - 9.88 * rv * (0.5 + np.cos(2 * np.pi * ps))) * deg  # (T, 2)
        forearm_ang = upper_arm_ang + curves["elbow"](ps) * deg
        shoulder = side * np.array([0.0, _HALF_SHOULDERS * h, 0.0]) + [0, 0, _HIP_TO_SHOULDER * h]
        elbow = shoulder + _UPPER_ARM * h * _sagittal(upper_arm_ang)  # (T, 2, 3)
        wrist = elbow + _FOREARM * h * _sagittal(forearm_ang)  # (T, 2, 3)
        hand = wrist + 0.5 * _HAND * h * _sagittal(forearm_ang)  # (T, 2, 3)

        n = len(t)
        up = np.broadcast_to([0.0, 0.0, 1.0], (n, 1, 3))
        heights = np.array([_HIP_TO_SHOULDER + _NECK + _HEAD / 2, _HIP_TO_SHOULDER + _NECK / 2])
        trunk = np.concatenate([heights, [_HIP_TO_SHOULDER / 2]])[:, None] * h * [0, 0, 1.0]
        upper_pts = np.concatenate(
            [np.broadcast_to(trunk, (n, 3, 3)), (shoulder + elbow) / 2, (elbow + wrist) / 2, hand],
            axis=1,
        )  # (T, 9, 3): head, neck, torso, upper arms, forearms, hands
        upper_axes = np.concatenate(
            [up, up, up, _sagittal(upper_arm_ang), _sagittal(forearm_ang), _sagittal(forearm_ang)],
            axis=1,
        )  # (T, 9, 3)
        lower_pts = np.concatenate(
            [np.zeros((n, 1, 3)), (hip + knee) / 2, (knee + ankle) / 2, foot], axis=1
        )  # (T, 7, 3): pelvis, thighs, shins, feet
        lower_axes = np.concatenate(
            [up, _sagittal(thigh_ang), _sagittal(shin_ang), foot_dir], axis=1
        )  # (T, 7, 3)

        upper = np.stack([upper_pts, upper_axes]) @ r_thorax.transpose(0, 2, 1)
        lower = np.stack([lower_pts, lower_axes]) @ r_pelvis.transpose(0, 2, 1)
        # (2, T, K, 3): [0] points, [1] axes. Reorder to SEGMENTS: trunk, pelvis, arms, legs.
        both = np.concatenate(
            [upper[:, :, :3], lower[:, :, :1], upper[:, :, 3:], lower[:, :, 1:]], 2
        )
        return both[0] + origin, both[1]  # (T, 16, 3) each


def _pelvis_list(p: np.ndarray, amplitude: float) -> np.ndarray:
    """Pelvis list (roll) over the cycle, four cosine pieces (Boulic appendix B), degrees."""
    a = amplitude
    return np.select(
        [p < 0.15, p < 0.5, p < 0.65],
        [
            -a + a * np.cos(2 * np.pi * 10 * p / 3),
            -a - a * np.cos(2 * np.pi * 10 * (p - 0.15) / 7),
            a - a * np.cos(2 * np.pi * 10 * (p - 0.5) / 3),
        ],
        a + a * np.cos(2 * np.pi * 10 * (p - 0.65) / 7),
    )


def ellipsoid_rcs(
    semi_axes: np.ndarray, long_axis: np.ndarray, lateral: np.ndarray, look: np.ndarray
) -> np.ndarray:
    """Radar cross-section of ellipsoids seen from direction ``look`` (m^2).

    ``RCS = pi a^2 b^2 c^2 / (a^2 u_a^2 + b^2 u_b^2 + c^2 u_c^2)^2`` with ``u`` the unit vector
    ``look`` in the ellipsoid's (a, b, c) frame: c along ``long_axis``, a along ``lateral`` made
    orthogonal to it, b completing the frame.

    semi_axes: ``(S, 3)`` metres (a, b, c). long_axis, look: ``(..., S, 3)`` unit vectors.
    lateral: broadcastable to ``(..., S, 3)``. Returns ``(..., S)``.
    """
    a2, b2, c2 = (semi_axes**2).T  # (S,) each
    u_c = np.sum(look * long_axis, axis=-1)  # (..., S)
    lat = lateral - np.sum(lateral * long_axis, axis=-1, keepdims=True) * long_axis
    lat = lat / np.linalg.norm(lat, axis=-1, keepdims=True)
    u_a = np.sum(look * lat, axis=-1)
    u_b2 = np.clip(1.0 - u_a**2 - u_c**2, 0.0, None)
    return np.pi * a2 * b2 * c2 / (a2 * u_a**2 + b2 * u_b2 + c2 * u_c**2) ** 2
