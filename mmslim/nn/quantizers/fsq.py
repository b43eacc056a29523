"""Finite scalar quantization (FSQ): a fixed grid instead of a learned codebook.

Mentzer et al., "Finite Scalar Quantization: VQ-VAE Made Simple", ICLR 2024. Each of a few
latent channels is squashed to a bounded range and rounded to one of ``L_i`` levels; the code is
the tuple of levels, so the implicit codebook is the grid of ``prod(L_i)`` points. There is no
codebook to learn, hence no codebook or commitment loss and no dead codes by collapse; the
gradient passes the rounding straight through.

Here the branch's latents have ``code_dim`` D channels (the decoder expects D) while FSQ uses
``d = len(levels)`` of them: the first d channels are quantized and the quantized vector is
zero-padded back to D channels. Learned projections D -> d -> D, as in the paper, would add
nothing: the 1x1 pre-VQ convolution before and the decoder's first convolution after are linear
and absorb them.

The index of a code is its mixed-radix number, so indices lie in [0, prod(L_i)); for the codec,
``prod(L_i)`` must equal the model's ``num_codes`` (at most 32768). 512 = 8 x 8 x 8.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mmslim.config import MAX_CODES
from mmslim.nn.quantizers.interface import Quantizer, straight_through, usage_stats


def default_levels(num_codes: int) -> tuple[int, ...]:
    """Levels for a power-of-two K: as many 8s as fit, then one 2 or 4 (512 -> (8, 8, 8))."""
    bits = round(math.log2(num_codes)) if num_codes > 1 else -1
    if bits < 1 or 2**bits != num_codes:
        raise ValueError(f"FSQ needs explicit levels for K = {num_codes} (not a power of two)")
    levels = [8] * (bits // 3) + ([2 ** (bits % 3)] if bits % 3 else [])
    return tuple(levels)


class FSQ(Quantizer):
    """Finite scalar quantization with ``levels`` per channel (Mentzer et al. 2024).

    Args:
        levels: L_i >= 2 per quantized channel, e.g. (8, 8, 8); num_codes = prod(L_i).
        code_dim: D, channels of the branch's latents (>= len(levels)); the channels after the
            first len(levels) are ignored on input and zero on output.

    Shapes: ``forward`` (B, D, h, w) -> z_q (B, D, h, w), indices (B, h, w) int64 in
    [0, prod(L_i)), info with ``loss`` (a zero tensor), ``perplexity``, ``counts`` (K,),
    ``dead_share``. Codes lie in [-1, 1] per quantized channel.
    """

    def __init__(self, levels, code_dim: int):
        super().__init__()
        levels = tuple(int(v) for v in levels)
        if not levels or min(levels) < 2:
            raise ValueError(f"FSQ levels must be integers >= 2, got {levels}")
        if len(levels) > code_dim:
            raise ValueError(f"FSQ with {len(levels)} levels needs code_dim >= {len(levels)}")
        self.levels = levels
        self.num_codes = math.prod(levels)
        if self.num_codes > MAX_CODES:
            raise ValueError(f"FSQ levels {levels} give {self.num_codes} codes > {MAX_CODES}")
        self.code_dim = code_dim
        radix = [math.prod(levels[:i]) for i in range(len(levels))]
        self.register_buffer("_levels", torch.tensor(levels), persistent=False)  # (d,)
        self.register_buffer("_radix", torch.tensor(radix), persistent=False)  # (d,)

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Squash (B, d, h, w) so that rounding gives L_i values per channel (the paper's
        ``tanh`` bound, shifted by half a step for even L)."""
        lv = self._levels.view(1, -1, 1, 1).to(z.dtype)
        half = (lv - 1) * (1 + 1e-3) / 2
        offset = torch.where(lv % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes of ``indices``: (B, h, w) int64 -> (B, D, h, w), zero beyond the d channels."""
        digits = (indices.unsqueeze(1) // self._radix.view(1, -1, 1, 1)) % self._levels.view(
            1, -1, 1, 1
        )  # (B, d, h, w) in [0, L_i)
        half_width = (self._levels // 2).view(1, -1, 1, 1)
        codes = (digits - half_width).float() / half_width.float()  # (B, d, h, w) in [-1, 1]
        return F.pad(codes, (0, 0, 0, 0, 0, self.code_dim - len(self.levels)))  # (B, D, h, w)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        if z.dim() != 4 or z.shape[1] != self.code_dim:
            raise ValueError(
                f"expected z of shape (B, {self.code_dim}, h, w), got {tuple(z.shape)}"
            )
        d = len(self.levels)
        bounded = self.bound(z[:, :d].float())  # (B, d, h, w), in (-L/2, L/2)
        half_width = (self._levels // 2).view(1, -1, 1, 1)
        with torch.no_grad():
            digits = torch.round(bounded).long() + half_width  # (B, d, h, w) in [0, L_i)
            indices = (digits * self._radix.view(1, -1, 1, 1)).sum(dim=1)  # (B, h, w)
        z_q = self.lookup(indices)  # (B, D, h, w), exactly what a receiver computes
        scaled = F.pad(bounded / half_width, (0, 0, 0, 0, 0, self.code_dim - d))  # (B, D, h, w)
        zero = z.new_zeros((), dtype=torch.float32)
        info = {"loss": zero, **usage_stats(indices, self.num_codes)}
        return straight_through(scaled, z_q), indices, info

    def extra_repr(self) -> str:
        return f"levels={self.levels}, num_codes={self.num_codes}, code_dim={self.code_dim}"


__all__ = ["FSQ", "default_levels"]
