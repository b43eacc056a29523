"""Plots of codebooks: code usage, index grids, where codes fire, a toy 2-D quantizer, rates.

Companion of :mod:`mmslim.viz.maps` (maps and curves). Every function returns the figure.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap, LogNorm, hsv_to_rgb

from mmslim.data.radar import RadarConfig
from mmslim.viz.maps import plot_range_doppler


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def usage_summary(counts) -> dict[str, float]:
    """From (K,) counts: perplexity (exp of the usage entropy), share of dead codes, codes used,
    the most used code's share, and the fewest codes that together take half of the indices."""
    c = _np(counts).astype(np.float64)
    p = c / max(c.sum(), 1.0)
    nz = p[p > 0]
    ranked = np.sort(p)[::-1]
    return {
        "perplexity": float(np.exp(-(nz * np.log(nz)).sum())),
        "dead_share": float((c == 0).mean()),
        "used": int((c > 0).sum()),
        "top_share": float(ranked[0]),  # share of the indices that the most used code takes
        "codes_for_half": int(np.searchsorted(np.cumsum(ranked), 0.5) + 1),  # fewest codes
    }


def plot_code_usage(counts, title: str | None = None):
    """Code usage of one or more codebooks, one row each: how often every code index fires, and
    the same counts sorted (log scale), annotated with perplexity and the dead-code share.

    counts: (K,) counts, or a dict ``{name: (K,) counts}`` (e.g. ``{"hi": ..., "lo": ...}``).
    """
    named = counts if isinstance(counts, dict) else {"": counts}
    fig, axes = plt.subplots(len(named), 2, figsize=(11, 3.0 * len(named)), squeeze=False)
    for (name, c), (ax_hist, ax_sorted) in zip(named.items(), axes):
        c = _np(c).astype(np.float64)
        s = usage_summary(c)
        share = c / max(c.sum(), 1.0)
        ax_hist.bar(np.arange(len(c)), share, width=1.0, color="tab:blue")
        ax_hist.set_xlabel("code index")
        ax_hist.set_ylabel("share of indices")
        ax_hist.set_title(f"{name} usage by code".strip(), fontsize=10)
        ranked = np.sort(share)[::-1]
        ax_sorted.semilogy(np.arange(1, len(c) + 1), np.where(ranked > 0, ranked, np.nan))
        ax_sorted.axvline(s["used"], color="tab:red", ls="--", lw=1, label=f"{s['used']} used")
        ax_sorted.set_xlabel("rank of code (most used first)")
        ax_sorted.set_ylabel("share of indices (log)")
        ax_sorted.set_title(
            f"{name} perplexity {s['perplexity']:.1f} of {len(c)}, "
            f"{100 * s['dead_share']:.1f}% dead".strip(),
            fontsize=10,
        )
        ax_sorted.legend(fontsize=8)
        ax_sorted.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def code_colormap(num_codes: int) -> ListedColormap:
    """A colour per code index, neighbouring indices far apart in hue (indices are labels, not
    magnitudes: a smooth colour map would suggest an order that is not there)."""
    k = np.arange(num_codes)
    hsv = np.stack(
        [(k * 0.618034) % 1.0, np.full(num_codes, 0.75), 0.55 + 0.4 * ((k * 0.381966) % 1.0)], -1
    )
    return ListedColormap(hsv_to_rgb(hsv))


def plot_index_grid(
    indices,
    num_codes: int | None = None,
    radar: RadarConfig | None = None,
    ax=None,
    title: str | None = None,
):
    """One grid of code indices, (h, w) int, drawn over the frame it codes (range x velocity),
    one colour per code (no colour bar: the colours are labels, not values). Returns the figure."""
    idx = _np(indices)
    idx = idx[0] if idx.ndim == 3 else idx
    num_codes = num_codes or int(idx.max()) + 1
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 4.2))
    h, w = idx.shape
    title = title or f"indices {h}×{w} ({len(np.unique(idx))} distinct)"
    plot_range_doppler(ax, idx, radar, "normalized", title, vmin=-0.5, vmax=num_codes - 0.5,
                colorbar=False, cmap=code_colormap(num_codes))  # fmt: skip
    return ax.figure


