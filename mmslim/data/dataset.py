"""Loading radar frames: the original folder layout or one ``.npz`` bundle.

Frames are stored in physical units (amplitude in dB, phase in radians). The model sees each map
normalised per frame to [0, 1]; the (min, max) used are kept beside it, because a real decoder
needs them to return physical units, and so do metrics in dB.

Two sources are read:

- a folder with ``amplitude/`` and ``phase/`` holding one ``(224, 64)`` ``.npy`` file per frame,
  the same file names in both (see :mod:`mmslim.data.layout`); real captures can be dropped in;
- a single ``.npz`` bundle (what ``data_samples/`` ships) written by :func:`save_bundle`.

Splits are by subject (walker), never by frame, so no person is seen in both training and
validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from mmslim.config import KINDS
from mmslim.data.arrays import FRAME_SHAPE, DataError, denormalize, normalize  # noqa: F401
from mmslim.data.layout import parse_frame_filename

# FRAME_SHAPE, DataError, normalize and denormalize live in mmslim.data.arrays (no PyTorch there,
# for the exported codec) and are imported from here too.


@dataclass
class FrameSet:
    """Frames in physical units, with who and when each one is.

    amplitude: (N, H, W) float32, dB
    phase:     (N, H, W) float32, radians in (-pi, pi]
    subject:   (N,) str, walker id
    sequence:  (N,) str, recording within the walker
    frame:     (N,) int64, frame number within the sequence
    """

    amplitude: np.ndarray
    phase: np.ndarray
    subject: np.ndarray
    sequence: np.ndarray
    frame: np.ndarray

    def __len__(self) -> int:
        return len(self.frame)

    def subjects(self) -> list[str]:
        return sorted(set(self.subject.tolist()))

    def select(self, keep: np.ndarray) -> FrameSet:
        """The frames where ``keep`` (bool (N,) or an index array) is set."""
        return FrameSet(
            self.amplitude[keep],
            self.phase[keep],
            self.subject[keep],
            self.sequence[keep],
            self.frame[keep],
        )

    def of_subjects(self, subjects: list[str]) -> FrameSet:
        return self.select(np.isin(self.subject, list(subjects)))


# --------------------------------------------------------------------------- reading


def load_frames(path: str | Path, expected_shape: tuple[int, int] | None = FRAME_SHAPE) -> FrameSet:
    """Read a data folder (``amplitude/`` + ``phase/``) or an ``.npz`` bundle, and check it.

    ``expected_shape=None`` accepts any shape, as long as every frame has the same one.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"{path} does not exist. Pass a folder with amplitude/ and phase/ sub-folders, "
            "an .npz bundle, or make data with `mmslim simulate --out DIR`."
        )
    frames = _read_bundle(path) if path.is_file() else _read_folder(path)
    _check(frames, path, expected_shape)
    return frames


