"""VQ-STE++: three remedies for the straight-through estimator, as small pure functions.

Huh, Cheung, Agrawal & Isola, "Straightening Out the Straight-Through Estimator: Overcoming
Optimization Challenges in Vector Quantized Networks", ICML 2023 (public code: vqtorch,
github.com/minyoungg/vqtorch). The paper names three ways in which the codebook lags behind the
encoder under straight-through training, and one remedy for each; :class:`VectorQuantizer`
offers them as options (off by default, which gives the plain VQ-VAE):

- **Synchronized update** (``sync_nu``, :func:`synchronized_straight_through`). The forward value
  is still the codeword ``q``; the backward pass sends the decoder's gradient ``g`` unchanged to
  the encoder output ``z`` (straight-through) *and* ``nu * g`` to the codeword, written as
  ``z + sg(q - z) + nu * (q - sg(q))``. The codeword then moves in the direction the encoder
  output is about to move, so the two stay together (the paper's eq. for the synchronized
  commitment; ``nu = 0`` is plain straight-through).
- **Alternated optimisation** (``inplace_lr``, :func:`inplace_sgd_step`). Before the encoder
  and decoder take their step, the codebook takes its own: SGD with momentum 0.9 on the
  codebook term ``mean ||sg(z) - q||^2`` of the current batch (vqtorch's ``inplace_optimizer``,
  with ``lr = 50`` in its example), and the decoder then sees the updated codewords. The
  codebook is a buffer moved only by this step, like an EMA codebook.
- **Affine reparameterisation from statistics** (``affine="statistics"``,
  :func:`update_statistics` and :func:`affine_from_statistics`). Codewords are used as
  ``e * s + t`` with ``s = sqrt(var_z / var_e)`` and ``t = mean_z - s * mean_e`` per dimension,
  from exponential moving averages (momentum 0.1) of the encoder outputs' and the codebook's
  mean and variance (vqtorch's ``AffineTransform(use_running_statistics=True)``): the whole
  codebook follows the encoder outputs' statistics at once, with nothing to learn. The learned
  variant (``affine="learned"``) lives in :class:`VectorQuantizer` itself.

All three act in training only; in eval mode a codeword is ``codes()[k]``, a fixed table, so
indices decode exactly. Under ``torchrun`` the statistics and the in-place gradient are summed
over ranks, so that the codebook stays identical on every rank.
"""

from __future__ import annotations

import torch

from mmslim.training.distributed import all_reduce_sum_, world_size

STATISTICS_MOMENTUM = 0.1  # weight of a new batch in the running statistics (vqtorch's)
INPLACE_MOMENTUM = 0.9  # momentum of the codebook's own SGD (vqtorch's example)


def synchronized_straight_through(
    z: torch.Tensor, z_q: torch.Tensor, nu: float = 0.0
) -> torch.Tensor:
    """Forward the value of ``z_q`` exactly; backward ``g`` to ``z`` and ``nu * g`` to ``z_q``.

    ``z_q.detach() + (z - z.detach()) + nu * (z_q - z_q.detach())``: the first two terms are
    :func:`~mmslim.nn.quantizers.vq.straight_through` (its value exactly ``z_q``); the last is zero
    in value and carries ``nu`` times the decoder's gradient to the codeword (Huh et al. 2023).
    ``nu = 0`` gives straight-through, nothing reaching ``z_q``.

    Shapes: any, ``z`` and ``z_q`` alike.
    """
    out = z_q.detach() + (z - z.detach())
    if nu:
        out = out + nu * (z_q - z_q.detach())
    return out


def affine_from_statistics(
    z_mean: torch.Tensor, z_var: torch.Tensor, c_mean: torch.Tensor, c_var: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and shift (D,), (D,) mapping a codebook of per-dimension mean ``c_mean`` and variance
    ``c_var`` onto the mean ``z_mean`` and variance ``z_var`` of the encoder outputs:
    ``s = sqrt(z_var / (c_var + 1e-8))``, ``t = z_mean - s * c_mean``."""
    scale = (z_var / (c_var + 1e-8)).sqrt()
    return scale, z_mean - scale * c_mean


@torch.no_grad()
def update_statistics(
    stats: torch.Tensor, flat: torch.Tensor, codebook: torch.Tensor, first: bool
) -> None:
    """One EMA step of the running statistics, in place.

    Args:
        stats: (4, D) rows: mean and variance of the encoder outputs, mean and variance of the
            codebook; overwritten (copied from this batch when ``first``, else moved toward it
            by :data:`STATISTICS_MOMENTUM`).
        flat: (N, D) encoder outputs of this batch (every rank's, under ``torchrun``).
        codebook: (K, D) raw codewords (the same on every rank).
    """
    x = flat.detach().float()
    moments = torch.stack([x.sum(0), x.square().sum(0)])  # (2, D)
    count = x.new_tensor([float(x.shape[0])])
    all_reduce_sum_(moments, count)  # every rank's vectors (a no-op in one process)
    z_mean = moments[0] / count
    z_var = (moments[1] / count - z_mean.square()).clamp(min=0)
    c = codebook.detach().float()
    batch = torch.stack([z_mean, z_var, c.mean(0), c.var(0, unbiased=False)]).to(stats)  # (4, D)
    if first:
        stats.copy_(batch)
    else:
        stats.lerp_(batch, STATISTICS_MOMENTUM)


def inplace_sgd_step(
    codebook: torch.Tensor,
    momentum: torch.Tensor,
    used_codes,
    flat: torch.Tensor,
    indices: torch.Tensor,
    lr: float,
) -> None:
    """The codebook's own step (alternated optimisation), in place, before the network's step.

    Loss ``mean over (N, D) of (used_codes(w)[k_i] - z_i)^2`` with ``z`` detached, gradient with
    respect to the raw codebook ``w`` only (through ``used_codes``, e.g. an affine map), averaged
    over ranks; then SGD with momentum: ``m <- 0.9 m + grad``, ``w <- w - lr m`` (PyTorch's SGD).

    Args:
        codebook: (K, D) raw codewords, a buffer; overwritten. momentum: (K, D), overwritten.
        used_codes: function (K, D) raw -> (K, D) codewords as used.
        flat: (N, D) encoder outputs; indices: (N,) int64 their codes.
    """
    with torch.enable_grad():
        w = codebook.detach().float().requires_grad_(True)
        chosen = used_codes(w)[indices]  # (N, D)
        loss = (chosen - flat.detach().float()).square().mean()
        (grad,) = torch.autograd.grad(loss, w)
    all_reduce_sum_(grad)
    grad = grad / world_size()
    with torch.no_grad():
        momentum.mul_(INPLACE_MOMENTUM).add_(grad.to(momentum))
        codebook.sub_(lr * momentum.to(codebook))


__all__ = [
    "INPLACE_MOMENTUM",
    "STATISTICS_MOMENTUM",
    "affine_from_statistics",
    "inplace_sgd_step",
    "synchronized_straight_through",
    "update_statistics",
]
