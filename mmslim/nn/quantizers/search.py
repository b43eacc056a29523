"""Nearest-codeword search for inference: one matrix multiply against precomputed tables.

:class:`~mmslim.nn.quantizers.vq.VectorQuantizer` uses :func:`nearest_codeword` in training and
hands :class:`CodewordSearch` (its codebook's tables, computed once) to the sender graphs of
:mod:`mmslim.export.graphs`; both give the same indices bit for bit.
"""

from __future__ import annotations

import torch
from torch import nn


def search_tables(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tables of the nearest-codeword search for codewords ``codes`` (K, D): ``neg2_codes_t``
    (D, K) = -2 e^T and ``norms`` (K,) = ||e||^2."""
    codes = codes.detach()
    return (-2.0 * codes).t().contiguous(), (codes * codes).sum(dim=1)


def _nearest(flat: torch.Tensor, neg2_codes_t: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """Rows (M, D) -> (M,) int64, the nearest codeword of each.

    ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2, and ||z||^2 is the same for every e, so the argmin
    is that of ||e||^2 + z.(-2 e): one ``addmm``. Scaling by -2 is exact in floating point, so
    this equals ``addmm(||e||^2, z, e^T, alpha=-2)`` bit for bit. Ties go to the lowest index
    (under ONNX export as well)."""
    dist = torch.addmm(norms, flat, neg2_codes_t)  # (M, K)
    if torch.onnx.is_in_onnx_export():
        # ONNX Runtime's ArgMin is a scalar loop (5x numpy's argmin); TopK with k = 1 gives the
        # same index (ONNX's TopK puts the lowest index first among equal values) and ran the
        # exported sender 14-23 % faster (batches of 1 and 4, one core).
        return dist.topk(1, dim=1, largest=False)[1].squeeze(1)
    return dist.argmin(dim=1)


def _rows(z: torch.Tensor) -> torch.Tensor:
    """(B, D, h, w) -> (B*h*w, D); a channels-last ``z`` is reshaped without a copy."""
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def nearest_codeword(
    z: torch.Tensor, neg2_codes_t: torch.Tensor, norms: torch.Tensor
) -> torch.Tensor:
    """Nearest codeword by squared distance, as one matrix multiply: (B, D, h, w) -> (B, h, w)
    int64, with the tables of :func:`search_tables`."""
    b, _, h, w = z.shape
    return _nearest(_rows(z), neg2_codes_t, norms).reshape(b, h, w)


def nearest_allowed(z: torch.Tensor, codes: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """The nearest of the codewords ``allowed`` (A,) int64 (ascending indices into ``codes``
    (K, D)): (B, D, h, w) -> (B, h, w) int64 indices into ``codes``, each one of ``allowed``."""
    return allowed[nearest_codeword(z, *search_tables(codes[allowed]))]


class CodewordSearch(nn.Module):
    """Inference-only nearest-codeword search with precomputed tables (buffers ``neg2_codes_t``
    (D, K) and ``norms`` (K,)), built by :meth:`VectorQuantizer.search`. With ``allowed`` (A,)
    int64, only those codewords are searched (a sender that uses a few codes,
    ``ModelConfig.coarse_codes``); the indices returned are still the codebook's.

    Shapes: (B, D, h, w) float -> (B, h, w) int64.
    """

    def __init__(self, codes: torch.Tensor, allowed: torch.Tensor | None = None):
        super().__init__()
        if allowed is not None:
            allowed = allowed.to(device=codes.device, dtype=torch.int64)
            codes = codes[allowed]
        self.register_buffer("allowed", allowed)  # (A,), or None: every code
        neg2_codes_t, norms = search_tables(codes)
        self.register_buffer("neg2_codes_t", neg2_codes_t)  # (D, K) or (D, A)
        self.register_buffer("norms", norms)  # (K,) or (A,)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        found = nearest_codeword(z, self.neg2_codes_t, self.norms)
        return found if self.allowed is None else self.allowed[found]

    def where(self, z: torch.Tensor, chosen: torch.Tensor, fill: int) -> torch.Tensor:
        """The nearest codeword of the latents where ``chosen`` (B, h, w) bool, ``fill``
        elsewhere: (B, D, h, w) -> (B, h, w) int64, searching only the chosen rows (with the
        shipped gate about one latent in fifteen; the others' search would be thrown away).
        Each chosen row's distances are the same dot products as :meth:`forward`'s; whether a
        matrix multiply of fewer rows sums them in the same order is the kernel's choice, so
        the indices are equal up to near-ties. Exports to ONNX (NonZero, Gather, ScatterElements).
        """
        b, _, h, w = z.shape
        rows = torch.nonzero(chosen.reshape(-1)).squeeze(1)  # (M,)
        nearest = _nearest(_rows(z).index_select(0, rows), self.neg2_codes_t, self.norms)
        if self.allowed is not None:
            nearest = self.allowed[nearest]
        out = torch.full((b * h * w,), fill, dtype=torch.int64, device=z.device)
        return out.scatter(0, rows, nearest).reshape(b, h, w)


__all__ = ["CodewordSearch", "nearest_allowed", "nearest_codeword", "search_tables"]