def _read_folder(root: Path) -> FrameSet:
    folders = {kind: root / kind for kind in KINDS}
    for kind, folder in folders.items():
        if not folder.is_dir():
            raise DataError(
                f"{root} has no {kind}/ folder. A data folder holds amplitude/ and phase/ with "
                "one .npy file per frame and the same file names in both."
            )
    names = {kind: sorted(p.name for p in folder.glob("*.npy")) for kind, folder in folders.items()}
    if not names["amplitude"] and not names["phase"]:
        raise DataError(
            f"{root}/amplitude and {root}/phase hold no .npy files. Put frames there, or make "
            "some with `mmslim simulate --out DIR`."
        )
    amp_only = sorted(set(names["amplitude"]) - set(names["phase"]))
    phase_only = sorted(set(names["phase"]) - set(names["amplitude"]))
    if amp_only or phase_only:
        raise DataError(
            f"amplitude/ and phase/ in {root} do not pair up: "
            f"{len(amp_only)} file(s) only in amplitude/ (e.g. {amp_only[:3]}), "
            f"{len(phase_only)} only in phase/ (e.g. {phase_only[:3]}). "
            "Every frame needs a file of the same name in both folders."
        )
    parsed = []
    for name in names["amplitude"]:
        try:
            parsed.append(parse_frame_filename(name))
        except ValueError as err:
            raise DataError(f"{folders['amplitude'] / name}: {err}") from None
    maps = {kind: [_load_frame(folders[kind] / n) for n in names["amplitude"]] for kind in KINDS}
    shapes = {m.shape for kind in KINDS for m in maps[kind]}
    if len(shapes) > 1:
        for kind in KINDS:
            for name, m in zip(names["amplitude"], maps[kind]):
                if m.shape != maps["amplitude"][0].shape:
                    raise DataError(
                        f"{folders[kind] / name} has shape {m.shape}, other frames "
                        f"{maps['amplitude'][0].shape}. All frames must have one shape."
                    )
    return FrameSet(
        np.stack(maps["amplitude"]).astype(np.float32),
        np.stack(maps["phase"]).astype(np.float32),
        np.array([p.subject for p in parsed]),
        np.array([p.sequence for p in parsed]),
        np.array([p.frame for p in parsed], dtype=np.int64),
    )


def load_npy(path: str | Path) -> np.ndarray:
    """A ``.npy`` file read safely (never unpickled), as stored. ``DataError`` names what is
    wrong with a file that is not a readable numeric ``.npy`` and how to fix it."""
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise DataError(
            f"{path} is not a readable .npy file (it does not start with numpy's magic bytes). "
            "Save frames with numpy.save(path, frame)."
        )
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err) or "Object arrays" in str(err):  # never unpickle input
            raise DataError(
                f"{path} holds Python objects, not numbers. Save a float array: "
                "numpy.save(path, np.asarray(frame, dtype=np.float32))."
            ) from None
        raise DataError(f"{path} is a damaged .npy file ({err}). Re-export it.") from None
    except Exception as err:  # numpy raises several types for a broken file
        raise DataError(f"{path} is not a readable .npy file ({err}). Re-export it.") from None


def _load_frame(path: Path) -> np.ndarray:
    x = load_npy(path)
    if x.ndim != 2:
        raise DataError(f"{path} has shape {x.shape}; a frame is one 2-D map (Doppler x range).")
    return x


