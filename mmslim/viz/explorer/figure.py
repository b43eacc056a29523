"""The mask explorer's figure: 3 x 4 panels laid out once, redrawn fast.

Top row, the split: the input, the learned mask M, the mask used, a histogram of M with the
threshold; middle row, what each branch gets and sends: M·x, (1−M)·x and both index grids;
bottom row, what is rebuilt: each branch's output, their sum and its error (dB, or wrapped
radians for phase).

A redraw must stay well under a second on 2 busy cores, so :class:`ExplorerFigure` draws axes,
ticks and colour bars once per set of colour maps and limits (the last few are kept), and
otherwise pastes them and draws on them only what changes -- matplotlib's blitting, on an Agg canvas
("Faster rendering by using blitting" in the matplotlib docs) -- and its PNG is rendered at the
size it is shown, with fast zlib settings. Colour limits of physical maps are fixed per walker
and those of errors rounded to 1-2-5 steps, so that moving through frames keeps the background.
"""

from __future__ import annotations

import io

import numpy as np
import PIL.Image
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from mmslim.data.radar import RadarConfig
from mmslim.viz.codebooks import code_colormap
from mmslim.viz.maps import STYLES, plot_range_doppler

# panel -> (row, column): the split on top, what each branch gets and sends, what is rebuilt
PANELS = {
    "input": (0, 0), "mask_learned": (0, 1), "mask": (0, 2), "histogram": (0, 3),
    "x_hi_in": (1, 0), "x_lo_in": (1, 1), "indices_hi": (1, 2), "indices_lo": (1, 3),
    "x_hat_hi": (2, 0), "x_hat_lo": (2, 1), "x_hat": (2, 2), "error": (2, 3),
}  # fmt: skip
GRIDS = ("indices_hi", "indices_lo")  # drawn without a colour bar: colours are code labels
HIST_BINS = np.linspace(0.0, 1.0, 51)  # bin edges of the learned-mask histogram
BACKGROUNDS = 4  # drawn backgrounds kept, by colour maps and limits (both kinds, a few scales)


