"""The interface every quantizer shares, and the gradient tricks as small pure functions.

Every quantizer subclasses :class:`Quantizer`, so that the branches, the codec and the notebooks
work with any of them:

    z_q, indices, info = quantizer(z)      # z: (B, D, h, w) float
    z_q = quantizer.lookup(indices)         # indices: (B, h, w) int64 -> (B, D, h, w)

The gradient tricks and statistics have their own tests: :func:`straight_through` and
:func:`vq_losses` (van den Oord et al., "Neural Discrete Representation Learning", NeurIPS 2017),
:func:`rotation_trick` (Fifty et al., ICLR 2025), :func:`perplexity` and :func:`usage_stats`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def straight_through(z: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """Forward the value of ``z_q``, backward the gradient to ``z`` unchanged.

    The textbook form is ``z + (z_q - z).detach()``; this one, ``z_q.detach() + (z - z.detach())``,
    has the same gradient (identity to ``z``, nothing to ``z_q``) but its value is exactly
    ``z_q`` (``z - z.detach()`` is exactly zero), not ``z_q`` up to rounding. That makes the
    decoder see bit for bit the codewords that :meth:`Quantizer.lookup` returns to a receiver.

    Shapes: any, ``z`` and ``z_q`` alike.
    """
    return z_q.detach() + (z - z.detach())


def rotation_trick(z: torch.Tensor, z_q: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Forward the value of ``z_q``; backward through a rotation and rescaling of ``z`` to it.

    Fifty et al., "Restructuring Vector Quantization with the Rotation Trick" (ICLR 2025): write
    ``z_q = lambda R z`` with R the rotation (Householder form) taking ``z / |z|`` to
    ``z_q / |z_q|`` and ``lambda = |z_q| / |z|``, both treated as constants. The gradient reaching
    ``z`` is ``lambda R^T g`` instead of straight-through's ``g``: it keeps the angle between the
    gradient and the codeword, so encoder outputs in one code's cell get different updates
    depending on where in the cell they lie. As in :func:`straight_through`, the value is exactly
    ``z_q``, and nothing flows to ``z_q``.

    Shapes: ``z`` and ``z_q`` alike, vectors along ``dim`` (e.g. (B, D, h, w), dim 1).
    """
    eps = 1e-12
    z_d, q_d = z.detach(), z_q.detach()
    norm_z = z_d.norm(dim=dim, keepdim=True).clamp(min=eps)  # (B, 1, h, w)
    norm_q = q_d.norm(dim=dim, keepdim=True)
    u = z_d / norm_z  # unit vectors (B, D, h, w)
    q = q_d / norm_q.clamp(min=eps)
    w = u + q
    w = w / w.norm(dim=dim, keepdim=True).clamp(min=eps)
    # R z = z - 2 (w.z) w + 2 (u.z) q, with u, q, w constants.
    rotated = z - 2 * (z * w).sum(dim, keepdim=True) * w + 2 * (z * u).sum(dim, keepdim=True) * q
    rotated = rotated * (norm_q / norm_z)
    return z_q.detach() + (rotated - rotated.detach())


def vq_losses(
    z: torch.Tensor, z_q: torch.Tensor, beta: float = 0.25
) -> tuple[torch.Tensor, torch.Tensor]:
    """The two VQ-VAE terms, as mean squared errors (scalars).

    Returns ``(codebook_loss, commitment_loss)``:

    - ``codebook_loss = ||sg[z] - z_q||^2`` moves the chosen codewords toward the encoder outputs;
    - ``commitment_loss = beta * ||z - sg[z_q]||^2`` keeps the encoder outputs near their codewords.

    ``sg`` is stop-gradient. The reference release swapped the two stop-gradients (beta weighed the
    codebook term); this is the form of the VQ-VAE paper.

    Shapes: ``z`` and ``z_q`` alike, e.g. (B, D, h, w).
    """
    codebook_loss = F.mse_loss(z_q, z.detach())
    commitment_loss = beta * F.mse_loss(z, z_q.detach())
    return codebook_loss, commitment_loss


def perplexity(counts: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of the code-usage distribution: K when all K codes are used equally, 1 when
    one code is used.

    Args:
        counts: (K,) how often each code was chosen (any non-negative numbers).

    Returns: a scalar float tensor.
    """
    p = counts.float() / counts.sum().clamp(min=1)
    entropy = -(p * torch.log(p.clamp(min=1e-12))).sum()  # 0 log 0 = 0
    return torch.exp(entropy)


class Quantizer(nn.Module):
    """Interface shared by every quantizer.

    Attributes:
        num_codes: K, number of discrete symbols per latent position (indices lie in [0, K)).
        code_dim: D, channels of the latent vectors it quantizes.

    ``forward(z)`` takes ``z: (B, D, h, w)`` float and returns ``(z_q, indices, info)``:

    - ``z_q: (B, D, h, w)`` quantized latents, with the gradient passed on to ``z``;
    - ``indices: (B, h, w)`` int64, what is transmitted;
    - ``info``: a dict with at least ``loss`` (scalar, to add to the training loss; it may be a
      zero tensor for quantizers without an auxiliary loss), ``perplexity`` (scalar), ``counts``
      ((K,) code usage in the batch) and ``dead_share`` (scalar, share of codes unused in the
      batch).

    ``lookup(indices)`` maps ``(B, h, w)`` int64 back to ``(B, D, h, w)``; in eval mode it equals
    ``forward``'s ``z_q`` for the same indices exactly, which is what a receiver relies on.
    """

    num_codes: int
    code_dim: int

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        raise NotImplementedError

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def code_counts(indices: torch.Tensor, num_codes: int) -> torch.Tensor:
    """How often each code occurs in ``indices`` (any shape, ints in [0, K)) -> (K,) int64."""
    return torch.bincount(indices.reshape(-1).long(), minlength=num_codes)


def usage_stats(indices: torch.Tensor, num_codes: int) -> dict[str, torch.Tensor]:
    """Code usage of a batch: ``counts`` (K,) int64, ``perplexity`` and ``dead_share`` scalars.

    Args:
        indices: any shape, int64 in [0, num_codes).
    """
    counts = code_counts(indices, num_codes)  # (K,)
    return {
        "counts": counts,
        "perplexity": perplexity(counts),
        "dead_share": (counts == 0).float().mean(),
    }


__all__ = [
    "Quantizer",
    "code_counts",
    "perplexity",
    "rotation_trick",
    "straight_through",
    "usage_stats",
    "vq_losses",
]
