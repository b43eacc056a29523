"""Where the shipped sample and checkpoints live, found the same way from a checkout or a wheel.

``data_samples/`` sits beside the package in a checkout (``<repo>/data_samples``). An installed
package does not carry it (checkpoints and data are not Python modules), so a user of a wheel
points ``MMSLIM_SAMPLES`` at a copy of that folder.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MMSLIM_SAMPLES"


def samples_dir() -> Path:
    """The ``data_samples`` folder: ``$MMSLIM_SAMPLES`` if set, else the checkout's.

    Raises ``FileNotFoundError`` saying where to put it when neither exists.
    """
    candidates = []
    if os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]).expanduser())
    candidates.append(Path(__file__).resolve().parents[2] / "data_samples")
    for folder in candidates:
        if (folder / "sample.npz").is_file():
            return folder
    raise FileNotFoundError(
        f"no data_samples folder found (looked in {', '.join(map(str, candidates))}). "
        f"Run from a checkout of mmslim, or set {ENV_VAR} to a copy of its data_samples/."
    )


def sample_path(*parts: str) -> Path:
    """A path inside the samples folder, e.g. ``sample_path("pretrained", "amplitude.pt")``."""
    return samples_dir().joinpath(*parts)


__all__ = ["ENV_VAR", "sample_path", "samples_dir"]
