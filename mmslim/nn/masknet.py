"""MaskNet: a soft mask that splits a frame between the fine and the coarse branch.

The mask ``M`` is computed from the amplitude map. ``M * x`` goes to the high-rate branch (the
detail worth bits: the walker's micro-Doppler signature), ``(1 - M) * x`` to the low-rate branch
(noise floor, clutter). In the phase stage the amplitude-trained MaskNet is frozen and its mask,
still computed from amplitude, is applied to the phase map (DESIGN.md section 1).
"""

from __future__ import annotations

import torch
from torch import nn


class MaskNet(nn.Module):
    """Two 3x3 convs with BatchNorm and LeakyReLU, then a sigmoid.

    conv3x3 (1 -> hidden) . BN . LeakyReLU(0.01) . conv3x3 (hidden -> 1) . BN . LeakyReLU . sigmoid

    Args:
        hidden: channels of the middle layer (16 in the reference).

    Shapes: (B, 1, H, W) amplitude -> (B, 1, H, W) mask with values in (0, 1).
    """

    def __init__(self, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, hidden, kernel_size=3, padding=1),  # (B, hidden, H, W)
            nn.BatchNorm2d(hidden),
            nn.LeakyReLU(0.01),
            nn.Conv2d(hidden, 1, kernel_size=3, padding=1),  # (B, 1, H, W)
            nn.BatchNorm2d(1),
            nn.LeakyReLU(0.01),
            nn.Sigmoid(),
        )

    def forward(self, amplitude: torch.Tensor) -> torch.Tensor:
        return self.net(amplitude)


__all__ = ["MaskNet"]
