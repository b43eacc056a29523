"""The mask explorer widget: ipywidgets controls (walker, map kind, frame, threshold, blend),
a summary line and the figure, for JupyterLab.

Built for a responsive feel on 2 CPU cores: states are computed once per setting and cached,
one :class:`~mmslim.viz.explorer.figure.ExplorerFigure` is reused and sent to an ``Image``
widget as PNG bytes rendered at the size it is shown (so text keeps its size), sliders report
only when released, and a burst of changes (an arrow key held down on a slider) redraws once,
for the last setting (:class:`Debouncer`, after the ipywidgets docs' debounce recipe).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass

import torch

from mmslim.config import KINDS
from mmslim.data.dataset import FrameSet, RadarFrames
from mmslim.data.radar import RadarConfig
from mmslim.viz.explorer.figure import ExplorerFigure
from mmslim.viz.explorer.state import explorer_state, subject_frames


@dataclass
class ExplorerConfig:
    """How the widget renders and reacts."""

    width_px: int = 1000  # image width: about a notebook column, so text is not scaled down
    height_px: int = 820  # image height (3 rows of maps)
    dpi: int = 100  # 10 pt text is 14 px
    png_compression: int = 1  # zlib level: 1 encodes several times faster than 6, a bit larger
    debounce_s: float = 0.15  # a change redraws after this much quiet; each change restarts it
    cache_size: int = 128  # states kept, by (kind, walker, frame, threshold, blend)
    threads: int | None = 1  # torch threads for one frame (more only spin on a busy CPU)


def summary_html(state: dict) -> str:
    """The line above the explorer's figure, every number with its unit."""
    return (
        f"<b>{state['subject']}</b>, frame {state['frame']} ({state['kind']}) · "
        f"SSIM <b>{state['ssim']:.3f}</b> · PSNR {state['psnr']:.1f} dB (normalised map) · "
        f"rms error <b>{state['error_rms']:.2f} {state['unit']}</b> · "
        f"threshold {state['threshold']:.2f}, mask mean {state['mask_mean']:.2f} "
        f"(share sent to the fine branch)"
    )


class Debouncer:
    """Call ``fn`` once, ``delay`` s after the last of a burst of calls (the debounce recipe
    of the ipywidgets docs, on the kernel's asyncio loop); with no running loop (a script, a
    test), call it at once. ``fn`` reads the controls when it runs, so it draws the latest."""

    def __init__(self, fn, delay: float):
        self.fn, self.delay, self.pending = fn, delay, None

    def __call__(self, change=None) -> None:
        if self.pending is not None:
            self.pending.cancel()  # a newer change supersedes it
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.pending = None
            self.fn()
            return
        self.pending = loop.call_later(self.delay, self._fire)

    def _fire(self) -> None:
        self.pending = None
        self.fn()