def plot_usage_heatmap(
    indices_by_group: dict[str, np.ndarray], num_codes: int, title: str | None = None, top=64
):
    """Which codes each group (e.g. each walker) uses: rows are groups, columns the ``top``
    codes most used overall (most used first), colour the share of the group's indices.

    indices_by_group: ``{name: indices of any shape}``.
    """
    names = list(indices_by_group)
    counts = np.stack(
        [np.bincount(_np(indices_by_group[n]).ravel(), minlength=num_codes) for n in names]
    )  # (G, K)
    order = np.argsort(-counts.sum(0), kind="stable")[:top]
    order = order[counts.sum(0)[order] > 0]  # codes nobody uses would be empty columns
    share = counts[:, order] / np.maximum(counts.sum(1, keepdims=True), 1)  # (G, top)
    fig, ax = plt.subplots(figsize=(min(14, 2 + 0.16 * len(order)), 1.2 + 0.32 * len(names)))
    im = ax.imshow(
        np.where(share > 0, share, np.nan),
        aspect="auto",
        cmap="viridis",
        norm=LogNorm(vmin=max(share[share > 0].min(), 1e-4), vmax=share.max()),
        interpolation="nearest",
    )
    ax.set_yticks(range(len(names)), names, fontsize=8)
    step = max(1, len(order) // 16)
    ax.set_xticks(range(0, len(order), step), order[::step], fontsize=8, rotation=90)
    ax.set_xlabel("code index (ordered by overall use; blank = never used by that row)")
    fig.colorbar(im, ax=ax, label="share of the row's indices (log)")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_code_locations(indices, codes, radar: RadarConfig | None = None, title: str | None = None):
    """Where each of ``codes`` fires: for every latent position, the share of frames in which
    that position holds the code. indices: (N, h, w) int; codes: a few code indices."""
    idx = _np(indices)
    fig, axes = plt.subplots(1, len(codes), figsize=(3.4 * len(codes), 4.2), squeeze=False)
    for ax, code in zip(axes[0], codes):
        freq = (idx == code).mean(axis=0)  # (h, w)
        share = 100 * (idx == code).mean()
        plot_range_doppler(ax, freq, radar, "mask", f"code {code} ({share:.1f}% of indices)",
                    vmin=0, vmax=max(freq.max(), 1e-6), label="share of frames")  # fmt: skip
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_toy_vq(points, codebooks, assignment, title: str | None = None):
    """A 2-D quantizer at work: data points coloured by their nearest codeword, and every
    codeword's path over training (start ○, end ★; a dead code, one no point chose at the end,
    ends in a grey ✕).

    points: (M, 2); codebooks: (T, K, 2), the codebook after each step; assignment: (M,) int.
    """
    pts, books, assign = _np(points), _np(codebooks), _np(assignment)
    k = books.shape[1]
    grey = (7,) if k <= 9 else (14, 15)  # grey is kept for dead codes
    palette = [c for i, c in enumerate(plt.get_cmap("tab10" if k <= 9 else "tab20").colors)
               if i not in grey]  # fmt: skip
    cmap = ListedColormap(palette)
    fig, ax = plt.subplots(figsize=(6, 5.5))
    ax.scatter(pts[:, 0], pts[:, 1], c=cmap(assign % cmap.N), s=6, alpha=0.5)
    for j in range(k):
        path = books[:, j]  # (T, 2)
        used = np.any(assign == j)
        ax.plot(path[:, 0], path[:, 1], "-", color="k" if used else "0.6", lw=1)
        ax.plot(*path[0], "o", mfc="none", mec="k", ms=7)
        if used:
            ax.plot(*path[-1], "*", color=cmap(j % cmap.N), mec="k", ms=14)
        else:  # dead at the end (under plain gradients it never moved): a grey cross
            ax.plot(*path[-1], "X", color="0.55", mec="k", ms=10)
    ax.set_xlabel("latent dimension 1")
    ax.set_ylabel("latent dimension 2")
    ax.set_aspect("equal")
    ax.set_title(title or "codewords (○ start, ★ end, grey ✕: dead) and points by nearest code")
    fig.tight_layout()
    return fig


def plot_rate_breakdown(reports: dict, title: str | None = None):
    """Bits per element of each coding mode, split into payload, side info and container
    (header, CRC, frame lengths); a dashed tick marks the prior's ideal rate where known.

    reports: ``{mode: mmslim.codec.RateReport}``.
    """
    modes = list(reports)
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(modes), 4))
    bottom = np.zeros(len(modes))
    for field, label in (
        ("payload_bytes", "indices (incl. Huffman tables)"),
        ("side_bytes", "side info (min, max per frame)"),
        ("container_bytes", "header, CRC, frame lengths"),
    ):
        vals = np.array([_bytes(reports[m], field) * 8 / reports[m].num_elements for m in modes])
        ax.bar(modes, vals, bottom=bottom, label=label)
        bottom += vals
    for i, m in enumerate(modes):
        ideal = reports[m].ideal_bits_per_element
        if ideal is not None:
            ax.hlines(ideal, i - 0.4, i + 0.4, colors="k", linestyles="--", lw=1)
        ax.text(i, bottom[i], f"{bottom[i]:.3f}", ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("bits per input element")
    ax.set_title(title or "rate by coding mode (dashed: ideal, prior cross-entropy)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def _bytes(report, field: str) -> int:
    if field == "container_bytes":
        return report.header_bytes + report.framing_bytes
    return getattr(report, field)


__all__ = [
    "code_colormap",
    "plot_code_locations",
    "plot_code_usage",
    "plot_index_grid",
    "plot_rate_breakdown",
    "plot_toy_vq",
    "plot_usage_heatmap",
    "usage_summary",
]
