"""Plots of range-Doppler maps, training curves, reconstructions and masks.

Every map is drawn in physical coordinates: range (m) across, radial velocity (m/s) up, from
:class:`~mmslim.data.radar.RadarConfig`, with a colour bar in the map's unit (dB, rad, or the
[0, 1] of normalised maps). A coarser grid (e.g. a 56 x 16 latent grid) covering the same frame
is drawn over the same extent. Maps may be numpy arrays or tensors, ``(H, W)`` or ``(1, H, W)``.

Every function returns the figure; codebook and rate plots are in :mod:`mmslim.viz.codebooks`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from mmslim.data.arrays import denormalize
from mmslim.data.radar import RadarConfig
from mmslim.metrics.radar import wrap_phase
from mmslim.viz.labels import label as readable

# kind -> (colour map, colour-bar label, fixed (vmin, vmax) or None)
STYLES: dict[str, tuple[str, str, tuple[float, float] | None]] = {
    "amplitude": ("viridis", "amplitude (dB)", None),
    "phase": ("twilight", "phase (rad)", (-np.pi, np.pi)),
    "normalized": ("viridis", "normalised value", (0.0, 1.0)),
    "mask": ("magma", "mask M", (0.0, 1.0)),
    "error": ("RdBu_r", "error (dB)", None),
    "phase_error": ("RdBu_r", "wrapped error (rad)", (-np.pi, np.pi)),
    "normalized_error": ("RdBu_r", "error (normalised)", None),
}


def as_map(x) -> np.ndarray:
    """A tensor or array of shape (H, W), (1, H, W) or (1, 1, H, W) -> (H, W) float numpy."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    x = np.asarray(x)
    while x.ndim > 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 2:
        raise ValueError(f"expected one map (H, W), got shape {x.shape}")
    return x


def to_physical(x01, value_range) -> np.ndarray:
    """Undo the per-frame normalisation: map(s) in [0, 1] and (min, max) -> physical units.

    x01: (..., H, W); value_range: (..., 2) matching the leading dimensions.
    """
    x01 = x01.detach().cpu().numpy() if hasattr(x01, "detach") else np.asarray(x01)
    r = value_range.detach().cpu().numpy() if hasattr(value_range, "detach") else value_range
    r = np.asarray(r, dtype=np.float64)
    return denormalize(x01, r[..., 0], r[..., 1])


def range_doppler_extent(radar: RadarConfig | None = None) -> list[float]:
    """imshow extent [left, right, bottom, top] of a full frame: range (m) x velocity (m/s)."""
    radar = radar or RadarConfig()
    r, v = radar.range_axis(), radar.velocity_axis()
    dr, dv = radar.range_resolution, radar.velocity_resolution
    return [r[0] - dr / 2, r[-1] + dr / 2, v[0] - dv / 2, v[-1] + dv / 2]


def plot_range_doppler(
    ax,
    rd_map,
    radar: RadarConfig | None = None,
    kind: str = "amplitude",
    title: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
    label: str | None = None,
    cmap: str | None = None,
):
    """Draw one range-Doppler map (or a grid covering the frame) on ``ax``; returns the figure.

    kind: a key of :data:`STYLES` (``"amplitude"`` in dB, ``"phase"`` in rad, ``"normalized"``,
    ``"mask"``, ``"error"``, ``"phase_error"``, ``"normalized_error"``); it picks the colour map,
    the colour-bar label and, for bounded quantities, the colour limits. Error kinds are drawn
    symmetric around zero, saturating beyond the 99.5th percentile of the absolute error.
    """
    if kind not in STYLES:
        raise ValueError(f"unknown kind {kind!r}; choose one of {', '.join(STYLES)}")
    default_cmap, default_label, limits = STYLES[kind]
    m = as_map(rd_map)
    if limits is not None:
        vmin = limits[0] if vmin is None else vmin
        vmax = limits[1] if vmax is None else vmax
    if kind in ("error", "normalized_error") and vmin is None and vmax is None:
        # Symmetric; the 99.5th percentile, so a few extreme cells (leakage) do not wash out
        # the rest of the map.
        vmax = float(np.nanpercentile(np.abs(m), 99.5)) or 1.0
        vmin = -vmax
    im = ax.imshow(
        m,
        origin="lower",  # row 0 is the most negative velocity
        aspect="auto",
        extent=range_doppler_extent(radar),
        cmap=cmap or default_cmap,
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest",
    )
    ax.set_xlabel("range (m)")
    ax.set_ylabel("radial velocity (m/s)")
    if title:
        ax.set_title(title, fontsize=10)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label=label or default_label, fraction=0.05, pad=0.03)
    return ax.figure


