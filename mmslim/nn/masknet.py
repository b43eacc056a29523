"""MaskNet: a soft mask that splits a frame between the fine and the coarse branch.

The mask ``M`` is computed from the amplitude map. ``M * x`` goes to the high-rate branch (the
detail worth bits: the walker's micro-Doppler signature), ``(1 - M) * x`` to the low-rate branch
(noise floor, clutter). In the phase stage the amplitude-trained MaskNet is frozen and its mask,
still computed from amplitude, is applied to the phase map.

Two heads (``ModelConfig.mask_head``, choices in :data:`mmslim.config.MASK_HEADS`):

- ``"sigmoid"`` (default): ``conv3x3 . BN . LeakyReLU . conv3x3 . sigmoid``. The logit is
  unbounded, so the mask can say 0 (background) and 1 (target).
- ``"reference"``: the published release's ``... conv3x3 . BN . LeakyReLU(0.01) . sigmoid``.
  LeakyReLU before the sigmoid keeps negative logits within 1 % of zero, so the mask cannot fall
  much below 0.5 and the split never forms (lowest mask seen in training: 0.48). Kept only to
  reproduce the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from mmslim.config import MASK_HEADS


class MaskNet(nn.Module):
    """Two 3x3 convs, BatchNorm and LeakyReLU between them, then a sigmoid head.

    Args:
        hidden: channels of the middle layer (16 in the reference).
        head: ``"sigmoid"`` or ``"reference"`` (see the module doc).

    Shapes: (B, 1, H, W) amplitude in [0, 1] -> (B, 1, H, W) mask with values in (0, 1).
    """

    def __init__(self, hidden: int = 16, head: str = "sigmoid"):
        super().__init__()
        if head not in MASK_HEADS:
            raise ValueError(f"unknown mask head {head!r}; choose one of {MASK_HEADS}")
        self.head = head
        layers = [
            nn.Conv2d(1, hidden, kernel_size=3, padding=1),  # (B, hidden, H, W)
            nn.BatchNorm2d(hidden),
            nn.LeakyReLU(0.01),
            nn.Conv2d(hidden, 1, kernel_size=3, padding=1),  # (B, 1, H, W) logit
        ]
        if head == "reference":
            layers += [nn.BatchNorm2d(1), nn.LeakyReLU(0.01)]
        self.net = nn.Sequential(*layers, nn.Sigmoid())

    def forward(self, amplitude: torch.Tensor) -> torch.Tensor:
        return self.net(amplitude)


__all__ = ["MaskNet"]
