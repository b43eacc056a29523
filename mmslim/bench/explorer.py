"""How fast the mask explorer of notebook 08 redraws (:mod:`mmslim.viz.explorer`).

Times :meth:`~mmslim.viz.explorer.widget.MaskExplorer.refresh`, what the widget runs after a
change: the state (computed, or taken from the cache), the figure update and the PNG. One row
per kind of change:

- a new frame, a new threshold (the model runs once), a setting seen before (the cache), a new
  map kind (colour maps change, so axes and colour bars are drawn again);
- for comparison, a rebuild: a new figure of the earlier 19 x 8 in size, drawn in full and
  encoded as the inline backend does (``bbox_inches="tight"``, default zlib level).

Reported: wall seconds (what a user waits for on this machine, its load included), CPU seconds
of this process (the work itself: the redraw runs on one thread, so on an idle machine the wall
time is about this), median and max over the repeats, and the PNG's size.
``mmslim bench explorer`` prints the table.
"""

from __future__ import annotations

import io
import statistics
import time
from pathlib import Path

from matplotlib.figure import Figure

from mmslim.data.dataset import RadarFrames, load_frames
from mmslim.data.samples import sample_path
from mmslim.training.checkpoint import load_model
from mmslim.viz.explorer import ExplorerFigure, explorer_state, mask_explorer, subject_frames


def _timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _row(case: str, times: list[tuple[float, float]], png: bytes) -> dict:
    wall, cpu = [t[0] for t in times], [t[1] for t in times]
    return {"change": case, "n": len(times), "wall_s_median": statistics.median(wall),
            "wall_s_max": max(wall), "cpu_s_median": statistics.median(cpu),
            "png_kb": len(png) / 1e3}  # fmt: skip


def bench_explorer(
    data: Path | None = None, checkpoint_dir: Path | None = None, repeats: int = 5
) -> list[dict]:
    """Rows of redraw times, one per kind of change (see the module docstring).

    data: frames (default: the shipped sample); checkpoint_dir: holds amplitude.pt and phase.pt
    (default: the shipped ones); repeats: redraws per kind of change.
    """
    ckpt = Path(checkpoint_dir) if checkpoint_dir else sample_path("pretrained")
    dataset = RadarFrames(load_frames(data or sample_path("sample.npz")))
    model_amp, state = load_model(ckpt / "amplitude.pt", "amplitude")
    subject = state["split"]["val"][0]
    n = len(subject_frames(dataset, subject))
    if not 1 <= repeats <= n - 1:
        raise ValueError(f"repeats must lie in [1, {n - 1}] ({subject} has {n} frames)")
    model_phase, _ = load_model(ckpt / "phase.pt", "phase")
    ex = mask_explorer(model_amp, model_phase, dataset, subject=subject, frame=0)
    c = ex.controls

    def change(name, value):
        c[name].value = value  # no running event loop here: the redraw happens at once

    rows = []
    frames = [_timed(lambda f=f: change("frame", f)) for f in range(1, repeats + 1)]
    rows.append(_row("new frame", frames, ex.image.value))
    start = c["threshold"].value
    grid = [t for t in (i / 100 for i in range(101)) if t != start]  # the slider's values
    steps = grid[:: max(1, len(grid) // repeats)][:repeats]  # spread over [0, 1], all new
    thresholds = [_timed(lambda t=t: change("threshold", t)) for t in steps]
    rows.append(_row("new threshold", thresholds, ex.image.value))
    change("threshold", start)
    seen = [_timed(lambda f=f: change("frame", f)) for f in range(1, repeats + 1)]
    rows.append(_row("seen before (cached)", seen, ex.image.value))
    kinds = [_timed(lambda k=k: change("kind", k)) for k in ["phase", "amplitude"] * repeats]
    rows.append(_row("new map kind", kinds, ex.image.value))

    def rebuild(frame: int) -> bytes:
        state = explorer_state(model_amp, dataset, subject, frame, "amplitude", start)
        fig = ExplorerFigure(Figure(figsize=(19, 8))).update(state).figure
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        return buf.getvalue()

    pngs = []
    rebuilds = [_timed(lambda f=f: pngs.append(rebuild(f))) for f in range(1, repeats + 1)]
    rows.append(_row("rebuild (new 19x8 in figure, inline PNG)", rebuilds, pngs[-1]))
    return rows


__all__ = ["bench_explorer"]
