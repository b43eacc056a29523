"""Progress bars that reach the terminal when a notebook runs headlessly.

Inside a Jupyter kernel ``tqdm.auto`` draws an ipywidgets bar. Live in JupyterLab that is right;
in a papermill run nobody watches the kernel, and the executed notebook keeps only the widget's
text at the moment it was displayed ("0%| | 0/12"), a bar frozen at zero. So when the variable
``MMSLIM_PROGRESS`` names a file (the runner of :mod:`mmslim.tutorial.runner` sets one per run),
:func:`progress_bar` writes a plain text bar to that file instead, one ``\\r``-separated state per
refresh, and ``make demo`` (:mod:`mmslim.tutorial.demo`) shows the latest state on the terminal.
Without the variable it is ``tqdm.auto.tqdm`` unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

PROGRESS_ENV = "MMSLIM_PROGRESS"


class _AppendFile:
    """A write-only stream that appends each write to ``path`` (opened and closed every time,
    so a bar left open by an interrupted loop holds no file)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def write(self, text: str) -> int:
        with open(self.path, "a", encoding="utf-8") as f:
            return f.write(text)

    def flush(self) -> None:
        pass


def progress_bar(iterable=None, **kwargs):
    """A tqdm bar over ``iterable`` (keyword arguments as tqdm's); headless, a text bar appended
    to the file named by ``MMSLIM_PROGRESS`` (see the module doc)."""
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        from tqdm.auto import tqdm

        return tqdm(iterable, **kwargs)
    from tqdm.std import tqdm

    kwargs = {"ascii": True, "ncols": 96, "mininterval": 0.5} | kwargs
    return tqdm(iterable, file=_AppendFile(path), **kwargs)


__all__ = ["PROGRESS_ENV", "progress_bar"]
