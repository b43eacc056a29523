"""Atomic writes (mmslim.files): a file is the old one or the new one, never half, even when
Ctrl-C arrives while it is written."""

from __future__ import annotations

import os
import signal

import pytest

from mmslim.files import atomic_write, interrupts_deferred, read_csv, write_csv


@pytest.fixture(autouse=True)
def _ctrl_c_raises():
    """Ctrl-C as Python sets it up at a terminal, even when the tests run as a background job
    (whose shell starts it with SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_atomic_write_replaces_the_file_whole(tmp_path):
    path = tmp_path / "sub" / "f.bin"
    atomic_write(path, lambda f: f.write(b"old"))
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]  # no temporary left


def test_a_failed_write_leaves_the_previous_file(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write(path, lambda f: f.write(b"old"))

    def fails(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fails)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_ctrl_c_while_writing_waits_until_the_file_is_in_place(tmp_path):
    path = tmp_path / "f.bin"

    def interrupted(f):
        f.write(b"first half, ")
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the write
        f.write(b"second half")

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, interrupted)
    assert path.read_bytes() == b"first half, second half"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_interrupts_deferred_raises_only_if_one_came():
    with interrupts_deferred():
        pass  # nothing to re-raise
    ran_to_end = False
    with pytest.raises(KeyboardInterrupt):
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            ran_to_end = True
    assert ran_to_end


def test_csv_round_trip(tmp_path):
    rows = [{"a": 1, "b": "x"}, {"a": 2.5, "c": True}]
    write_csv(rows, tmp_path / "t.csv")
    back = read_csv(tmp_path / "t.csv")
    assert [r["a"] for r in back] == [1, 2.5]
    assert back[0]["b"] == "x" and back[1]["c"] == "True"  # not a number: kept as text