def _read_bundle(path: Path) -> FrameSet:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # .npz bundles are zip archives
        raise DataError(
            f"{path} is not a readable .npz bundle (not a zip archive). Pass a data folder with "
            "amplitude/ and phase/, or a bundle written by mmslim.data.save_bundle."
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = {"amplitude", "phase", "subject", "sequence", "frame"} - set(z.files)
            if missing:
                raise DataError(
                    f"{path} lacks arrays {sorted(missing)}; write bundles with "
                    "mmslim.data.save_bundle (or `mmslim simulate --bundle`)."
                )
            return FrameSet(
                z["amplitude"].astype(np.float32),
                z["phase"].astype(np.float32),
                z["subject"].astype(str),
                z["sequence"].astype(str),
                z["frame"].astype(np.int64),
            )
    except DataError:
        raise
    except ValueError as err:
        if "allow_pickle" in str(err) or "Object arrays" in str(err):  # never unpickle input
            raise DataError(
                f"{path} holds Python objects, not arrays of numbers; write bundles with "
                "mmslim.data.save_bundle or `mmslim simulate --out X.npz`."
            ) from None
        raise DataError(f"{path} is not a readable .npz bundle ({err}).") from None
    except Exception as err:
        raise DataError(f"{path} is not a readable .npz bundle ({err}).") from None


def _check(frames: FrameSet, source: Path, expected_shape: tuple[int, int] | None) -> None:
    def where(i: int) -> str:
        name = f"subject {frames.subject[i]}, {frames.sequence[i]}, frame {frames.frame[i]}"
        return f"{source} ({name})"

    if len(frames) == 0:
        raise DataError(f"{source} holds no frames.")
    for kind in KINDS:
        maps = getattr(frames, kind)  # (N, H, W)
        if maps.ndim != 3 or (expected_shape and maps.shape[1:] != tuple(expected_shape)):
            raise DataError(
                f"{source}: {kind} frames have shape {maps.shape[1:]}, expected "
                f"{expected_shape} (Doppler rows x range bins). Resample or crop the maps, "
                "or pass expected_shape=None to accept another shape."
            )
        finite = np.isfinite(maps).all(axis=(1, 2))
        if not finite.all():
            i = int(np.flatnonzero(~finite)[0])
            raise DataError(
                f"{where(i)}: {kind} map contains NaN or inf. Replace non-finite cells "
                "(e.g. clip a log of zero to the noise floor) or drop the frame."
            )
        flat = maps.reshape(len(maps), -1)  # (N, H*W)
        constant = flat.max(axis=1) == flat.min(axis=1)
        if constant.any():
            i = int(np.flatnonzero(constant)[0])
            raise DataError(
                f"{where(i)}: {kind} map is constant (max == min), so it cannot be "
                "normalised to [0, 1]. Drop the frame; it carries no information."
            )


def save_bundle(frames: FrameSet, path: str | Path, dtype: str = "float16") -> None:
    """Write frames to one compressed ``.npz`` (``float16`` by default: 0.03 dB / 0.002 rad)."""
    np.savez_compressed(
        path,
        amplitude=frames.amplitude.astype(dtype),
        phase=frames.phase.astype(dtype),
        subject=frames.subject.astype(str),
        sequence=frames.sequence.astype(str),
        frame=frames.frame.astype(np.int32),
    )


# --------------------------------------------------------------------------- splitting


def split_subjects(
    subjects: list[str], val_fraction: float = 0.25, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Split walker ids into (train, validation); at least one of each when possible."""
    subjects = sorted(set(subjects))
    if len(subjects) < 2:
        raise DataError(
            f"only {len(subjects)} subject(s) in the data; a subject-disjoint split needs at "
            "least 2. Add walkers (e.g. `mmslim simulate --subjects 4`)."
        )
    order = np.random.default_rng(seed).permutation(len(subjects))
    n_val = min(len(subjects) - 1, max(1, round(val_fraction * len(subjects))))
    val = sorted(subjects[i] for i in order[:n_val])
    train = sorted(s for s in subjects if s not in val)
    return train, val


class RadarFrames(Dataset):
    """Normalised frames for training and evaluation.

    Each item is a dict:
        amplitude:   (1, H, W) float32 in [0, 1]
        phase:       (1, H, W) float32 in [0, 1]
        amp_range:   (2,) float32, the (min, max) in dB that were mapped to 0 and 1
        phase_range: (2,) float32, the (min, max) in radians
        index:       int, position in the FrameSet
    """

    def __init__(self, frames: FrameSet | str | Path, subjects: list[str] | None = None):
        frames = frames if isinstance(frames, FrameSet) else load_frames(frames)
        if subjects is not None:
            frames = frames.of_subjects(subjects)
            if len(frames) == 0:
                raise DataError(f"no frames of subjects {subjects}")
        self.frames = frames
        self._maps, self._ranges = {}, {}
        for kind in KINDS:
            x01, lo, hi = normalize(torch.from_numpy(getattr(frames, kind)))
            self._maps[kind] = x01.unsqueeze(1).contiguous()  # (N, 1, H, W)
            self._ranges[kind] = torch.stack([lo, hi], dim=1)  # (N, 2)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i: int) -> dict:
        return {
            "amplitude": self._maps["amplitude"][i],
            "phase": self._maps["phase"][i],
            "amp_range": self._ranges["amplitude"][i],
            "phase_range": self._ranges["phase"][i],
            "index": i,
        }

    def tensors(self, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
        """All maps of one kind at once: ``(N, 1, H, W)`` in [0, 1] and ranges ``(N, 2)``."""
        return self._maps[kind], self._ranges[kind]
