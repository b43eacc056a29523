"""Relaxed quantizers: Gumbel-softmax and soft quantization over a codebook.

Both replace the hard choice of the nearest codeword, during training only, by a softmax over
the codewords with logits ``-||z - e_k||^2``; the decoder sees the mixture ``sum_k p_k e_k``, so
gradients reach the encoder and every codeword without a straight-through estimator. In eval mode
both are hard (the nearest codeword, as :class:`VectorQuantizer`), so the indices are real and
``lookup(indices)`` equals the output exactly.

- :class:`GumbelQuantizer`: Gumbel-softmax (Jang et al., "Categorical Reparameterization with
  Gumbel-Softmax", ICLR 2017; Maddison et al., "The Concrete Distribution", ICLR 2017), as in
  DALL-E's dVAE (Ramesh et al. 2021): Gumbel noise is added to the logits and the temperature is
  annealed from ``tau_start`` to ``tau_end`` over ``anneal_steps`` training steps, so that the
  samples approach one-hot codes. The code sent in training is the sampled one.
- :class:`SoftQuantizer`: soft-to-hard vector quantization (Agustsson et al., "Soft-to-Hard Vector
  Quantization for End-to-End Learning Compressible Representations", NeurIPS 2017), without
  noise, with a learned temperature instead of a hand-made annealing schedule; options from the
  soft-discretization fork of vqtorch (semivq): a learned kernel std per channel and a learned
  offset of the soft output (:mod:`~mmslim.nn.quantizers.soft_discretization`), training only.

Both keep the VQ-VAE commitment and codebook terms on the hard code, which pull the encoder
outputs toward codewords so that the soft mixture of training and the hard code of inference
agree more and more. Both inherit the codebook options of :class:`VectorQuantizer`
(initialisation, dead-code replacement, affine codebook).
"""

from __future__ import annotations

import math

import torch

from mmslim.nn.quantizers.soft_discretization import GammaOffset, LearnedStd
from mmslim.nn.quantizers.vq import VectorQuantizer, usage_stats, vq_losses


