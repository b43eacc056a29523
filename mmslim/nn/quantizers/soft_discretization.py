"""Learnable noise scale and learnable offset for the soft quantizer (training only).

From the soft-discretization line built on vqtorch (the ``semivq`` package: "Soft-
discretization", a fork of Huh et al.'s vqtorch, ICML 2023), which adds three approaches to a
VQ layer: a learnable standard deviation (approach 1, ``use_learnable_std``, with a penalty
chosen by ``alter_penalty``) and a learnable offset ``gamma`` added to the quantized vector,
one for all codes (approach 2) or computed per vector (approach 3,
``gamma_policy="personalize"``). Here they are options of
:class:`~mmslim.nn.quantizers.gumbel.SoftQuantizer`, written as follows (our reading, our code):

- :class:`LearnedStd`: a per-dimension scale ``sigma`` (D,) of the soft assignment's Gaussian
  kernel, ``p_k ~ exp(-sum_d (z_d - e_kd)^2 / (tau sigma_d^2))``: how far apart codewords look
  along each latent channel. semivq learns a per-dimension std of the codebook around the
  encoder outputs' mean; scaling the codewords' spread by ``a`` or the kernel by ``1/a`` changes
  the assignment alike. ``sigma`` starts at 1 (the plain soft quantizer). Penalties
  (``alter_penalty``, times ``penalty_weight``, averaged over D): ``"unit"``, ``(1 - sigma)^2``
  (semivq's ``"between1"``), which keeps the overall scale with the temperature; ``"spread"``,
  ``-sigma^2`` (semivq's default), which rewards a softer kernel and is bounded only by the
  reconstruction loss. semivq's third penalty, growing with the step count without bound, is
  left out.
- :class:`GammaOffset`: an offset ``gamma`` added to the soft output in training. ``"shared"``:
  one (D,) vector, for each dimension a small MLP of that dimension's K code values (the same
  weights for every dimension), as semivq's approach 2. ``"personalize"``: per latent vector and
  dimension, a small MLP of ``(mean_d, zq_d, var_d)`` (the codebook's per-dimension mean and
  variance around the vector's own soft value), weights per dimension, as semivq's approach 3.
  The last layer starts at zero, so ``gamma`` starts at 0.

Both shape training only. In eval mode the soft quantizer is hard (the nearest codeword, a fixed
table), so they vanish from the inference path and indices decode exactly; semivq instead adds
``gamma`` at inference too, where a receiver of indices could not rebuild it. The price: the
decoder is trained on ``z_soft + gamma`` and decodes ``e_k``; nothing but the VQ terms pulls the
two together, so whether this helps is for the benchmark to say.
"""

from __future__ import annotations

import torch
from torch import nn

from mmslim.config import GAMMA_POLICIES, STD_PENALTIES


class LearnedStd(nn.Module):
    """Per-dimension kernel scale ``sigma = exp(log_std)`` (D,), and its penalty.

    Args:
        code_dim: D. penalty: one of :data:`~mmslim.config.STD_PENALTIES`.
        weight: factor of the penalty in the loss.
    """

    def __init__(self, code_dim: int, penalty: str = "none", weight: float = 0.01):
        super().__init__()
        if penalty not in STD_PENALTIES:
            raise ValueError(f"unknown alter_penalty {penalty!r}; choose one of {STD_PENALTIES}")
        self.penalty_kind, self.weight = penalty, weight
        self.log_std = nn.Parameter(torch.zeros(code_dim))  # (D,)

    def sigma(self) -> torch.Tensor:
        return self.log_std.exp()  # (D,)

    def scale(self, z: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, D), (K, D) -> both divided by sigma per dimension: the squared distance between
        them is then ``sum_d (z_d - e_kd)^2 / sigma_d^2``."""
        s = self.sigma()
        return z / s, codes / s

    def penalty(self) -> torch.Tensor:
        """Scalar: ``weight * mean((1 - sigma)^2)`` ("unit"), ``-weight * mean(sigma^2)``
        ("spread"), or 0 ("none")."""
        s = self.sigma()
        if self.penalty_kind == "unit":
            return self.weight * (1 - s).square().mean()
        if self.penalty_kind == "spread":
            return -self.weight * s.square().mean()
        return s.new_zeros(())

    def extra_repr(self) -> str:
        return f"penalty={self.penalty_kind!r}, weight={self.weight}"


class GammaOffset(nn.Module):
    """Learned offset ``gamma`` for the soft output (see the module doc).

    Args:
        num_codes: K. code_dim: D. policy: ``"shared"`` or ``"personalize"``.
        hidden: width of the small MLPs.

    Shapes: ``forward(z_soft, codes)``: (N, D), (K, D) -> gamma, (1, D) shared or (N, D)
    personalised.
    """

    def __init__(self, num_codes: int, code_dim: int, policy: str = "shared", hidden: int = 8):
        super().__init__()
        if policy not in GAMMA_POLICIES:
            raise ValueError(f"unknown gamma_policy {policy!r}; choose one of {GAMMA_POLICIES}")
        self.policy = policy
        if policy == "shared":  # one MLP K -> hidden -> 1, applied to each dimension's K values
            self.net = nn.Sequential(nn.Linear(num_codes, hidden), nn.ReLU(), nn.Linear(hidden, 1))
            nn.init.zeros_(self.net[2].weight)
            nn.init.zeros_(self.net[2].bias)
        else:  # per dimension an MLP 3 -> hidden -> 1 (weights (D, 3, hidden), (D, hidden))
            self.w1 = nn.Parameter(torch.randn(code_dim, 3, hidden) / 3**0.5)
            self.b1 = nn.Parameter(torch.zeros(code_dim, hidden))
            self.w2 = nn.Parameter(torch.zeros(code_dim, hidden))
            self.b2 = nn.Parameter(torch.zeros(code_dim))

    def forward(self, z_soft: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        if self.policy == "shared":
            return self.net(codes.t()).t()  # (D, K) -> (D, 1) -> (1, D)
        mean = codes.mean(0).expand_as(z_soft)  # (N, D)
        var = codes.var(0, unbiased=False).expand_as(z_soft)  # (N, D)
        x = torch.stack([mean, z_soft, var], dim=2)  # (N, D, 3)
        h = torch.relu(torch.einsum("ndi,dih->ndh", x, self.w1) + self.b1)  # (N, D, hidden)
        return (h * self.w2).sum(2) + self.b2  # (N, D)

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}"


__all__ = ["GammaOffset", "LearnedStd"]