def plot_maps_row(
    maps,
    kinds: str | list[str] = "amplitude",
    titles: list[str] | None = None,
    radar: RadarConfig | None = None,
    suptitle: str | None = None,
    panel_size: tuple[float, float] = (3.2, 4.2),
    shared_limits: bool = False,
    labels: list[str | None] | None = None,
):
    """Maps side by side, each with its colour bar. ``kinds`` is one kind or one per map;
    ``shared_limits`` gives every map of the row the same colour limits (same-kind maps);
    ``labels`` overrides colour-bar labels (None keeps the kind's)."""
    maps = [as_map(m) for m in maps]
    kinds = [kinds] * len(maps) if isinstance(kinds, str) else list(kinds)
    titles = titles or [None] * len(maps)
    fig, axes = plt.subplots(
        1, len(maps), figsize=(panel_size[0] * len(maps), panel_size[1]), squeeze=False
    )
    lims = (min(m.min() for m in maps), max(m.max() for m in maps)) if shared_limits else None
    labels = labels or [None] * len(maps)
    for ax, m, kind, title, label in zip(axes[0], maps, kinds, titles, labels):
        vmin, vmax = lims if lims else (None, None)
        plot_range_doppler(ax, m, radar, kind, title, vmin=vmin, vmax=vmax, label=label)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_map_grid(
    maps,
    kind: str = "mask",
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
    radar: RadarConfig | None = None,
    title: str | None = None,
    panel_size: tuple[float, float] = (1.9, 2.6),
):
    """A grid of same-kind maps with one shared colour bar, e.g. masks of walkers x frames.

    maps: (R, C, H, W) array (or nested lists of maps). Axis labels only on the outer panels.
    """
    grid = np.asarray([[as_map(m) for m in row] for row in maps])  # (R, C, H, W)
    rows, cols = grid.shape[:2]
    fig, axes = plt.subplots(
        rows, cols, figsize=(panel_size[0] * cols + 1.2, panel_size[1] * rows), squeeze=False
    )
    _, label, limits = STYLES[kind]
    vmin, vmax = limits if limits else (float(grid.min()), float(grid.max()))
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            plot_range_doppler(ax, grid[r, c], radar, kind, vmin=vmin, vmax=vmax, colorbar=False)
            ax.label_outer()
            if r == 0 and col_labels:
                ax.set_title(col_labels[c], fontsize=9)
            if c == 0 and row_labels:
                ax.set_ylabel(f"{row_labels[r]}\nvelocity (m/s)", fontsize=9)
    fig.colorbar(axes[0, 0].images[0], ax=axes, label=label, fraction=0.02, pad=0.02)
    if title:
        fig.suptitle(title)
    return fig