class MaskExplorer:
    """The explorer widget (see :func:`mask_explorer`). ``controls`` holds the control widgets
    by name, ``image`` and ``summary`` what they drive, ``widget`` the box shown; ``state`` is
    the state last drawn and ``redraws`` counts draws."""

    def __init__(self, models: dict, dataset: RadarFrames, radar, config: ExplorerConfig, start):
        import ipywidgets as w

        self.models, self.dataset, self.config = models, dataset, config
        self.cache: OrderedDict = OrderedDict()
        size = (config.width_px / config.dpi, config.height_px / config.dpi)
        self.figure = ExplorerFigure(None, radar, size, config.dpi)
        subject, frame, kind, threshold, blend = start
        n = len(subject_frames(dataset, subject))
        if not 0 <= frame < n:
            raise ValueError(f"frame must lie in [0, {n}) for {subject}, got {frame}: pick another")
        if threshold is None:
            threshold = self._state(kind, subject, frame, None, blend)["threshold"]
        slider = {"continuous_update": False, "style": {"description_width": "initial"}}
        self.controls = {
            "subject": w.Dropdown(options=dataset.frames.subjects(), value=subject,
                                  description="walker"),
            "kind": w.Dropdown(options=[k for k in KINDS if models[k] is not None], value=kind,
                               description="map"),
            "frame": w.IntSlider(frame, 0, n - 1, description="frame", **slider),
            "threshold": w.FloatSlider(threshold, min=0, max=1, step=0.01,
                                       description="threshold", **slider),
            "blend": w.FloatSlider(blend, min=0, max=1, step=0.05, description="blend",
                                   **slider),
        }  # fmt: skip
        self.summary = w.HTML()
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%", height="auto"))
        self.widget = w.VBox(
            [
                w.HBox([self.controls["subject"], self.controls["kind"], self.controls["frame"]]),
                w.HBox([self.controls["threshold"], self.controls["blend"]]),
                self.summary,
                self.image,
            ]
        )
        self.state, self.redraws = None, 0
        self.request = Debouncer(self.refresh, config.debounce_s)
        self.controls["subject"].observe(self._new_subject, names="value")
        for c in self.controls.values():
            c.observe(self.request, names="value")
        self.refresh()

    def _state(self, kind, subject, frame, threshold, blend) -> dict:
        """:func:`explorer_state`, cached (least recently used dropped first)."""
        key = (
            kind,
            subject,
            frame,
            None if threshold is None else round(threshold, 4),
            round(blend, 4),
        )
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        threads = torch.get_num_threads()
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        try:
            state = explorer_state(self.models[kind], self.dataset, subject, frame, kind,
                                   threshold, blend)  # fmt: skip
        finally:
            torch.set_num_threads(threads)
        self.cache[key] = state
        while len(self.cache) > self.config.cache_size:
            self.cache.popitem(last=False)
        return state

    def _new_subject(self, change) -> None:
        n = len(subject_frames(self.dataset, change["new"]))
        self.controls["frame"].value = min(self.controls["frame"].value, n - 1)
        self.controls["frame"].max = n - 1

    def refresh(self) -> dict:
        """Draw the controls' current setting now; returns its state."""
        v = {name: c.value for name, c in self.controls.items()}
        state = self._state(v["kind"], v["subject"], v["frame"], v["threshold"], v["blend"])
        self.summary.value = summary_html(state)
        self.figure.update(state)
        self.image.value = self.figure.png(self.config.png_compression)
        self.state, self.redraws = state, self.redraws + 1
        return state

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def mask_explorer(
    model_amp,
    model_phase,
    frames: FrameSet | RadarFrames,
    radar: RadarConfig | None = None,
    *,
    subject: str | None = None,
    frame: int = 0,
    kind: str = "amplitude",
    threshold: float | None = None,
    blend: float = 0.0,
    config: ExplorerConfig | None = None,
) -> MaskExplorer:
    """An ipywidgets explorer: walker and map-kind drop-downs, frame, threshold and blend
    sliders, a summary line and the :class:`ExplorerFigure`, redrawn after each change.

    model_amp, model_phase: trained models of each stage (``model_phase`` may be None: then only
    amplitude is offered). frames: the frames to browse. subject (default: the first walker),
    frame, kind, threshold (None: Otsu's of the first frame shown) and blend: where the
    controls start. Display the returned :class:`MaskExplorer` (``display(explorer)``).
    """
    dataset = frames if isinstance(frames, RadarFrames) else RadarFrames(frames)
    models = {"amplitude": model_amp, "phase": model_phase}
    if kind not in KINDS or models[kind] is None:
        offered = [k for k in KINDS if models[k] is not None]
        raise ValueError(f"kind {kind!r} has no model here; choose one of {offered}")
    subject = subject or dataset.frames.subjects()[0]
    start = (subject, frame, kind, threshold, blend)
    return MaskExplorer(models, dataset, radar, config or ExplorerConfig(), start)
