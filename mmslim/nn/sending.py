"""What the sender sends of the fine grid, and what the link loses of it.

- :func:`sent_latents`: the fine latents a gated sender codes (``ModelConfig.fine_gate``); the
  others go as :data:`GATE_CODE`;
- :func:`hard_mask`: MaskNet's mask thresholded (``ModelConfig(mask="hard")``);
- :func:`lost_patches`: the fine indices a lossy link drops (``TrainConfig.lost_share``).
"""

from __future__ import annotations

import torch
from torch import nn

GATE_CODE = 0  # the fine index of a latent the mask sends nothing for (ModelConfig.fine_gate)


def lost_patches(shape: tuple[int, int, int], share: float, generator=None) -> torch.Tensor:
    """(B, h, w) bool, True on random 2 x 2 patches covering about ``share`` of each grid: how
    a link that drops packets loses fine indices (each patch: 8 x 8 map cells)."""
    b, h, w = shape
    keep = torch.rand(b, -(-h // 2), -(-w // 2), generator=generator) >= share  # (B, h/2, w/2)
    return ~keep.repeat_interleave(2, 1).repeat_interleave(2, 2)[:, :h, :w]


def sent_latents(mask: torch.Tensor, factor: int, level: float) -> torch.Tensor:
    """The fine latents worth sending, (B, 1, H, W) mask -> (B, H/f, W/f) bool: those whose own
    ``factor`` x ``factor`` cells, or a neighbour's (8-connected), hold a mask value >= ``level``.

    Where MaskNet says "background" all around, the fine branch has nothing to add that the
    coarse branch does not draw, yet its encoder still picks among many codes there (the floor's
    texture scaled by M). Sending one fixed code instead (:data:`GATE_CODE`) costs a fraction of
    a bit per latent under the entropy prior. The neighbours are kept because the decoder's
    transposed convolutions draw each cell from the latents around it: without them, targets
    near a latent's border lose their strength (measured on a model trained without a gate, at a
    mask level of 0.5: target error 9.5 dB without the neighbours, 2.5 dB with them).
    """
    peak = nn.functional.max_pool2d(mask.detach(), factor)  # (B, 1, h, w)
    near = nn.functional.max_pool2d(peak, 3, stride=1, padding=1)  # 8-neighbourhood
    return (near >= level)[:, 0]


def hard_mask(mask: torch.Tensor) -> torch.Tensor:
    """MaskNet's mask thresholded at 0.5, with the soft mask's gradient (straight-through).

    With a soft mask the fine branch still sees the floor, scaled by M (about 0.14 on background
    cells), and spends bits coding it. Thresholded, the fine branch's input is exactly 0 on the
    background, its latents there are all alike and cost almost nothing to entropy-code; the
    coarse branch alone draws the floor. Shapes: (B, 1, H, W) in [0, 1] -> same, 0 or 1.
    """
    hard = (mask > 0.5).to(mask.dtype)
    return hard + (mask - mask.detach())


__all__ = ["GATE_CODE", "hard_mask", "lost_patches", "sent_latents"]
