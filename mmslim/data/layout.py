"""File names of the original capture layout.

A data folder holds ``amplitude/`` and ``phase/``, one float32 ``(224, 64)`` ``.npy`` file per
frame, with the same file name in both folders. Names contain ``pc_ti_kinect_key``, as in the
original captures. The simulator writes ``subj{S:02d}_seq{Q:02d}_pc_ti_kinect_key_{F:04d}.npy``;
for other names the subject is whatever precedes ``pc_ti_kinect_key`` (so a user's own captures
group by their file prefix).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KEY = "pc_ti_kinect_key"
_SIM_NAME = re.compile(r"subj(\d+)_seq(\d+)_" + KEY + r"_(\d+)\.npy$")


@dataclass(frozen=True)
class FrameName:
    subject: str  # walker id (splits never cut across it)
    sequence: str  # recording within the subject
    frame: int  # frame number within the sequence


def frame_filename(subject: int, sequence: int, frame: int) -> str:
    """Name of one frame file, the same in ``amplitude/`` and ``phase/``."""
    return f"subj{subject:02d}_seq{sequence:02d}_{KEY}_{frame:04d}.npy"


def parse_frame_filename(name: str) -> FrameName:
    """Subject, sequence and frame of a file name; raises ValueError if it is not a frame file."""
    m = _SIM_NAME.search(name)
    if m:
        return FrameName(f"subj{int(m[1]):02d}", f"seq{int(m[2]):02d}", int(m[3]))
    if KEY not in name or not name.endswith(".npy"):
        raise ValueError(f"{name!r} is not a frame file (expected '*{KEY}*.npy')")
    prefix, _, suffix = name[: -len(".npy")].partition(KEY)
    digits = re.findall(r"\d+", suffix)
    return FrameName(prefix.strip("_-") or "subject0", "seq00", int(digits[-1]) if digits else 0)
