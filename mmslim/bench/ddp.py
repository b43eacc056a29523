"""Data-parallel training speed: ``mmslim train`` under ``torchrun`` with 1, 2, ... processes.

``mmslim bench ddp`` (or :func:`bench_ddp`) trains the amplitude stage once per process count,
each time as a user would start it (``torchrun --standalone --nproc_per_node=N``), with the same
data, seed and *global* batch, and reads the history each run wrote. Per process count it
reports:

- ``samples_per_s``: training frames per second of all processes together (median over the
  epochs after the first, which includes warm-up such as cuDNN's algorithm search);
- ``efficiency``: samples/s over N times one process's (1 = perfect scaling), against the
  smallest process count measured;
- ``gpu_mem_gib``: peak GPU memory of rank 0 (CUDA only);
- the first epochs' training loss, validation loss and SSIM, which should not depend on N
  (BatchNorm uses the global batch's statistics).

On the CPU each process runs ``threads`` intra-op threads (``OMP_NUM_THREADS``); comparing
``--nproc 2 --threads 1`` with ``--nproc 1 --threads 2`` shows whether processes or threads use
the same cores better. Figures depend on the machine and on what else it runs; they are printed,
never asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from statistics import median

import numpy as np

from mmslim.data.dataset import load_frames, save_bundle
from mmslim.data.samples import sample_path
from mmslim.files import read_csv

COLUMNS = ("nproc", "threads", "batch", "rank_batch", "samples_per_s", "efficiency",
           "gpu_mem_gib", "epoch1_s")  # fmt: skip
EPOCH_COLUMNS = ("nproc", "epoch", "train_loss", "val_loss", "val_ssim", "samples_per_s")


def bench_ddp(
    nprocs: tuple[int, ...] = (1, 2),
    preset: str = "cpu-small",
    epochs: int = 3,
    device: str = "cpu",
    threads: int = 1,
    batch_size: int | None = None,
    data: str | Path | None = None,
    frames_per_sequence: int | None = None,
    out_dir: str | Path = "runs/bench_ddp",
) -> tuple[list[dict], list[dict]]:
    """Train once per process count; returns (one row per count, one row per count and epoch).

    batch_size: the global batch (default: the preset's); must be a multiple of every count.
    frames_per_sequence: keep only the first frames of each sequence of ``data`` (default: the
        shipped sample), for a shorter run.
    """
    out_dir = Path(out_dir)
    bundle = _bundle(data, frames_per_sequence, out_dir)
    rows, epoch_rows = [], []
    for n in sorted(nprocs):
        run_dir = out_dir / f"nproc{n}"
        _run(n, bundle, run_dir, preset, epochs, device, threads, batch_size)
        history = read_csv(run_dir / "history_amplitude.csv")
        later = [r["samples_per_s"] for r in history[1:]] or [history[0]["samples_per_s"]]
        batch = batch_size or _preset_batch(preset)
        rows.append({
            "nproc": n,
            "threads": threads if device == "cpu" else "",
            "batch": batch,
            "rank_batch": batch // n,
            "samples_per_s": median(later),
            "gpu_mem_gib": history[-1].get("gpu_mem_gib", ""),
            "epoch1_s": history[0]["seconds"],
        })  # fmt: skip
        epoch_rows += [
            {"nproc": n, **{k: r.get(k, "") for k in EPOCH_COLUMNS[1:]}} for r in history
        ]
    base = rows[0]  # the smallest count
    for r in rows:
        speedup = r["samples_per_s"] / base["samples_per_s"]
        r["efficiency"] = speedup / (r["nproc"] / base["nproc"])
    return [{k: r[k] for k in COLUMNS} for r in rows], epoch_rows


def _preset_batch(preset: str) -> int:
    from mmslim.config import TrainConfig

    return TrainConfig.preset(preset).batch_size


def _bundle(data, frames_per_sequence: int | None, out_dir: Path) -> Path:
    """The data as one file every process reads (a subset when ``frames_per_sequence``)."""
    source = Path(data) if data is not None else sample_path("sample.npz")
    if frames_per_sequence is None:
        return source
    frames = load_frames(source)
    subset = frames.select(np.asarray(frames.frame) < frames_per_sequence)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "frames.npz"
    save_bundle(subset, path)
    return path


def _run(n, bundle, run_dir, preset, epochs, device, threads, batch_size) -> None:
    """One ``mmslim train`` under torchrun with ``n`` processes on this machine."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
        "-m", "mmslim", "train", "--stage", "amplitude", "--data", str(bundle),
        "--out", str(run_dir), "--preset", preset, "--epochs", str(epochs), "--device", device,
        "--overwrite",
    ]  # fmt: skip
    if batch_size is not None:
        cmd += ["--batch-size", str(batch_size)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"torchrun with {n} process(es) failed (exit {done.returncode}):\n"
            f"{done.stdout[-2000:]}{done.stderr[-4000:]}"
        )


__all__ = ["COLUMNS", "EPOCH_COLUMNS", "bench_ddp"]