class _RelaxedQuantizer(VectorQuantizer):
    """Shared part: softmax weights over the codebook in training, nearest codeword in eval."""

    def __init__(self, num_codes: int, code_dim: int, beta: float = 0.25, **options):
        plain = {"ema_decay": None, "gradient": "ste", "sync_nu": 0.0, "inplace_lr": 0.0}
        for name, value in plain.items():
            if options.get(name, value) != value:
                raise ValueError(f"{type(self).__name__} has no {name} option")
        super().__init__(num_codes, code_dim, beta, **options)

    def temperature(self) -> torch.Tensor:
        raise NotImplementedError

    def weights(self, logits: torch.Tensor) -> torch.Tensor:
        """(N, K) logits -> (N, K) softmax weights used in training."""
        raise NotImplementedError

    def metric(self, z: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, D), (K, D) -> the same, rescaled so that their squared distance gives the logits
        (unchanged here; a learned per-dimension kernel scale in :class:`SoftQuantizer`)."""
        return z, codes

    def offset(self, z_soft: torch.Tensor, codes: torch.Tensor) -> torch.Tensor | float:
        """What is added to the soft output (N, D) in training: nothing here."""
        return 0.0

    def penalty(self) -> torch.Tensor | float:
        """A training-only term added to ``info["loss"]``: none here."""
        return 0.0

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        if not self.training:  # hard: nearest codeword, exactly what lookup() returns
            z_q, indices, info = super().forward(z)
            return z_q, indices, {**info, "temperature": self.temperature().detach()}
        flat = self.check(z)
        self.prepare(flat)
        b, d, h, w = z.shape
        codes = self.codes()  # (K, D)
        z_flat = z.permute(0, 2, 3, 1).reshape(-1, d)  # (N, D), with gradient
        # In float32 even under autocast: logits are large and close, bfloat16 would merge them.
        with torch.autocast(z.device.type, enabled=False):
            zf, cf = z_flat.float(), codes.float()
            zs, cs = self.metric(zf, cf)  # (N, D), (K, D)
            # -||z - e||^2 = 2 z.e - ||e||^2 - ||z||^2 (no square root: finite gradient at z = e)
            logits = torch.addmm((cs * cs).sum(1), zs, cs.t(), alpha=-2.0)  # ||e||^2 - 2 z.e
            logits = -(logits + (zs * zs).sum(1, keepdim=True))  # (N, K)
            p = self.weights(logits)  # (N, K)
            z_soft = p @ cf  # (N, D)
            z_soft = z_soft + self.offset(z_soft, cf)  # (N, D)
        indices = p.argmax(dim=1).reshape(b, h, w)  # (B, h, w) the code that would be sent
        z_soft = z_soft.reshape(b, h, w, d).permute(0, 3, 1, 2)  # (B, D, h, w)
        codebook_loss, commitment_loss = vq_losses(z, self.lookup(indices), self.beta)
        info = {
            "loss": codebook_loss + commitment_loss + self.penalty(),
            "codebook_loss": codebook_loss,
            "commitment_loss": commitment_loss,
            "temperature": self.temperature().detach(),
            **usage_stats(indices, self.num_codes),
        }
        self.update(flat, indices)
        return z_soft, indices, info


class GumbelQuantizer(_RelaxedQuantizer):
    """Gumbel-softmax quantization with an annealed temperature (hard in eval mode).

    Args:
        num_codes, code_dim, beta: as :class:`VectorQuantizer`.
        tau_start, tau_end: temperature at step 0 and after ``anneal_steps`` training steps;
            in between it falls geometrically (exponential decay, as in Jang et al. 2017).
        anneal_steps: training steps of the annealing; the step counter is a buffer, so a
            checkpoint resumes the schedule where it was.
        **options: codebook options of :class:`VectorQuantizer` (init, dead_code_threshold,
            affine, seed); the noise of each step is drawn from a generator seeded by ``seed``
            and the step counter, so a resumed run draws the same noise.

    Shapes: as :class:`~mmslim.nn.quantizers.Quantizer`; info adds ``temperature``.
    """

    _needs_step = True

    def __init__(
        self,
        num_codes: int,
        code_dim: int,
        beta: float = 0.25,
        tau_start: float = 1.0,
        tau_end: float = 1.0 / 16,
        anneal_steps: int = 5000,
        **options,
    ):
        if not 0 < tau_end <= tau_start or anneal_steps < 0:
            raise ValueError("need 0 < tau_end <= tau_start and anneal_steps >= 0")
        super().__init__(num_codes, code_dim, beta, **options)
        self.tau_start, self.tau_end, self.anneal_steps = tau_start, tau_end, anneal_steps

    def temperature(self) -> torch.Tensor:
        """tau_start (tau_end / tau_start)^(min(step / anneal_steps, 1))."""
        done = min(int(self.step) / self.anneal_steps, 1.0) if self.anneal_steps else 1.0
        return torch.tensor(self.tau_start * (self.tau_end / self.tau_start) ** done)

    def weights(self, logits: torch.Tensor) -> torch.Tensor:
        u = torch.rand(logits.shape, generator=self.generator(stream=1)).to(logits.device)  # (N, K)
        gumbel = -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))
        return torch.softmax((logits + gumbel) / self.temperature().item(), dim=1)

    def extra_repr(self) -> str:
        tau = f"tau={self.tau_start}->{self.tau_end} over {self.anneal_steps} steps"
        return f"{super().extra_repr()}, {tau}"


class SoftQuantizer(_RelaxedQuantizer):
    """Soft quantization with a learned temperature (hard in eval mode).

    Args:
        num_codes, code_dim, beta: as :class:`VectorQuantizer`.
        tau: initial temperature; ``log(tau)`` is a parameter, learned with the codebook.
        learnable_std: a learned kernel scale per latent channel (semivq's approach 1,
            :class:`~mmslim.nn.quantizers.soft_discretization.LearnedStd`), penalised by
            ``alter_penalty`` (``"none"``, ``"unit"``, ``"spread"``) times ``penalty_weight``.
        learnable_gamma: a learned offset added to the soft output (semivq's approaches 2 and 3,
            :class:`~mmslim.nn.quantizers.soft_discretization.GammaOffset`), ``gamma_policy``
            ``"shared"`` or ``"personalize"``.
        **options: codebook options of :class:`VectorQuantizer` (init, dead_code_threshold,
            affine, seed).

    The std and gamma act in training only: eval mode is the nearest codeword.

    Shapes: as :class:`~mmslim.nn.quantizers.Quantizer`; info adds ``temperature``.
    """

    def __init__(
        self,
        num_codes: int,
        code_dim: int,
        beta: float = 0.25,
        tau: float = 1.0,
        *,
        learnable_std: bool = False,
        alter_penalty: str = "none",
        penalty_weight: float = 0.01,
        learnable_gamma: bool = False,
        gamma_policy: str = "shared",
        **options,
    ):
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        if alter_penalty != "none" and not learnable_std:
            raise ValueError("alter_penalty penalises the learned std: set learnable_std=True")
        super().__init__(num_codes, code_dim, beta, **options)
        self.log_tau = torch.nn.Parameter(torch.tensor(math.log(tau)))
        self.std = LearnedStd(code_dim, alter_penalty, penalty_weight) if learnable_std else None
        self.gamma = GammaOffset(num_codes, code_dim, gamma_policy) if learnable_gamma else None

    def temperature(self) -> torch.Tensor:
        return self.log_tau.exp()

    def weights(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits / self.temperature(), dim=1)

    def metric(self, z: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (z, codes) if self.std is None else self.std.scale(z, codes)

    def offset(self, z_soft: torch.Tensor, codes: torch.Tensor) -> torch.Tensor | float:
        return 0.0 if self.gamma is None else self.gamma(z_soft, codes)

    def penalty(self) -> torch.Tensor | float:
        return 0.0 if self.std is None else self.std.penalty()


__all__ = ["GumbelQuantizer", "SoftQuantizer"]
