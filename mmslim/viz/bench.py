"""Plots of benchmark results: rate-distortion curves and the quantizer comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmslim.bench.rd import METRICS, curve
from mmslim.viz.labels import METRIC_LABELS, label

LABELS = METRIC_LABELS  # axis label (with unit) of each metric; one table in viz.labels


STYLES = {  # how each family is drawn: classical curves, ablation markers, mmSlim's curve on top
    "classical": dict(marker="o", ms=3, ls="-"),
    "ablation": dict(marker="D", ms=7, ls="none"),
    "mmslim": dict(marker="*", ms=14, ls="-", lw=2.5, zorder=3),
}


def plot_rd(rows: list[dict], out_dir) -> list[Path]:
    """One figure per scenario and kind, ``rd_{scenario}_{kind}.png``: each distortion against
    bits per element (log), a line per codec (mmSlim's operating points joined too), a marker
    per ablation. Needs matplotlib and seaborn."""
    import seaborn as sns
    from matplotlib.figure import Figure

    paths = []
    for scenario, kind in dict.fromkeys((r["scenario"], r["kind"]) for r in rows):
        kind_rows = [r for r in rows if (r["scenario"], r["kind"]) == (scenario, kind)]
        metrics, n_rows = METRICS[kind], -(-len(METRICS[kind]) // 5)  # five panels a row
        codecs = list(dict.fromkeys(r["codec"] for r in kind_rows))
        colours = dict(zip(codecs, sns.color_palette("tab10", len(codecs))))
        with sns.axes_style("whitegrid"):
            fig = Figure(figsize=(17, 3.2 * n_rows), layout="constrained")
            axes = fig.subplots(n_rows, 5, squeeze=False).ravel()
        for ax, metric in zip(axes, metrics):
            for codec in codecs:
                pts = [
                    r for r in curve(kind_rows, kind, codec) if np.isfinite(r.get(metric, np.nan))
                ]
                x, y = [r["bits_per_element"] for r in pts], [r[metric] for r in pts]
                family = pts[0]["family"] if pts else "classical"
                style = STYLES[family]
                ax.plot(x, y, color=colours[codec], label=codec, **style)
            ax.set(xscale="log", xlabel="bits per element", ylabel=label(metric, kind))
        for ax in axes[len(metrics) :]:
            ax.set_axis_off()
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=9)
        fig.suptitle(f"{kind}, {scenario} frames: distortion against rate "
                     f"({kind_rows[0]['frames']} frames)")  # fmt: skip
        paths.append(Path(out_dir) / f"rd_{scenario}_{kind}.png")
        fig.savefig(paths[-1], dpi=100)
    return paths


def plot_quantizer_bench(rows: list[dict]):
    """Six panels, one bar per variant: SSIM, PSNR, bits per element, log2 perplexity and
    dead-code share per branch (fine and coarse side by side), and the quantizers' own time per
    training step. Returns the figure."""
    import matplotlib.pyplot as plt
    import numpy as np

    names = [r["variant"] for r in rows]
    y = np.arange(len(rows))
    # Two rows of three panels: six in a row squeezed every bar label to a few pixels.
    fig, axes = plt.subplots(2, 3, figsize=(14, 2 * (0.3 * len(rows) + 1.3)), sharey=True)
    axes = axes.ravel()
    single = [("ssim", "validation SSIM"), ("psnr", "validation PSNR (dB)"),
              ("bits_per_element", "bits / element (ANS file)")]  # fmt: skip
    for ax, (key, title) in zip(axes[:3], single):
        ax.barh(y, [r[key] for r in rows], color="tab:blue")
        ax.set_title(title, fontsize=10)
    panels = [("perplexity", "log2 perplexity (ideal bits/index)", np.log2),
              ("dead", "dead-code share", np.asarray)]  # fmt: skip
    for ax, (key, title, f) in zip(axes[3:5], panels):
        ax.barh(y - 0.2, f([r[f"{key}_hi"] for r in rows]), 0.4, label="fine (hi)")
        ax.barh(y + 0.2, f([r[f"{key}_lo"] for r in rows]), 0.4, label="coarse (lo)")
        ax.set_title(title, fontsize=10)
    axes[3].legend(fontsize=8, loc="lower right")  # inside its panel: the top row is one colour
    axes[5].barh(y, [r["quantizer_ms"] for r in rows], color="tab:gray")
    axes[5].set_title("quantizer train step (ms)", fontsize=10)
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()  # shared: every panel lists the variants top down
    for ax in axes:
        ax.grid(axis="x", alpha=0.3)
    epochs = rows[0].get("epochs") if rows else None
    fig.suptitle("quantizer variants, amplitude stage"
                 + (f", {epochs:.0f} epochs each" if isinstance(epochs, (int, float)) else ""),
                 fontsize=11)  # fmt: skip
    fig.tight_layout()
    return fig


def plot_quality_vs_rate(summary: list[dict], title: str | None = None):
    """Validation SSIM against real bits per element, one point per (branches, variant) of
    :func:`summarise`, with the spread over seeds as error bars: all points (left), and the best
    ones, within 0.05 SSIM of the top (right). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 5), gridspec_kw={"width_ratios": [1, 1, 0.5]})
    markers = {"both": "o", "hi": "^", "lo": "v"}
    variants = list(dict.fromkeys(r["variant"] for r in summary))
    tab20 = plt.get_cmap("tab20").colors
    colours = tab20[::2] + tab20[1::2]  # the ten strong colours first
    top = max((r["ssim"] for r in summary), default=0.0)
    best = [r for r in summary if r["ssim"] >= top - 0.05]
    colour_of = {v: colours[i % len(colours)] for i, v in enumerate(variants)}
    for ax, rows in ((axes[0], summary), (axes[1], best)):
        for r in rows:
            ax.errorbar(r["bits_per_element"], r["ssim"], yerr=r["ssim_std"] or None, capsize=3,
                        marker=markers.get(r["branches"], "s"), ms=8, ls="none",
                        color=colour_of[r["variant"]])  # fmt: skip
        ax.set_xlabel("bits per element (ANS file, validation walkers)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("validation SSIM (amplitude)")
    axes[0].set_title("all variants", fontsize=10)
    axes[1].set_title("the best (within 0.05 SSIM of the top)", fontsize=10)
    axes[2].axis("off")
    # Two short legends instead of one entry per point: colour names the variant, marker the
    # branches that got it.
    from matplotlib.lines import Line2D

    by_colour = [Line2D([], [], color=colour_of[v], marker="o", ls="none", label=v)
                 for v in variants]  # fmt: skip
    shown = dict.fromkeys(r["branches"] for r in summary)
    by_marker = [Line2D([], [], color="0.3", marker=markers.get(b, "s"), ls="none",
                        label={"both": "both branches", "hi": "fine only", "lo": "coarse only"}
                        .get(b, b)) for b in shown]  # fmt: skip
    first = axes[2].legend(handles=by_colour, title="variant", fontsize=8, loc="upper left",
                           ncol=1 if len(variants) <= 14 else 2)  # fmt: skip
    axes[2].add_artist(first)
    axes[2].legend(handles=by_marker, title="branches", fontsize=8, loc="lower left")
    fig.suptitle(title or "quality against real rate (● both branches, ▲ fine only, ▼ coarse only;"
                 " bars: spread over seeds)", fontsize=11)  # fmt: skip
    fig.tight_layout()
    return fig


__all__ = ["plot_quality_vs_rate", "plot_quantizer_bench", "plot_rd"]
