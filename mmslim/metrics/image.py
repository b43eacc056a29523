"""Image-quality metrics in torch, differentiable, for batches of maps (B, C, H, W).

- :func:`ssim`: structural similarity (Wang et al., "Image quality assessment: from error
  visibility to structural similarity", IEEE TIP 2004), with a Gaussian window (11 x 11,
  sigma 1.5, the paper's choice) or an 11 x 11 box window (the mmSlim reference's training loss).
- :func:`ssim_loss`: ``1 - ssim``, the reference's reconstruction loss.
- :func:`psnr`: peak signal-to-noise ratio in dB.

Conventions. Local statistics are window-weighted averages with weights summing to 1 (no
sample-size correction of the variances). The window only visits positions where it fits
entirely inside the image ("valid" convolution, no padding), so an H x W map gives an
(H - size + 1) x (W - size + 1) SSIM map. The constants are C1 = (0.01 L)^2 and C2 = (0.03 L)^2
with L = ``data_range``; for L = 1 that is C1 = 1e-4 and C2 = 9e-4, the reference's values for
its box window, so both windows share them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

REDUCTIONS = ("mean", "none")


def _window_1d(kind: str, size: int, sigma: float, like: torch.Tensor) -> torch.Tensor:
    """(size,) weights summing to 1, with the dtype and device of ``like``.

    Both windows are separable: the 2-D window is the outer product of this one with itself.
    """
    if kind == "box":
        w = torch.ones(size, dtype=like.dtype, device=like.device)
    elif kind == "gaussian":
        r = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
        w = torch.exp(-(r**2) / (2 * sigma**2))
    else:
        raise ValueError(f"unknown window {kind!r}; choose 'gaussian' or 'box'")
    return w / w.sum()


def _local_means(maps: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Window-weighted means of every channel, valid positions only.

    (B, N, H, W) -> (B, N, H - size + 1, W - size + 1). Filtering rows then columns with the 1-D
    window equals one pass with the 2-D window, at 2 x size instead of size^2 operations per pixel
    (an 11 x 11 single-channel conv was the slowest op of a CPU training step).
    """
    n, size = maps.shape[1], w.numel()
    rows = F.conv2d(maps, w.view(1, 1, 1, size).expand(n, 1, 1, size), groups=n)
    return F.conv2d(rows, w.view(1, 1, size, 1).expand(n, 1, size, 1), groups=n)


def _check_pair(x: torch.Tensor, y: torch.Tensor, reduction: str) -> None:
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(
            f"expected x and y of the same shape (B, C, H, W), got {tuple(x.shape)} "
            f"and {tuple(y.shape)}"
        )
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; choose 'mean' or 'none'")


def ssim_map(
    x: torch.Tensor,
    y: torch.Tensor,
    window: str = "gaussian",
    size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
) -> torch.Tensor:
    """Local SSIM values: (B, C, H, W) pair -> (B, C, H - size + 1, W - size + 1)."""
    _check_pair(x, y, "mean")
    if x.shape[2] < size or x.shape[3] < size:
        raise ValueError(f"expected H and W of at least the window size {size}, got {x.shape[2:]}")
    w = _window_1d(window, size, sigma, x)  # (size,)
    stacked = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (B, 5C, H, W)
    means = _local_means(stacked, w)  # (B, 5C, H', W')
    mu_x, mu_y, e_xx, e_yy, e_xy = means.chunk(5, dim=1)  # each (B, C, H', W')
    var_x = e_xx - mu_x**2
    var_y = e_yy - mu_y**2
    cov_xy = e_xy - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    structure = (2 * cov_xy + c2) / (var_x + var_y + c2)
    return luminance * structure


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    window: str = "gaussian",
    size: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Structural similarity of two batches of maps.

    Args:
        x, y: (B, C, H, W) float, values on a scale of ``data_range`` (1 for maps in [0, 1]).
        window: ``"gaussian"`` (size x size, std ``sigma``) or ``"box"`` (size x size uniform).
        size: window side (11).
        sigma: Gaussian std in pixels (1.5); ignored by the box window.
        data_range: L, the span of the values; sets C1 = (0.01 L)^2, C2 = (0.03 L)^2.
        reduction: ``"mean"`` -> scalar over the batch; ``"none"`` -> (B,) one value per map.

    Identical maps give 1. Differentiable in ``x`` and ``y``.
    """
    _check_pair(x, y, reduction)
    per_map = ssim_map(x, y, window, size, sigma, data_range).mean(dim=(1, 2, 3))  # (B,)
    return per_map.mean() if reduction == "mean" else per_map


def ssim_loss(x: torch.Tensor, y: torch.Tensor, **kwargs) -> torch.Tensor:
    """``1 - ssim(x, y, **kwargs)``: scalar (or (B,) with ``reduction="none"``)."""
    return 1.0 - ssim(x, y, **kwargs)


def psnr(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """Peak signal-to-noise ratio, ``10 log10(L^2 / MSE)`` in dB, per map.

    Args:
        x, y: (B, C, H, W) float.
        data_range: L, the peak value span (1 for maps in [0, 1]).
        reduction: ``"mean"`` -> scalar, the mean of the per-map PSNRs; ``"none"`` -> (B,).

    Identical maps give ``inf``.
    """
    _check_pair(x, y, reduction)
    mse = ((x - y) ** 2).mean(dim=(1, 2, 3))  # (B,)
    per_map = 10.0 * torch.log10(data_range**2 / mse)  # inf where mse == 0
    return per_map.mean() if reduction == "mean" else per_map


__all__ = ["psnr", "ssim", "ssim_loss", "ssim_map"]
