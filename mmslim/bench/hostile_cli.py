"""Careless and hostile input to the ``mmslim`` command line, measured: does any end in a traceback?

    python -m mmslim.bench.hostile_cli [--checkpoint CKPT]

Builds a folder of bad inputs (empty, pickled, truncated and foreign checkpoints; folders where
files belong; files that are not ``.npy``; complex, integer, constant, empty, non-finite and
implausible maps; damaged, foreign, crafted and authenticated ``.mmsl`` files; bad keys; bad
arguments), runs each command in-process, and prints each case's exit code and the last line it
wrote to stderr; then interrupts a real training run with SIGINT. A case "ends in a traceback"
if an exception escapes ``main`` or "Traceback" appears in its output. ``tests/cli`` runs the same
cases and asserts each one's exit code and message.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Case:
    """One command line and what it must end with."""

    name: str
    argv: list[str]
    code: int  # expected exit code: 0, 1 (error) or 2 (usage)
    says: str = ""  # a fragment the last line of stderr must hold (lower case)


def make_inputs(folder: Path, checkpoint: Path) -> dict[str, Path]:
    """Write every bad (and a few good) input into ``folder``; returns name -> path."""
    import torch

    from mmslim.bench.hostile import crafted_files, edit
    from mmslim.codec.maps import compress_maps
    from mmslim.data.dataset import load_frames
    from mmslim.data.samples import sample_path
    from mmslim.data.simulator import write_dataset
    from mmslim.training.checkpoint import load_model, save_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    f = {name: folder / name for name in ("empty.pt", "junk.pt", "folder", "data", "key")}
    model, state = load_model(checkpoint)
    maps = load_frames(sample_path("sample.npz")).amplitude[:4]  # (4, 224, 64) dB
    f["folder"].mkdir(exist_ok=True)
    f["empty.pt"].write_bytes(b"")
    f["junk.pt"].write_bytes(b"not a checkpoint at all " * 20)
    f["truncated.pt"] = folder / "truncated.pt"
    f["truncated.pt"].write_bytes(Path(checkpoint).read_bytes()[:5000])
    f["pickled.pt"] = folder / "pickled.pt"
    torch.save({"format": "mmslim-checkpoint", "payload": _Pickled()}, f["pickled.pt"])
    f["foreign.pt"] = folder / "foreign.pt"
    torch.save(model.state_dict(), f["foreign.pt"])
    torch.manual_seed(1)
    other = type(model)(model.config).eval()
    other.prior.load_state_dict(model.prior.state_dict())
    f["other.pt"] = folder / "other.pt"
    save_checkpoint({**state, "model": other.state_dict()}, f["other.pt"])
    npy = {
        "good": maps,
        "int16": maps.astype(np.int16),
        "complex": maps.astype(np.complex64),
        "constant": np.full((2, 224, 64), 40.0, np.float32),
        "zero": np.zeros((0, 224, 64), np.float32),
        "huge": np.where(maps > 60, 1e38, maps).astype(np.float32),
        "nan": np.where(maps > 60, np.nan, maps).astype(np.float32),
        "odd": maps[:, :100],
        "4d": maps[None],
    }
    for name, array in npy.items():
        f[f"{name}.npy"] = folder / f"{name}.npy"
        np.save(f[f"{name}.npy"], array)
    f["objects.npy"] = folder / "objects.npy"
    np.save(f["objects.npy"], np.array([{"a": 1}], dtype=object), allow_pickle=True)
    f["text.npy"] = folder / "text.npy"
    f["text.npy"].write_text("frame,value\n1,2\n")
    f["text.npz"] = folder / "text.npz"
    f["text.npz"].write_text("not a zip")
    valid = {mode: compress_maps(model, maps, state["stage"], mode) for mode in ("fixed", "ans")}
    valid["huffman"] = compress_maps(model, maps, state["stage"], "huffman")
    mmsl = {
        "valid": valid["ans"],
        "empty": b"",
        "random": np.random.default_rng(0).bytes(3000),
        "truncated": valid["ans"][:-10],
        "flipped": bytes([valid["ans"][0]]) + bytes([valid["ans"][1] ^ 4]) + valid["ans"][2:],
        "v1": edit(valid["ans"], 4, "<B", 1),
        "tagged": compress_maps(model, maps, state["stage"], "ans", key=b"K" * 32),
        "small": compress_maps(model, maps[:, :64], state["stage"], "ans"),
    }
    crafted = crafted_files(model, valid)
    bombs = [data for name, data in crafted.items() if not name.startswith("valid")]
    mmsl.update({f"bomb{i}": data for i, data in enumerate(bombs)})
    for name, data in mmsl.items():
        f[f"{name}.mmsl"] = folder / f"{name}.mmsl"
        f[f"{name}.mmsl"].write_bytes(data)
    f["key"].write_bytes(b"K" * 32)
    f["short.key"] = folder / "short.key"
    f["short.key"].write_bytes(b"K" * 5)
    write_dataset(f["data"], 2, 1, 2, seed=3)  # 2 walkers x 1 sequence x 2 frames
    return f


class _Pickled:
    """An object a weights-only load refuses (what a malicious checkpoint would carry)."""

    def __reduce__(self):
        return (print, ("this must never run",))


def cli_cases(f: dict[str, Path], checkpoint: Path) -> list[Case]:
    """The cases, on the inputs of ``make_inputs``."""
    ck, out = ["--checkpoint", str(checkpoint)], str(f["folder"] / "out.mmsl")
    dec = lambda name, *extra: ["decompress", str(f[name]), str(f["folder"] / "x.npy"), *ck, *extra]  # noqa: E731
    com = lambda name, *extra: ["compress", str(f[name]), out, *ck, *extra]  # noqa: E731
    train = ["train", "--stage", "amplitude", "--data", str(f["data"]), "--preset", "tiny"]
    cases = [
        Case("no command", [], 2),
        Case("unknown command", ["frobnicate"], 2),
        Case("missing arguments", ["compress"], 2),
        Case("frame shape not numbers", [*dec("valid.mmsl"), "--frame-shape", "a", "b"], 2),
        Case("unknown mode", [*com("good.npy"), "--mode", "zip"], 2),
        Case("good input", com("good.npy"), 0),
        Case("integer maps (converted)", com("int16.npy"), 0),
        Case("good file", dec("valid.mmsl"), 0),
        Case("tagged file with its key", [*dec("tagged.mmsl"), "--key-file", str(f["key"])], 0),
    ]
    for name, says in (
        ("empty.pt", "empty"),
        ("junk.pt", "not a pytorch checkpoint"),
        ("truncated.pt", "could not be read"),
        ("pickled.pt", "arbitrary code"),
        ("foreign.pt", "not an mmslim checkpoint"),
        ("folder", "is a folder"),
        ("good.npy", "not a pytorch checkpoint"),
    ):
        argv = ["decompress", str(f["valid.mmsl"]), str(f["folder"] / "x.npy")]
        cases.append(Case(f"checkpoint: {name}", [*argv, "--checkpoint", str(f[name])], 1, says))
    cases.append(
        Case(
            "checkpoint: missing",
            [*dec("valid.mmsl")[:3], "--checkpoint", "nope.pt"],
            1,
            "no checkpoint",
        )
    )
    for name, says in (
        ("text.npy", "not a readable .npy file"),
        ("objects.npy", "python objects"),
        ("complex.npy", "complex"),
        ("constant.npy", "constant"),
        ("zero.npy", "no frames"),
        ("huge.npy", "plausible range"),
        ("nan.npy", "nan or inf"),
        ("odd.npy", "crop or pad"),
        ("4d.npy", "(n, h, w)"),
        ("text.npz", "not a readable .npz bundle"),
        ("folder", "has no amplitude/ folder"),
        ("valid.mmsl", "neither a .npy"),
    ):
        cases.append(Case(f"compress: {name}", com(name), 1, says))
    cases.append(
        Case(
            "compress: output is a folder",
            ["compress", str(f["good.npy"]), str(f["folder"]), *ck],
            1,
            "is a folder",
        )
    )
    cases.append(
        Case(
            "compress: short key",
            [*com("good.npy"), "--key-file", str(f["short.key"])],
            1,
            "too short",
        )
    )
    cases.append(
        Case(
            "compress: no key file", [*com("good.npy"), "--key-file", "none.key"], 1, "no key file"
        )
    )
    for name, says in (
        ("empty.mmsl", "shorter than the header"),
        ("random.mmsl", "not an mmslim file"),
        ("truncated.mmsl", "checksum"),
        ("flipped.mmsl", "not an mmslim file"),
        ("v1.mmsl", "predates format 3"),
        ("tagged.mmsl", "hmac tag"),
        ("small.mmsl", "frame_shape"),
        ("folder", "is a folder"),
        *((name, "") for name in sorted(f) if name.startswith("bomb")),
    ):
        cases.append(Case(f"decompress: {name}", dec(name), 1, says))
    other = [
        "decompress",
        str(f["valid.mmsl"]),
        str(f["folder"] / "x.npy"),
        "--checkpoint",
        str(f["other.pt"]),
    ]
    cases += [
        Case("decompress: another model", other, 1, "matching checkpoint"),
        Case(
            "decompress: wrong key",
            [*dec("tagged.mmsl"), "--key-file", str(f["empty.pt"])],
            1,
            "too short",
        ),
        Case(
            "decompress: key, untagged",
            [*dec("valid.mmsl"), "--key-file", str(f["key"])],
            1,
            "no hmac tag",
        ),
        Case(
            "decompress: frame shape",
            [*dec("valid.mmsl"), "--frame-shape", "100", "64"],
            1,
            "divisible",
        ),
        Case(
            "decompress: output is a folder",
            ["decompress", str(f["valid.mmsl"]), str(f["folder"]), *ck],
            1,
            "is a folder",
        ),
        Case(
            "decompress: not the next file",
            [*dec("valid.mmsl"), "--first-sequence", "9"],
            1,
            "lost",
        ),
        Case("inspect: folder", ["inspect", str(f["folder"])], 1, "is a folder"),
        Case("inspect: empty", ["inspect", str(f["empty.mmsl"])], 1, "shorter"),
        Case("inspect: missing", ["inspect", "nope.mmsl"], 1, "does not exist"),
        Case(
            "train: no data",
            ["train", "--stage", "amplitude", "--data", "nope", "--out", str(f["folder"] / "r")],
            1,
            "does not exist",
        ),
        Case(
            "train: phase alone",
            [
                "train",
                "--stage",
                "phase",
                "--data",
                str(f["data"]),
                "--out",
                str(f["folder"] / "r"),
            ],
            1,
            "--stage amplitude",
        ),
        Case(
            "train: batch size 0",
            [*train, "--out", str(f["folder"] / "r0"), "--batch-size", "0"],
            1,
        ),
        Case(
            "train: data is a checkpoint",
            [
                "train",
                "--stage",
                "amplitude",
                "--data",
                str(checkpoint),
                "--out",
                str(f["folder"] / "r1"),
            ],
            1,
            "lacks arrays",
        ),
        Case("prior: no data", ["prior", *ck, "--data", "nope"], 1, "does not exist"),
        Case(
            "simulate: into a file",
            ["simulate", "--out", str(f["good.npy"] / "x"), "--frames", "1"],
            1,
        ),
    ]
    return cases


def run_case(argv: list[str]) -> tuple[int | None, str, str, str | None]:
    """Run ``mmslim argv`` in this process: (exit code, stdout, stderr, escaped exception)."""
    from mmslim.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    escaped, code = None, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except BaseException as error:  # a traceback for the user
            escaped = type(error).__name__
    return code, out.getvalue(), err.getvalue(), escaped


def _ctrl_c_as_at_a_terminal() -> None:
    """In the child, before it starts: SIGINT back to its default action. A shell starts
    background jobs (``make test &``, ``nohup``) with SIGINT ignored, children inherit that, and
    Python then never turns Ctrl-C into ``KeyboardInterrupt``."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_training(data: Path, out: Path, timeout: float = 300.0) -> tuple[int, str]:
    """Start ``mmslim train`` in a subprocess, press Ctrl-C (SIGINT) once the first epoch's
    checkpoint exists, and return (exit code, stderr)."""
    entry = "import sys; from mmslim.cli import main; sys.exit(main())"  # the `mmslim` script
    argv = [sys.executable, "-c", entry, "train", "--stage", "amplitude"]
    argv += ["--data", str(data), "--out", str(out), "--preset", "tiny", "--epochs", "100000"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ctrl_c_as_at_a_terminal)  # fmt: skip
    deadline = time.monotonic() + timeout
    while not (out / "amplitude.pt").exists() and proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError("training wrote no checkpoint in time")
        time.sleep(0.2)
    time.sleep(0.5)  # somewhere inside the next epoch
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def main(argv: list[str] | None = None) -> None:
    import tempfile

    from mmslim.data.samples import sample_path

    p = argparse.ArgumentParser(prog="python -m mmslim.bench.hostile_cli", description=__doc__)
    p.add_argument("--checkpoint", type=Path, default=sample_path("pretrained", "amplitude.pt"))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files = make_inputs(Path(tmp), args.checkpoint)
        cases = cli_cases(files, args.checkpoint)
        tracebacks, wrong = 0, 0
        for case in cases:
            code, out, err, escaped = run_case(case.argv)
            traceback = escaped is not None or "Traceback" in out + err
            tracebacks += traceback
            wrong += code != case.code
            last = (err.strip().splitlines() or [""])[-1]
            print(f"{case.name:<34} exit {code} {'TRACEBACK ' if traceback else ''}{last[:110]}")
        code, err = interrupt_training(files["data"], Path(tmp) / "run")
        traceback = "Traceback" in err
        tracebacks += traceback
        last = (err.strip().splitlines() or [""])[-1]
        print(f"{'Ctrl-C during training':<34} exit {code} {last[:110]}")
    print(f"\n{len(cases) + 1} cases; ending in a traceback: {tracebacks}; "
          f"exit code other than expected: {wrong}")  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("TQDM_DISABLE", "1")
    main()
