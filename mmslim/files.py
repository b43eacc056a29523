"""Writing files so that an interrupted run never leaves half of one, and tables of rows.

Every file a run writes more than once (checkpoints, training histories, benchmark CSVs) goes
through :func:`atomic_write`: a temporary file in the same folder, flushed and synced, renamed
over the target, then the folder synced so that the rename itself survives a power cut. A run
killed at any point leaves the previous version or the new one, never a mix. A Ctrl-C that
arrives while a file is written waits until it is in place (:func:`interrupts_deferred`):
raised inside a C++ writer such as ``torch.save``'s it would surface as an unrelated error.

Tables are lists of dicts (one per row): :func:`write_csv` / :func:`read_csv` store them,
:func:`format_table` lays them out for a terminal.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(f)`` on a temporary binary file beside ``path``, then rename it to ``path``.

    The file gets the permissions a plain ``open`` would give it (``mkstemp`` makes it private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with interrupts_deferred():
        _atomic_write(path, write)
    return path


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold back SIGINT (Ctrl-C) until the block ends, then raise ``KeyboardInterrupt`` as it
    would have been. Only the main thread can set signal handlers; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and callable(previous):
        previous(signal.SIGINT, None)  # Python's default handler raises KeyboardInterrupt
    elif caught and previous == signal.SIG_DFL:
        raise KeyboardInterrupt


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. a platform that cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_csv(rows: list[dict], path: str | Path) -> Path:
    """Write rows (dicts; the union of their keys, in first-seen order, as columns) atomically."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write(path, lambda f: f.write(text.getvalue().encode()))


def read_csv(path: str | Path) -> list[dict]:
    """Rows written by :func:`write_csv`; numbers come back as floats, empty cells as ``""``."""

    def value(v: str):
        try:
            return float(v)
        except ValueError:
            return v

    with open(path, newline="") as f:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def format_table(rows: list[dict], digits: int = 4) -> str:
    """Rows of dicts as an aligned text table; floats with ``digits`` significant digits."""
    if not rows:
        return ""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_fmt(r.get(k, ""), digits) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(c, widths)) for c in cells]
    return "\n".join(line.rstrip() for line in lines)


def print_table(rows: list[dict], digits: int = 4) -> None:
    """Print :func:`format_table` of ``rows`` (nothing for no rows)."""
    if rows:
        print(format_table(rows, digits))


def _fmt(v, digits: int) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


__all__ = [
    "atomic_write",
    "format_table",
    "interrupts_deferred",
    "print_table",
    "read_csv",
    "write_csv",
]
