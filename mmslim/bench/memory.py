"""Peak memory of one ``compress_maps`` / ``decompress_maps`` call against the number of frames
in it, for ``mmslim bench speed``.

Each figure comes from a fresh Python process (``sys.executable``), so that nothing an earlier
measurement allocated counts: it loads the model and the frames, makes one warm-up call, resets
the kernel's peak-RSS counter (Linux ``/proc/self/clear_refs``), makes the call and reads
``VmHWM``. Frames are coded independently and streamed in batches, so the rise should not grow
with the number of frames beyond the output itself.

Besides the backends, the ``exported`` rows measure what a sensor runs: the folder of
``mmslim export`` under :class:`mmslim.export.sensor.ExportedCodec`, in a process that never
imports PyTorch (this module imports it only inside the functions that need it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmslim.bench.speed import SpeedSettings


def bench_memory(checkpoint, data, settings: SpeedSettings) -> list[dict]:
    """Peak resident memory of one compress and one decompress call against the frames in it,
    each in a fresh process: the peak during the call (MB, the whole process) and how far it
    rose above what was resident before the call (model, frames, one warm-up call done)."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from mmslim.bench.speed import _held_out
    from mmslim.codec.maps import compress_maps
    from mmslim.export.onnx import export_onnx

    model, kind, maps, amp = _held_out(data, checkpoint, max(settings.memory_frames))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        exported = Path(tmp) / "exported"
        export_onnx(model, exported, maps.shape[1:], kind)
        np.save(Path(tmp) / "maps.npy", maps)
        np.save(Path(tmp) / "amp.npy", amp)
        backends = [*settings.backends, *(["exported"] if "onnx" in settings.backends else [])]
        for backend in backends:
            for n in settings.memory_frames:
                blob = Path(tmp) / f"{n}.mmsl"
                blob.write_bytes(compress_maps(model, maps[:n], kind, mask_source=amp[:n]))
                for op in ("compress", "decompress"):
                    args = {"checkpoint": str(checkpoint or ""), "data": str(data or ""),
                            "frames": n, "backend": backend, "op": op, "file": str(blob),
                            "threads": max(settings.threads), "folder": tmp}  # fmt: skip
                    child = "_exported_child" if backend == "exported" else "_memory_child"
                    code = f"from mmslim.bench.memory import {child}; {child}({args!r})"
                    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                         text=True, check=True).stdout  # fmt: skip
                    rows.append({"backend": backend, "op": op, "frames": n,
                                 **json.loads(out.strip().splitlines()[-1])})  # fmt: skip
    return rows


def _memory_child(args: dict) -> None:
    """Run in a fresh process by :func:`bench_memory`: prints the peaks as JSON."""
    from pathlib import Path

    import torch

    from mmslim.bench.speed import _held_out
    from mmslim.codec.maps import compress_maps, decompress_maps

    torch.set_num_threads(args["threads"])
    n, backend = args["frames"], args["backend"]
    model, kind, maps, amp = _held_out(args["data"] or None, args["checkpoint"] or None, n)
    data = Path(args["file"]).read_bytes()
    warm = compress_maps(model, maps[:1], kind, mask_source=amp[:1], backend=backend)
    decompress_maps(model, warm, backend=backend)
    before = _reset_peak_mb()
    if args["op"] == "compress":
        compress_maps(model, maps, kind, mask_source=amp, backend=backend)
    else:
        decompress_maps(model, data, backend=backend)
    _report(before)


def _exported_child(args: dict) -> None:
    """As :func:`_memory_child`, for the exported folder under ``ExportedCodec``, with the
    frames saved by :func:`bench_memory`; fails if PyTorch was imported."""
    from pathlib import Path

    import numpy as np

    from mmslim.export.sensor import ExportedCodec

    folder, n = Path(args["folder"]), args["frames"]
    maps, amp = np.load(folder / "maps.npy")[:n], np.load(folder / "amp.npy")[:n]
    codec = ExportedCodec(folder / "exported", threads=args["threads"])
    data = Path(args["file"]).read_bytes()
    source = amp if codec.kind == "phase" else None
    codec.decompress(codec.compress(maps[:1], None if source is None else source[:1]))
    before = _reset_peak_mb()
    if args["op"] == "compress":
        codec.compress(maps, source)
    else:
        codec.decompress(data)
    if "torch" in sys.modules:
        raise RuntimeError("the exported codec imported PyTorch")
    _report(before)


def _report(before: float) -> None:
    peak = _status_mb("VmHWM")
    print(json.dumps({"peak_mb": peak, "call_mb": peak - before}))


def _status_mb(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, MB (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status: peak memory needs Linux")


def _reset_peak_mb() -> float:
    """Reset this process's peak resident memory to what is resident now (Linux
    ``clear_refs``), and return that, MB: the next ``VmHWM`` is the peak since this call."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_mb("VmRSS")


__all__ = ["bench_memory"]
