"""Codebook initialisations: where the K codewords start.

Pure functions of (samples, K) that return a (K, D) codebook; :class:`VectorQuantizer` calls them
(``init=...``) on the first training batches when the method needs data.

- ``"uniform"``: uniform in [-1/K, 1/K], the reference release's (and the VQ-VAE example code's)
  initialisation. It needs no data; codewords start near 0, far from encoder outputs that grow
  during training, which is one cause of dead codes.
- ``"kmeans"``: Lloyd's k-means (k-means++ seeding, Arthur & Vassilvitskii 2007) on the first
  encoder outputs, as ``kmeans_init=True`` in vector-quantize-pytorch and in Zeghidour et al.,
  "SoundStream" (2021): every codeword starts where data is.
- ``"rd_gaussian"``: the rate-distortion-optimal reproduction distribution of a Gaussian source
  (Cover & Thomas, "Elements of Information Theory", section 10.3.2): at rate R bits per
  dimension, the optimal codewords of an i.i.d. N(mu, sigma^2) source are distributed as
  N(mu, sigma^2 (1 - 2^(-2R))), with distortion sigma^2 2^(-2R). A codebook of K codewords of
  dimension d spends R = log2(K) / d bits per dimension. Mean and variance per dimension come from
  the first encoder outputs.

All randomness goes through an explicit ``torch.Generator``, so an initialisation is repeatable.

Under ``torchrun`` (several processes) :func:`init_codebook_shared` fits the codebook on every
rank's samples: they are gathered, rank 0 fits the codebook and broadcasts it, so that all ranks
start from the same codewords (bit for bit).
"""

from __future__ import annotations

import math

import torch

from mmslim.config import CODEBOOK_INITS
from mmslim.training.distributed import all_gather_rows, broadcast_, is_distributed, rank

INITS = CODEBOOK_INITS  # the names, defined once in mmslim.config


def uniform_codebook(num_codes: int, code_dim: int) -> torch.Tensor:
    """(K, D) uniform in [-1/K, 1/K], the reference initialisation."""
    return torch.empty(num_codes, code_dim).uniform_(-1.0 / num_codes, 1.0 / num_codes)


def rd_gaussian_variance(variance: torch.Tensor | float, num_codes: int, code_dim: int):
    """Codeword variance sigma^2 (1 - 2^(-2R)), R = log2(K) / d, of the rate-distortion-optimal
    reproduction of an N(mu, sigma^2) source (per dimension; ``variance`` a float or (D,))."""
    rate = math.log2(num_codes) / code_dim  # bits per dimension
    return variance * (1.0 - 2.0 ** (-2.0 * rate))


def rd_gaussian_codebook(
    samples: torch.Tensor, num_codes: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(K, D) codewords drawn from N(mu, sigma^2 (1 - 2^(-2R))) per dimension, mu and sigma^2 the
    mean and variance of ``samples`` (N, D)."""
    samples = samples.float()
    mean, var = samples.mean(dim=0), samples.var(dim=0, unbiased=False)  # (D,), (D,)
    std = rd_gaussian_variance(var, num_codes, samples.shape[1]).sqrt()  # (D,)
    noise = torch.randn(num_codes, samples.shape[1], generator=generator)  # (K, D)
    return mean + std * noise.to(samples.device)


def _sq_dist(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared distances (N, D) x (K, D) -> (N, K)."""
    return torch.addmm((c * c).sum(1), x, c.t(), alpha=-2.0) + (x * x).sum(1, keepdim=True)


def kmeans(
    samples: torch.Tensor,
    num_codes: int,
    iters: int = 20,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Lloyd's k-means with k-means++ seeding: (N, D) samples -> (K, D) centres.

    With fewer samples than centres, the extra centres are copies of samples (a later dead-code
    replacement or training moves them). An empty cluster keeps its centre.
    """
    x = samples.detach().float()  # (N, D)
    n = x.shape[0]
    gen_device = "cpu" if generator is None else generator.device
    if n <= num_codes:
        pick = torch.randint(n, (num_codes,), generator=generator, device=gen_device)
        pick[:n] = torch.arange(n)
        return x[pick.to(x.device)].clone()
    # k-means++: each next centre drawn with probability proportional to D(x)^2.
    first = torch.randint(n, (1,), generator=generator, device=gen_device).to(x.device)
    centres = [x[first]]  # list of (1, D)
    d2 = _sq_dist(x, centres[0]).squeeze(1).clamp(min=0)  # (N,)
    for _ in range(1, num_codes):
        p = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / n)
        nxt = torch.multinomial(p.cpu(), 1, generator=generator).to(x.device)
        centres.append(x[nxt])
        d2 = torch.minimum(d2, _sq_dist(x, centres[-1]).squeeze(1).clamp(min=0))
    c = torch.cat(centres)  # (K, D)
    for _ in range(iters):
        assign = _sq_dist(x, c).argmin(dim=1)  # (N,)
        sums = torch.zeros_like(c).index_add_(0, assign, x)  # (K, D)
        counts = torch.bincount(assign, minlength=num_codes)  # (K,)
        used = counts > 0
        c[used] = sums[used] / counts[used].unsqueeze(1).to(c.dtype)
    return c


def init_codebook(
    method: str, samples: torch.Tensor, num_codes: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The (K, D) codebook of ``method`` (one of :data:`INITS`) from samples (N, D)."""
    if method == "uniform":
        return uniform_codebook(num_codes, samples.shape[1]).to(samples.device)
    if method == "kmeans":
        return kmeans(samples, num_codes, generator=generator)
    if method == "rd_gaussian":
        return rd_gaussian_codebook(samples, num_codes, generator)
    raise ValueError(f"unknown codebook init {method!r}; choose one of {INITS}")


def init_codebook_shared(
    method: str, samples: torch.Tensor, num_codes: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """:func:`init_codebook` on every rank's samples (N_r, D), the same (K, D) on every rank:
    rank 0 fits it on all ranks' samples (gathered in rank order) and broadcasts it. In one
    process, :func:`init_codebook` itself."""
    if not is_distributed():
        return init_codebook(method, samples, num_codes, generator)
    pool = all_gather_rows(samples.float())  # (sum N_r, D)
    if rank() == 0:
        codes = init_codebook(method, pool, num_codes, generator).float().contiguous()
    else:
        codes = pool.new_empty(num_codes, pool.shape[1])  # (K, D), filled by the broadcast
    return broadcast_(codes)


__all__ = [
    "INITS",
    "init_codebook",
    "init_codebook_shared",
    "kmeans",
    "rd_gaussian_codebook",
    "rd_gaussian_variance",
    "uniform_codebook",
]
