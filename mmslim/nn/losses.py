"""Training objectives, shared by training (:mod:`mmslim.training.fit`) and evaluation.

``stage_loss`` is the paper's objective: ``1 - SSIM`` (11x11 box window, as the reference) plus
both branches' VQ losses, plus a range penalty the reference does not have.

Reference: Wang et al., "Image quality assessment: from error visibility to structural
similarity", IEEE TIP 2004 (SSIM).
"""

from __future__ import annotations

import torch

from mmslim.metrics.image import ssim


def stage_loss(x: torch.Tensor, out: dict, window: str = "box") -> torch.Tensor:
    """``1 - SSIM(x, x_hat) + range_penalty(x_hat) + vq_loss``; ``x``: (B, 1, H, W) in [0, 1].

    SSIM is nearly blind to the sign of the output: for ``x_hat = -x`` both of its factors
    (luminance, and contrast-structure) are negative and their product is high (0.73 on the
    sample's maps), so SSIM alone let training settle on a negated map in 3 of 36 short runs of
    ``mmslim bench quantizers``; clamped to [0, 1] for display, such a map scores 0. The range
    penalty, the mean distance of ``x_hat`` outside the data range [0, 1], is 0 for any
    reconstruction a receiver would show unchanged and makes the negated one cost about the
    map's mean (0.4).
    """
    x_hat = out["x_hat"].float()
    return 1.0 - ssim(x, x_hat, window=window) + range_penalty(x_hat) + out["vq_loss"].float()


def range_penalty(x_hat: torch.Tensor) -> torch.Tensor:
    """Mean distance of ``x_hat`` outside [0, 1] (0 inside): ``mean(relu(-x) + relu(x - 1))``."""
    return (torch.relu(-x_hat) + torch.relu(x_hat - 1.0)).mean()


__all__ = ["range_penalty", "stage_loss"]