class ExplorerFigure:
    """The explorer's 3 x 4 panels on one figure, laid out once.

    :meth:`update` swaps the images' data, colour maps and limits, the titles and the
    histogram's bars: no axes, colour bars or layout are made again. :meth:`png` renders PNG
    bytes at the figure's size in pixels; it draws axes, ticks and colour bars only for colour
    maps and limits it has not drawn lately, and otherwise pastes that background and draws on
    it only what changes (images, titles, bars), as matplotlib's blitting does.
    """

    def __init__(
        self, fig: Figure | None = None, radar: RadarConfig | None = None, size=None, dpi=100
    ):
        self.figure = fig if fig is not None else Figure(figsize=size or (10.0, 8.2), dpi=dpi)
        self.figure.clear()
        ax = self.figure.subplots(3, 4)
        self.axes = {name: ax[r, c] for name, (r, c) in PANELS.items()}
        self.images = {}
        for name, a in self.axes.items():
            if name == "histogram":
                continue
            shape = (14, 4) if name in GRIDS else (224, 64)  # replaced at the first update
            plot_range_doppler(a, np.zeros(shape), radar, "normalized", colorbar=name not in GRIDS)
            self.images[name] = a.images[-1]
            a.label_outer()  # axes are shared: labels on the left column and the bottom row
        h = self.axes["histogram"]
        self.bars = h.bar(HIST_BINS[:-1], np.ones(len(HIST_BINS) - 1), np.diff(HIST_BINS),
                          align="edge", color="tab:purple")  # fmt: skip
        self.threshold_line = h.axvline(0.5, color="k", ls="--", label="threshold")
        h.set(xlim=(0, 1), xlabel="learned mask value M", ylabel="cells", yscale="log")
        h.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # plain text: no TeX
        h.yaxis.set_minor_formatter(NullFormatter())
        self.legend = h.legend(fontsize=8, loc="upper right")
        for a in self.axes.values():
            a.set_title(" ", fontsize=10, y=1.0)  # a fixed y: no search for a place at each draw
        self.title = self.figure.suptitle(" ")
        self.laid_out, self.background, self.backgrounds = False, None, {}
        self.code_colors, self.canvas = None, None  # the index grids' colours; set by png()
        # drawn on the pasted background at each png(); spines again: images cover their edge
        self.dynamic = [*self.images.values(), *self.bars, self.threshold_line, self.legend]
        self.dynamic.append(self.title)
        self.dynamic += [a.title for a in self.axes.values()]
        self.dynamic += [
            s for n, a in self.axes.items() if n != "histogram" for s in a.spines.values()
        ]

    def _show(self, name: str, data, kind: str, title: str, limits=None, cmap=None) -> None:
        """One map panel: data, the colour map (``cmap``, else that of ``kind``), label and
        limits of ``kind``, and the title."""
        default_cmap, label, fixed = STYLES[kind]
        cmap = cmap or default_cmap
        limits = tuple(limits or fixed or symmetric_limits(data))
        im = self.images[name]
        im.set_data(data)
        if im.cmap.name != getattr(cmap, "name", cmap):  # a colour bar redoes itself: on change
            im.set_cmap(cmap)
        if im.colorbar is not None and im.colorbar.ax.get_ylabel() != label:
            im.colorbar.set_label(label)
        if im.get_clim() != limits:
            im.set_clim(*limits)
        im.axes.title.set_text(title)

    def update(self, state: dict) -> ExplorerFigure:
        """Show an :func:`explorer_state`; returns self."""
        kind, unit = state["kind"], state["unit"]
        err = "error" if kind == "amplitude" else "phase_error"
        phys = state["phys_limits"]
        t, b = state["threshold"], state["blend"]
        self._show("input", state["x_phys"], kind, f"input x ({kind})", phys)
        self._show("mask_learned", state["mask_learned"], "mask", "learned mask M")
        used = f"mask used: blend {b:.2f}, mean {state['mask_mean']:.2f}"
        self._show("mask", state["mask"], "mask", used)
        self._show("x_hi_in", state["x_hi_in"], "normalized", "mask·x → fine branch")
        self._show("x_lo_in", state["x_lo_in"], "normalized", "(1−mask)·x → coarse branch")
        self._show("x_hat_hi", state["x_hat_hi"], "normalized", "x̂_hi (fine branch)")
        self._show("x_hat_lo", state["x_hat_lo"], "normalized", "x̂_lo (coarse branch)")
        title = f"x̂ (SSIM {state['ssim']:.3f}, PSNR {state['psnr']:.1f} dB)"
        self._show("x_hat", state["x_hat_phys"], kind, title, phys)
        self._show("error", state["error"], err, f"x̂ − x (rms {state['error_rms']:.2f} {unit})")
        n = state["num_codes"]
        if self.code_colors is None or self.code_colors.N != n:
            self.code_colors = code_colormap(n)
            self.code_colors.name = f"codes-{n}"  # the name tells the colour maps apart
        for name, label in (("indices_hi", "fine"), ("indices_lo", "coarse")):
            idx = state[name]
            title = f"{label} indices {idx.shape[0]}×{idx.shape[1]}"
            self._show(name, idx, "normalized", title, (-0.5, n - 0.5), self.code_colors)
        counts, _ = np.histogram(state["mask_learned"], HIST_BINS)
        for bar, c in zip(self.bars, counts):
            bar.set_height(c)
        h = self.axes["histogram"]
        h.set_ylim(0.8, 1.5 * counts.sum())  # fixed for a frame size: the ticks stay
        self.threshold_line.set_xdata([t, t])
        h.title.set_text(f"learned M, threshold {t:.2f}")
        self.title.set_text(f"{state['subject']}, frame {state['frame']} ({kind})")
        if not self.laid_out:  # once, with real titles; later titles have the same length
            self.figure.tight_layout()
            self.figure.set_layout_engine(None)  # else every savefig draws twice
            self.laid_out = True
        return self

    def png(self, compression: int = 1) -> bytes:
        """The figure as PNG bytes, (width x height in inches) x dpi pixels."""
        if self.canvas is None:  # an Agg canvas of its own (a pyplot figure keeps its canvas)
            self.canvas = FigureCanvasAgg(self.figure)
        canvas = self.canvas
        key = [(im.cmap.name, im.get_clim(), im.colorbar and im.colorbar.ax.get_ylabel())
               for im in self.images.values()]  # fmt: skip
        key += [self.axes["histogram"].get_ylim(), self.figure.bbox.bounds]
        key = repr(key)
        if key not in self.backgrounds:  # axes, ticks, colour bars: drawn only when new
            for a in self.dynamic:
                a.set_visible(False)
            canvas.draw()
            self.backgrounds[key] = canvas.copy_from_bbox(self.figure.bbox)
            for a in self.dynamic:
                a.set_visible(True)
        self.backgrounds[key] = self.background = self.backgrounds.pop(key)  # now the newest
        while len(self.backgrounds) > BACKGROUNDS:
            self.backgrounds.pop(next(iter(self.backgrounds)))  # the least recently used
        canvas.restore_region(self.background)
        renderer = canvas.get_renderer()
        for a in self.dynamic:
            a.draw(renderer)
        rgba = canvas.buffer_rgba()  # (height, width, 4) uint8
        buf = io.BytesIO()
        PIL.Image.frombuffer("RGBA", rgba.shape[1::-1], rgba).convert("RGB").save(
            buf, "png", compress_level=compression
        )
        return buf.getvalue()


def symmetric_limits(error) -> tuple[float, float]:
    """Colour limits ``(-v, v)`` of an error map: v is its 99.5th percentile of ``|error|`` (a
    few extreme cells, such as the leakage, do not wash out the rest) rounded up to 1, 2 or 5
    times a power of ten, so that the scale, and the drawn background, stay from frame to frame."""
    v = float(np.nanpercentile(np.abs(error), 99.5))
    if not np.isfinite(v) or v <= 0:
        return (-1.0, 1.0)
    p = 10.0 ** np.floor(np.log10(v))
    v = next(m * p for m in (1, 2, 5, 10) if m * p >= v * (1 - 1e-9))
    return (-v, v)


def draw_explorer(fig: Figure | None, state: dict, radar: RadarConfig | None = None) -> Figure:
    """Draw an :func:`explorer_state` on ``fig`` (a new 10 x 8.2 in figure if None): the split
    on the top row, what each branch gets and sends in the middle, what was rebuilt below."""
    return ExplorerFigure(fig, radar).update(state).figure
