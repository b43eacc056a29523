"""Vector quantizers: the bottleneck of each VQ-VAE branch.

Every quantizer subclasses :class:`Quantizer` and shares one interface, so that the branches,
the codec and the notebooks work with any of them (plain VQ here; EMA, FSQ, Gumbel, ... later):

    z_q, indices, info = quantizer(z)      # z: (B, D, h, w) float
    z_q = quantizer.lookup(indices)         # indices: (B, h, w) int64 -> (B, D, h, w)

The gradient tricks are small pure functions with their own tests: :func:`straight_through`,
:func:`vq_losses`, :func:`perplexity`.

Reference: van den Oord et al., "Neural Discrete Representation Learning" (VQ-VAE), NeurIPS 2017.
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


def usage_stats(indices: torch.Tensor, num_codes: int) -> dict[str, torch.Tensor]:
    """Code usage of a batch: ``counts`` (K,) int64, ``perplexity`` and ``dead_share`` scalars.

    Args:
        indices: any shape, int64 in [0, num_codes).
    """
    counts = torch.bincount(indices.reshape(-1), minlength=num_codes)  # (K,)
    return {
        "counts": counts,
        "perplexity": perplexity(counts),
        "dead_share": (counts == 0).float().mean(),
    }


class VectorQuantizer(Quantizer):
    """Plain VQ: nearest codeword by squared distance, straight-through gradient.

    Args:
        num_codes: K, codebook size (512 in the paper: 9-bit indices).
        code_dim: D, codeword dimension (64 in the paper).
        beta: weight of the commitment term (0.25, VQ-VAE paper).

    The codebook is initialised uniformly in [-1/K, 1/K], as in the reference.

    Shapes: ``forward`` (B, D, h, w) -> z_q (B, D, h, w), indices (B, h, w) int64, info with
    ``loss`` (codebook + commitment), ``codebook_loss``, ``commitment_loss``, ``perplexity``,
    ``counts`` (K,) and ``dead_share``.
    """

    def __init__(self, num_codes: int, code_dim: int, beta: float = 0.25):
        super().__init__()
        self.num_codes = num_codes
        self.code_dim = code_dim
        self.beta = beta
        self.codebook = nn.Embedding(num_codes, code_dim)  # weight: (K, D)
        nn.init.uniform_(self.codebook.weight, -1.0 / num_codes, 1.0 / num_codes)

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest codeword: (B, D, h, w) float -> (B, h, w) int64."""
        b, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)  # (B*h*w, D)
        codes = self.codebook.weight  # (K, D)
        # ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2; ||z||^2 is the same for every e, so drop it.
        # addmm computes ||e||^2 - 2 z.e in one fused pass.
        dist = torch.addmm((codes * codes).sum(dim=1), flat, codes.t(), alpha=-2.0)  # (B*h*w, K)
        return dist.argmin(dim=1).reshape(b, h, w)  # (B, h, w)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codewords of ``indices``: (B, h, w) int64 -> (B, D, h, w)."""
        z_q = self.codebook(indices)  # (B, h, w, D)
        return z_q.permute(0, 3, 1, 2).contiguous()  # (B, D, h, w)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        if z.dim() != 4 or z.shape[1] != self.code_dim:
            raise ValueError(
                f"expected z of shape (B, {self.code_dim}, h, w), got {tuple(z.shape)}"
            )
        with torch.no_grad():
            indices = self.nearest(z)  # (B, h, w)
        z_q = self.lookup(indices)  # (B, D, h, w), carries the gradient to the codebook
        codebook_loss, commitment_loss = vq_losses(z, z_q, self.beta)
        info = {
            "loss": codebook_loss + commitment_loss,
            "codebook_loss": codebook_loss,
            "commitment_loss": commitment_loss,
            **usage_stats(indices, self.num_codes),
        }
        return straight_through(z, z_q), indices, info

    def extra_repr(self) -> str:
        return f"num_codes={self.num_codes}, code_dim={self.code_dim}, beta={self.beta}"


__all__ = [
    "Quantizer",
    "VectorQuantizer",
    "perplexity",
    "straight_through",
    "usage_stats",
    "vq_losses",
]
