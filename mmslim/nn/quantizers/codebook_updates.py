"""Codebook updates that are not gradient steps: EMA k-means and dead-code replacement.

Both are small pure functions on tensors (no module state), called by :class:`VectorQuantizer`
in training mode only; each has its own test.

- :func:`ema_update`: the codebook follows an exponential moving average of the encoder outputs
  assigned to each code, instead of learning from the codebook loss (van den Oord et al.,
  "Neural Discrete Representation Learning", NeurIPS 2017, appendix A.1; Razavi et al.,
  "Generating Diverse High-Fidelity Images with VQ-VAE-2", NeurIPS 2019). It is online k-means:
  each codeword moves toward the mean of its cluster.
- :func:`dead_codes` / :func:`sample_rows`: codes that no encoder output chose for a number of
  steps are re-seeded with recent encoder outputs (Dhariwal et al., "Jukebox", 2020, "random
  restarts"; Zeghidour et al., "SoundStream", 2021), so that no capacity stays unused.

Under ``torchrun`` (several processes, see :mod:`mmslim.training.distributed`) each rank quantizes
its own share of the batch, but the codebook must stay the same on every rank: the EMA sums and
the usage counts are summed over ranks before they are used (so each rank applies the update of
the whole global batch), and replacement vectors are drawn from every rank's outputs and sent by
rank 0 (:func:`sample_rows_shared`). In one process these are exactly the one-process updates.
"""

from __future__ import annotations

import torch

from mmslim.training.distributed import all_gather_rows, all_reduce_sum_, broadcast_


def ema_update(
    codebook: torch.Tensor,
    cluster_size: torch.Tensor,
    embed_sum: torch.Tensor,
    flat: torch.Tensor,
    indices: torch.Tensor,
    decay: float,
    eps: float = 1e-5,
) -> None:
    """One EMA step, in place.

    n_k <- decay n_k + (1 - decay) |{i: k_i = k}|,
    m_k <- decay m_k + (1 - decay) sum_{i: k_i = k} z_i,
    e_k <- m_k / n~_k, with n~_k the Laplace-smoothed n_k (Sonnet's VQ-VAE-EMA), so that a code
    whose n_k has decayed toward 0 does not divide by 0.

    The batch counts and sums are summed over ranks under ``torchrun``: every rank applies the
    same update, that of all ranks' outputs.

    Args:
        codebook: (K, D) codewords, overwritten.
        cluster_size: (K,) n_k; embed_sum: (K, D) m_k; both overwritten.
        flat: (N, D) encoder outputs of this batch; indices: (N,) int64 their codes.
    """
    k = codebook.shape[0]
    flat = flat.detach().to(embed_sum.dtype)
    counts = torch.bincount(indices, minlength=k).to(cluster_size.dtype)  # (K,)
    sums = torch.zeros_like(embed_sum).index_add_(0, indices, flat)  # (K, D)
    all_reduce_sum_(counts, sums)  # every rank's outputs (a no-op in one process)
    cluster_size.mul_(decay).add_(counts, alpha=1 - decay)
    embed_sum.mul_(decay).add_(sums, alpha=1 - decay)
    n = cluster_size.sum()
    smoothed = (cluster_size + eps) / (n + k * eps) * n  # (K,)
    codebook.copy_(embed_sum / smoothed.unsqueeze(1))


def dead_codes(unused_steps: torch.Tensor, threshold: int) -> torch.Tensor:
    """Indices (M,) of codes unused for at least ``threshold`` steps (``unused_steps``: (K,))."""
    return torch.nonzero(unused_steps >= threshold).squeeze(1)


def count_unused(unused_steps: torch.Tensor, indices: torch.Tensor) -> None:
    """In place: +1 step for every code, then 0 for the codes in ``indices`` (any shape) of any
    rank: a code is unused only if no rank used it."""
    used = torch.bincount(indices.reshape(-1), minlength=unused_steps.numel())  # (K,)
    all_reduce_sum_(used)
    unused_steps.add_(1)
    unused_steps[used > 0] = 0


def sample_rows(flat: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` rows of ``flat`` (N, D) drawn at random (without replacement when N >= n)."""
    if flat.shape[0] >= n:
        pick = torch.randperm(flat.shape[0], generator=generator)[:n]
    else:
        pick = torch.randint(flat.shape[0], (n,), generator=generator)
    return flat[pick.to(flat.device)]


def sample_rows_shared(flat: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` rows drawn from every rank's ``flat`` (N_r, D), the same on every rank: each rank
    draws ``n`` of its own, and rank 0 draws ``n`` among all ranks' draws and broadcasts them.
    In one process, :func:`sample_rows` itself."""
    local = sample_rows(flat, n, generator)  # (n, D)
    pool = all_gather_rows(local)  # (world * n, D); ``local`` itself in one process
    if pool is local:
        return local
    return broadcast_(sample_rows(pool, n, generator).contiguous())


__all__ = ["count_unused", "dead_codes", "ema_update", "sample_rows", "sample_rows_shared"]
