"""Vector quantizers: the bottleneck of each VQ-VAE branch.

Every quantizer subclasses :class:`Quantizer` and shares one interface, so that the branches,
the codec and the notebooks work with any of them:

    z_q, indices, info = quantizer(z)      # z: (B, D, h, w) float
    z_q = quantizer.lookup(indices)         # indices: (B, h, w) int64 -> (B, D, h, w)

Here: the interface and :class:`VectorQuantizer`, plain VQ whose options (flags, off by default)
are the literature's fixes: data-dependent codebook initialisation, EMA codebook updates,
dead-code replacement, the rotation trick, an affine codebook. Other families live next door:
:mod:`mmslim.nn.quantizers.fsq`, :mod:`mmslim.nn.quantizers.gumbel` (Gumbel-softmax and soft
quantisation);
:mod:`mmslim.nn.quantizers.zoo` builds any of them from a :class:`~mmslim.config.ModelConfig`.

The gradient tricks are small pure functions with their own tests: :func:`straight_through`,
:func:`rotation_trick`, :func:`vq_losses`, :func:`perplexity`.

Reference: van den Oord et al., "Neural Discrete Representation Learning" (VQ-VAE), NeurIPS 2017.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmslim.config import AFFINE_MODES, VQ_GRADIENTS
from mmslim.nn.quantizers import codebook_updates as updates
from mmslim.nn.quantizers.codebook_init import INITS, init_codebook_shared
from mmslim.training.distributed import total_rows

GRADIENTS = VQ_GRADIENTS  # VectorQuantizer(gradient=...); names defined in mmslim.config


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


class VectorQuantizer(Quantizer):
    """VQ: nearest codeword by squared distance, straight-through gradient, codebook loss.

    Args:
        num_codes: K, codebook size (512 in the paper: 9-bit indices).
        code_dim: D, codeword dimension (64 in the paper).
        beta: weight of the commitment term (0.25, VQ-VAE paper).

    Options, all off by default (the defaults give the plain VQ-VAE of the reference):
        init: ``"uniform"`` in [-1/K, 1/K] (the reference); ``"kmeans"`` or ``"rd_gaussian"``
            fit the codebook to the encoder outputs of the first training batches (at least
            ``4 K`` vectors), see :mod:`mmslim.nn.quantizers.codebook_init`.
        ema_decay: ``None``, or EMA codebook updates with this decay (0.99 in VQ-VAE-2) instead
            of the codebook loss (van den Oord et al. 2017, appendix A.1); the codebook is then a
            buffer, not a parameter.
        dead_code_threshold: 0, or re-seed codes unused for this many training steps with
            encoder outputs of the current batch (Dhariwal et al., "Jukebox", 2020).
        gradient: ``"ste"`` (straight-through, VQ-VAE paper) or ``"rotation"`` (Fifty et al.,
            "Restructuring Vector Quantization with the Rotation Trick", ICLR 2025).
        affine: ``"none"``, or ``"learned"``: codewords ``e_k * scale + shift`` with a learned
            (D,) scale and shift shared by all codes (Huh et al., "Straightening Out the
            Straight-Through Estimator", ICML 2023), so that the whole codebook can follow the
            encoder outputs' statistics at once.
        seed: seeds the random draws of dead-code replacement and initialisation (each step's
            draw is seeded from ``seed`` and the step counter, so a resumed run repeats them).

    State (buffers, saved in ``state_dict``) exists only for the options that need it, so the
    plain VQ's ``state_dict`` is just ``codebook.weight``.

    Several processes (``torchrun``, DDP): the codebook state stays identical on every rank.
    EMA statistics and usage counts are summed over ranks, the data-dependent initialisation is
    fitted by rank 0 on every rank's vectors and broadcast (it starts once the ranks together
    hold ``4 K`` vectors, a decision all ranks take together), and dead codes are re-seeded
    with vectors drawn from every rank and broadcast by rank 0. Every rank must therefore run
    the same number of training-mode forwards (the ``DistributedSampler`` of
    :func:`mmslim.training.fit.train` sees to it); eval mode never communicates.

    Shapes: ``forward`` (B, D, h, w) -> z_q (B, D, h, w), indices (B, h, w) int64, info with
    ``loss`` (codebook + commitment; commitment only with EMA), ``codebook_loss``,
    ``commitment_loss``, ``perplexity``, ``counts`` (K,) and ``dead_share``.
    """

    _needs_step = False  # subclasses with a per-step schedule or random draws set this

    def __init__(
        self,
        num_codes: int,
        code_dim: int,
        beta: float = 0.25,
        *,
        init: str = "uniform",
        ema_decay: float | None = None,
        dead_code_threshold: int = 0,
        gradient: str = "ste",
        affine: str = "none",
        seed: int = 0,
    ):
        super().__init__()
        if init not in INITS:
            raise ValueError(f"unknown codebook init {init!r}; choose one of {INITS}")
        if gradient not in GRADIENTS:
            raise ValueError(f"unknown gradient {gradient!r}; choose one of {GRADIENTS}")
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in (0, 1), got {ema_decay}")
        if affine not in AFFINE_MODES:
            raise ValueError(f"unknown affine {affine!r}; choose one of {AFFINE_MODES}")
        if ema_decay is not None and affine != "none":
            raise ValueError("affine needs a codebook learned by gradient; use ema_decay=None")
        if dead_code_threshold < 0:
            raise ValueError(f"dead_code_threshold must be >= 0, got {dead_code_threshold}")
        self.num_codes = num_codes
        self.code_dim = code_dim
        self.beta = beta
        self.init, self.ema_decay, self.gradient = init, ema_decay, gradient
        self.dead_code_threshold, self.affine, self.seed = dead_code_threshold, affine, seed
        self.codebook = nn.Embedding(num_codes, code_dim)  # weight: (K, D)
        nn.init.uniform_(self.codebook.weight, -1.0 / num_codes, 1.0 / num_codes)
        if ema_decay is not None:
            # The codebook moves by EMA, not by the optimiser: make its weight a buffer, so that
            # it stays out of parameters() (and of the optimiser) but in the state_dict.
            weight = self.codebook.weight.detach().clone()
            del self.codebook.weight
            self.codebook.register_buffer("weight", weight)
            # Start as if every code had seen one vector equal to itself: an unused code then
            # stays put instead of being divided by a near-zero cluster size.
            self.register_buffer("cluster_size", torch.ones(num_codes))  # (K,)
            self.register_buffer("embed_sum", weight.clone())  # (K, D)
        if affine == "learned":
            self.affine_scale = nn.Parameter(torch.ones(code_dim))  # (D,)
            self.affine_shift = nn.Parameter(torch.zeros(code_dim))  # (D,)
        if init != "uniform":
            self.register_buffer("initialized", torch.tensor(False))
            self._init_pool: list[torch.Tensor] = []  # first batches' vectors, not saved
        if dead_code_threshold > 0:
            self.register_buffer("unused_steps", torch.zeros(num_codes, dtype=torch.int64))
        if dead_code_threshold > 0 or self._needs_step:
            self.register_buffer("step", torch.tensor(0, dtype=torch.int64))  # training steps

    # --- codebook -------------------------------------------------------------------------

    def codes(self) -> torch.Tensor:
        """The (K, D) codewords as used: the codebook, scaled and shifted when ``affine``."""
        if self.affine == "learned":
            return self.codebook.weight * self.affine_scale + self.affine_shift
        return self.codebook.weight

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest codeword: (B, D, h, w) float -> (B, h, w) int64."""
        b, d, h, w = z.shape
        # In float32 even under bf16 autocast (CUDA training): bf16 keeps 8 bits of mantissa and
        # would pick another code than the float32 receiver for close codewords.
        with torch.autocast(z.device.type, enabled=False):
            flat = z.float().permute(0, 2, 3, 1).reshape(-1, d)  # (B*h*w, D)
            codes = self.codes().float()  # (K, D)
            # ||z - e||^2 = ||z||^2 - 2 z.e + ||e||^2; ||z||^2 is the same for every e: drop it.
            # addmm computes ||e||^2 - 2 z.e in one fused pass.
            dist = torch.addmm((codes * codes).sum(dim=1), flat, codes.t(), alpha=-2.0)
        return dist.argmin(dim=1).reshape(b, h, w)  # (B, h, w)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codewords of ``indices``: (B, h, w) int64 -> (B, D, h, w)."""
        z_q = F.embedding(indices, self.codes())  # (B, h, w, D)
        return z_q.permute(0, 3, 1, 2).contiguous()  # (B, D, h, w)

    def generator(self, stream: int = 0) -> torch.Generator:
        """A CPU generator seeded from ``seed``, the step counter and ``stream`` (one per kind of
        draw): the draws repeat exactly when a run is resumed from a checkpoint."""
        step = int(self.step) if hasattr(self, "step") else 0
        return torch.Generator().manual_seed((self.seed * 1_000_003 + step) * 8 + stream)

    # --- training-time maintenance (never in eval mode) --------------------------------------

    @torch.no_grad()
    def prepare(self, flat: torch.Tensor) -> None:
        """Before quantizing a training batch ``flat`` (N, D): data-dependent initialisation,
        then re-seeding of dead codes from this batch (of every rank's, under ``torchrun``)."""
        if self.init != "uniform" and not bool(self.initialized):
            self._init_pool.append(flat.detach().float())
            pool = torch.cat(self._init_pool)  # (n, D)
            if total_rows(pool) >= 4 * self.num_codes:  # all ranks' vectors, decided together
                self._set_codes(torch.arange(self.num_codes), init_codebook_shared(
                    self.init, pool, self.num_codes, self.generator()))  # fmt: skip
                self.initialized.fill_(True)
                self._init_pool.clear()
        if self.dead_code_threshold > 0:
            dead = updates.dead_codes(self.unused_steps, self.dead_code_threshold)  # (M,)
            if len(dead):  # the same codes on every rank: usage counts are summed over ranks
                fresh = updates.sample_rows_shared(
                    flat.float(), len(dead), self.generator(stream=2)
                )
                self._set_codes(dead, fresh)
                self.unused_steps[dead] = 0

    @torch.no_grad()
    def _set_codes(self, which: torch.Tensor, vectors: torch.Tensor) -> None:
        """Set codewords ``which`` (M,) so that, as used (after the affine map, if any), they
        equal ``vectors`` (M, D); with EMA, restart their statistics from them."""
        which = which.to(self.codebook.weight.device)
        vectors = vectors.to(self.codebook.weight)
        if self.affine == "learned":  # the raw vector whose scaled, shifted version is ``vectors``
            vectors = (vectors - self.affine_shift) / self.affine_scale
        self.codebook.weight[which] = vectors
        if self.ema_decay is not None:
            self.cluster_size[which] = 1.0
            self.embed_sum[which] = vectors

    @torch.no_grad()
    def update(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        """After quantizing a training batch: EMA step, usage counters, step counter."""
        idx = indices.reshape(-1)  # (N,)
        if self.ema_decay is not None:
            updates.ema_update(self.codebook.weight, self.cluster_size, self.embed_sum,
                               flat, idx, self.ema_decay)  # fmt: skip
        if self.dead_code_threshold > 0:
            updates.count_unused(self.unused_steps, idx)
        if hasattr(self, "step"):
            self.step += 1

    # --- forward ---------------------------------------------------------------------------

    def check(self, z: torch.Tensor) -> torch.Tensor:
        """Raise unless ``z`` is (B, D, h, w); return its vectors (B*h*w, D), detached."""
        if z.dim() != 4 or z.shape[1] != self.code_dim:
            raise ValueError(
                f"expected z of shape (B, {self.code_dim}, h, w), got {tuple(z.shape)}"
            )
        return z.detach().permute(0, 2, 3, 1).reshape(-1, self.code_dim)  # (B*h*w, D)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        flat = self.check(z)
        if self.training:
            self.prepare(flat)
        with torch.no_grad():
            indices = self.nearest(z)  # (B, h, w)
        z_q = self.lookup(indices)  # (B, D, h, w), carries the gradient to the codebook
        codebook_loss, commitment_loss = vq_losses(z, z_q, self.beta)
        if self.ema_decay is None:
            loss = codebook_loss + commitment_loss
        else:  # the codebook follows the EMA; its loss is only reported
            loss, codebook_loss = commitment_loss, codebook_loss.detach()
        info = {
            "loss": loss,
            "codebook_loss": codebook_loss,
            "commitment_loss": commitment_loss,
            **usage_stats(indices, self.num_codes),
        }
        if self.training:
            self.update(flat, indices)
        if self.training and self.gradient == "rotation":  # same value, another gradient
            return rotation_trick(z, z_q), indices, info
        return straight_through(z, z_q), indices, info

    def extra_repr(self) -> str:
        options = [f"num_codes={self.num_codes}", f"code_dim={self.code_dim}", f"beta={self.beta}"]
        defaults = {"init": "uniform", "ema_decay": None, "dead_code_threshold": 0,
                    "gradient": "ste", "affine": "none"}  # fmt: skip
        options += [
            f"{k}={getattr(self, k)!r}" for k, v in defaults.items() if getattr(self, k) != v
        ]
        return ", ".join(options)


__all__ = [
    "GRADIENTS",
    "Quantizer",
    "VectorQuantizer",
    "code_counts",
    "perplexity",
    "rotation_trick",
    "straight_through",
    "usage_stats",
    "vq_losses",
]