def plot_history(
    history: list[dict],
    keys,
    title: str | None = None,
    panel_width: float = 4.2,
    stage: str | None = None,
    columns: int = 3,
):
    """Training curves against epoch. ``keys``: a list whose items are a key or a list of keys
    drawn on one panel, e.g. ``[["train_loss", "val_loss"], "val_ssim"]``; at most ``columns``
    panels a row. Axis labels and legends are readable names with units
    (:func:`mmslim.viz.labels.label`); ``stage`` sets the unit of the target error (dB or rad;
    None: phase if the history has a phase term, else amplitude). Missing values (an epoch
    without validation) are skipped."""
    groups = [[k] if isinstance(k, str) else list(k) for k in keys]
    if stage is None:
        stage = "phase" if any("val_term_phase" in r for r in history) else "amplitude"
    n_cols = max(1, min(columns, len(groups)))
    n_rows = -(-len(groups) // n_cols)
    fig, axes = plt.subplots(
        n_rows, n_cols, figsize=(panel_width * n_cols, 3.1 * n_rows), squeeze=False
    )
    for ax, group in zip(axes.ravel(), groups):
        for key in group:
            pts = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
            pts = [(e, v) for e, v in pts if np.isfinite(v)]
            if pts:
                ax.plot(*zip(*pts), marker="o", markersize=3, label=readable(key, stage))
        ax.set_xlabel("epoch")
        ax.set_ylabel(_axis_label(group, stage))
        ax.grid(alpha=0.3)
        if len(group) > 1:
            ax.legend(fontsize=8)
    for ax in axes.ravel()[len(groups) :]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _axis_label(group: list[str], stage: str) -> str:
    """One key: its label; several: what they have in common (their legend names each)."""
    if len(group) == 1:
        return readable(group[0], stage)
    common = {"term_": "objective terms", "perplexity": "perplexity (codes)",
              "dead": "dead codes (share)", "mask": "mask M", "lr_": "learning rate",
              "ssim": "SSIM", "psnr": "PSNR (dB)",
              "loss": "loss (sum of weighted terms)"}  # fmt: skip
    for word, text in common.items():
        if all(word in k for k in group):
            return text
    return "value"


def plot_reconstructions(
    x,
    x_hat,
    kind: str = "amplitude",
    radar: RadarConfig | None = None,
    ranges=None,
    n: int = 3,
    labels: list[str] | None = None,
):
    """Input, reconstruction and error of ``n`` frames, one frame per row.

    x, x_hat: (N, 1, H, W) or (N, H, W) normalised maps; ranges: (N, 2) per-frame (min, max)
    to show physical units (dB or rad), else the maps are drawn normalised. The error of phase
    is the wrapped (circular) difference. labels: one title prefix per frame.
    """
    x, x_hat = _frames(x)[:n], _frames(x_hat)[:n]
    phys = ranges is not None
    if phys:
        x, x_hat = to_physical(x, ranges[:n]), to_physical(x_hat, ranges[:n])
    rows = len(x)
    fig, axes = plt.subplots(rows, 3, figsize=(10.5, 4.0 * rows), squeeze=False)
    for i in range(rows):
        err = x_hat[i] - x[i]
        if kind == "phase" and phys:
            map_kind, err_kind, err = "phase", "phase_error", wrap_phase(err)
        elif phys:
            map_kind, err_kind = "amplitude", "error"
        else:
            map_kind, err_kind = "normalized", "normalized_error"
        lo, hi = (float(x[i].min()), float(x[i].max())) if map_kind == "amplitude" else (None,) * 2
        name = f"{labels[i]}: " if labels else ""
        plot_range_doppler(axes[i, 0], x[i], radar, map_kind, f"{name}input", vmin=lo, vmax=hi)
        plot_range_doppler(axes[i, 1], x_hat[i], radar, map_kind, f"{name}reconstruction", lo, hi)
        plot_range_doppler(axes[i, 2], err, radar, err_kind, f"{name}reconstruction - input")
    fig.tight_layout()
    return fig


def _frames(x) -> np.ndarray:
    """(N, 1, H, W) or (N, H, W), tensor or array -> (N, H, W) float numpy."""
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    x = np.asarray(x)
    return x[:, 0] if x.ndim == 4 else x


def plot_mask_decomposition(
    x,
    mask,
    radar: RadarConfig | None = None,
    x_hat_hi=None,
    x_hat_lo=None,
    title: str | None = None,
):
    """How the mask splits one normalised map: x, M, M*x (to the fine branch) and (1-M)*x (to
    the coarse branch); with the branches' outputs, a second row shows what each rebuilt.

    x, mask, x_hat_hi, x_hat_lo: one map each, (H, W) or (1, H, W), values in [0, 1].
    """
    x, m = as_map(x), as_map(mask)
    fig, axes = plt.subplots(
        2 if x_hat_hi is not None else 1, 4, figsize=(14, 8.4 if x_hat_hi is not None else 4.2)
    )
    axes = np.atleast_2d(axes)
    plot_range_doppler(axes[0, 0], x, radar, "normalized", "input x")
    plot_range_doppler(axes[0, 1], m, radar, "mask", f"mask M (mean {m.mean():.2f})")
    plot_range_doppler(axes[0, 2], m * x, radar, "normalized", "M·x → fine branch")
    plot_range_doppler(axes[0, 3], (1 - m) * x, radar, "normalized", "(1−M)·x → coarse branch")
    if x_hat_hi is not None:
        hi, lo = as_map(x_hat_hi), as_map(x_hat_lo)
        plot_range_doppler(axes[1, 0], hi + lo, radar, "normalized", "x̂ = x̂_hi + x̂_lo")
        plot_range_doppler(axes[1, 1], hi + lo - x, radar, "normalized_error", "x̂ − x")
        plot_range_doppler(axes[1, 2], hi, radar, "normalized", "x̂_hi (fine branch)")
        plot_range_doppler(axes[1, 3], lo, radar, "normalized", "x̂_lo (coarse branch)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


__all__ = [
    "STYLES",
    "as_map",
    "plot_history",
    "plot_map_grid",
    "plot_mask_decomposition",
    "plot_maps_row",
    "plot_range_doppler",
    "plot_reconstructions",
    "range_doppler_extent",
    "to_physical",
    "wrap_phase",
]
