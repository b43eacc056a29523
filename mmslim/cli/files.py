"""The command line's files: maps read from ``.npy`` files, folders or bundles, checkpoints with
their stage, key files, and outputs written atomically. Errors name the file and the fix."""

from __future__ import annotations

import sys
from pathlib import Path

from mmslim.config import STAGES


def read_maps(path: Path, kind: str, amplitude: Path | None):
    """(maps (N, H, W), amplitude (N, H, W) or None) from .npy, a folder or a bundle."""
    from mmslim.data.dataset import load_frames

    if path.suffix == ".npy":
        maps = load_maps_npy(path)
        if kind == "phase" and amplitude is None:
            raise ValueError("a phase .npy needs --amplitude FILE: the mask looks at amplitude")
        return maps, None if amplitude is None else load_maps_npy(amplitude)
    if path.is_file() and path.suffix != ".npz":
        raise ValueError(f"{path} is neither a .npy map file, an .npz bundle nor a data folder")
    frames = load_frames(path, expected_shape=None)
    return getattr(frames, kind), frames.amplitude


def load_maps_npy(path: Path):
    """A .npy file of one (H, W) map or (N, H, W) maps, as (N, H, W); integer maps are
    converted to float32 with a note (reading: :func:`mmslim.data.dataset.load_npy`)."""
    import numpy as np

    from mmslim.data.dataset import load_npy

    check_file(path, ".npy map file")
    maps = load_npy(path)
    if maps.dtype.kind in "iu":
        print(f"note: {path} holds {maps.dtype} values; converted to float32", file=sys.stderr)
        maps = maps.astype(np.float32)
    if maps.ndim == 2:
        maps = maps[None]  # one (H, W) map becomes (1, H, W)
    return maps  # dtype, shape and values are checked by compress_maps (codec.inputs)


def check_file(path: Path, what: str) -> None:
    if path.is_dir():
        raise ValueError(f"{path} is a folder; pass the {what} itself")
    if not path.is_file():
        raise ValueError(f"{path} does not exist; pass an existing {what}")


def read_file(path: Path, what: str) -> bytes:
    check_file(path, what)
    return path.read_bytes()


def load_stage_model(path: Path):
    """(model, its stage) from a checkpoint."""
    from mmslim.training.checkpoint import CheckpointError, load_model

    model, state = load_model(path)
    if state.get("stage") not in STAGES:
        raise CheckpointError(f"{path} does not say which stage it trained ({STAGES})")
    return model, state["stage"]


def read_key(args):
    from mmslim.codec import read_key_file

    return None if args.key_file is None else read_key_file(args.key_file)


def write_file(path: Path, data: bytes) -> None:
    """Write atomically: an interrupted command leaves no half file."""
    from mmslim.files import atomic_write

    if path.is_dir():
        raise ValueError(f"{path} is a folder; pass the name of the file to write")
    atomic_write(path, lambda f: f.write(data))


__all__ = [
    "check_file",
    "load_maps_npy",
    "load_stage_model",
    "read_file",
    "read_key",
    "read_maps",
    "write_file",
]
