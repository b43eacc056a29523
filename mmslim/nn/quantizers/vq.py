"""Vector quantization: :class:`VectorQuantizer`, plain VQ with the literature's fixes as options.

The interface every quantizer shares (``forward(z) -> (z_q, indices, info)``, ``lookup``) and the
gradient tricks live in :mod:`~mmslim.nn.quantizers.interface` (re-exported here). The options of
:class:`VectorQuantizer` are flags, off by default: data-dependent codebook initialisation
(:mod:`~mmslim.nn.quantizers.codebook_init`), EMA codebook updates and dead-code replacement
(:mod:`~mmslim.nn.quantizers.codebook_updates`), the rotation trick, an affine codebook (learned,
or from running statistics), and VQ-STE++'s synchronized update and alternated optimisation
(Huh et al., ICML 2023; :mod:`~mmslim.nn.quantizers.ste_plus`). Other families live next door:
:mod:`mmslim.nn.quantizers.fsq`, :mod:`mmslim.nn.quantizers.gumbel` (Gumbel-softmax and soft
quantisation); :mod:`mmslim.nn.quantizers.zoo` builds any of them from a
:class:`~mmslim.config.ModelConfig`.

Reference: van den Oord et al., "Neural Discrete Representation Learning" (VQ-VAE), NeurIPS 2017.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmslim.config import AFFINE_MODES, VQ_GRADIENTS
from mmslim.nn.quantizers import codebook_updates as updates
from mmslim.nn.quantizers import ste_plus
from mmslim.nn.quantizers.codebook_init import INITS, init_codebook_shared
from mmslim.nn.quantizers.interface import (
    Quantizer,
    code_counts,
    perplexity,
    rotation_trick,
    straight_through,
    usage_stats,
    vq_losses,
)
from mmslim.nn.quantizers.search import CodewordSearch, nearest_codeword, search_tables
from mmslim.training.distributed import total_rows

GRADIENTS = VQ_GRADIENTS  # VectorQuantizer(gradient=...); names defined in mmslim.config


def _check_ste_plus(sync_nu, inplace_lr, ema_decay, gradient, affine) -> None:
    """Refuse VQ-STE++ options that cannot act together (see :mod:`.ste_plus`)."""
    if sync_nu < 0 or inplace_lr < 0:
        raise ValueError(f"sync_nu and inplace_lr must be >= 0, got {sync_nu}, {inplace_lr}")
    if sync_nu and (ema_decay is not None or inplace_lr or gradient != "ste"):
        raise ValueError(
            "sync_nu passes the decoder's gradient to a codebook learned by gradient through "
            "the straight-through estimator: use it with ema_decay=None, inplace_lr=0 and "
            "gradient='ste'"
        )
    if inplace_lr and (ema_decay is not None or affine == "learned"):
        raise ValueError(
            "inplace_lr moves the codebook by its own step: not with ema_decay (another "
            "codebook update) nor affine='learned' (it would get no gradient); "
            "affine='statistics' works"
        )


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
        affine: ``"none"``; ``"learned"``: codewords ``e_k * scale + shift`` with a learned
            (D,) scale and shift shared by all codes (Huh et al., "Straightening Out the
            Straight-Through Estimator", ICML 2023), so that the whole codebook can follow the
            encoder outputs' statistics at once; ``"statistics"``: the same map computed from
            running statistics of the encoder outputs and the codebook instead of learned
            (:mod:`~mmslim.nn.quantizers.ste_plus`).
        sync_nu: 0, or the synchronized update of Huh et al. 2023: the codewords also receive
            ``sync_nu`` times the decoder's gradient (needs a codebook learned by gradient and
            ``gradient="ste"``).
        inplace_lr: 0, or alternated optimisation (Huh et al. 2023): in each training forward
            the codebook first takes its own SGD step (momentum 0.9, this learning rate) on the
            codebook term, then the decoder sees the updated codewords; the codebook is then a
            buffer, and the codebook term is only reported.
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
    # A code that means something without being chosen (the fine branch's "nothing sent" code
    # under ModelConfig.fine_gate): never re-seeded as dead, however rarely the encoder picks it.
    reserved_code: int | None = None

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
        sync_nu: float = 0.0,
        inplace_lr: float = 0.0,
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
        _check_ste_plus(sync_nu, inplace_lr, ema_decay, gradient, affine)
        self.num_codes = num_codes
        self.code_dim = code_dim
        self.beta = beta
        self.init, self.ema_decay, self.gradient = init, ema_decay, gradient
        self.dead_code_threshold, self.affine, self.seed = dead_code_threshold, affine, seed
        self.sync_nu, self.inplace_lr = sync_nu, inplace_lr
        self.codebook = nn.Embedding(num_codes, code_dim)  # weight: (K, D)
        nn.init.uniform_(self.codebook.weight, -1.0 / num_codes, 1.0 / num_codes)
        if ema_decay is not None or inplace_lr > 0:
            # The codebook moves by EMA or its own step, not by the optimiser: make its weight a
            # buffer, so that it stays out of parameters() (and of the optimiser) but in the
            # state_dict.
            weight = self.codebook.weight.detach().clone()
            del self.codebook.weight
            self.codebook.register_buffer("weight", weight)
        if inplace_lr > 0:
            self.register_buffer("inplace_momentum", torch.zeros(num_codes, code_dim))  # (K, D)
        if ema_decay is not None:
            # Start as if every code had seen one vector equal to itself: an unused code then
            # stays put instead of being divided by a near-zero cluster size.
            self.register_buffer("cluster_size", torch.ones(num_codes))  # (K,)
            self.register_buffer("embed_sum", weight.clone())  # (K, D)
        if affine == "learned":
            self.affine_scale = nn.Parameter(torch.ones(code_dim))  # (D,)
            self.affine_shift = nn.Parameter(torch.zeros(code_dim))  # (D,)
        if affine == "statistics":  # rows: mean, var of the encoder outputs; of the codebook
            stats = torch.tensor([0.0, 1.0, 0.0, 1.0]).repeat_interleave(code_dim)
            self.register_buffer("affine_stats", stats.view(4, code_dim))  # (4, D): identity
            self.register_buffer("affine_stats_ready", torch.tensor(False))
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
        return self._affine(self.codebook.weight)

    def _affine(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw codewords (K, D) -> codewords as used."""
        if self.affine == "learned":
            return raw * self.affine_scale + self.affine_shift
        if self.affine == "statistics":
            scale, shift = ste_plus.affine_from_statistics(*self.affine_stats)
            return raw * scale + shift
        return raw

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest codeword: (B, D, h, w) float -> (B, h, w) int64."""
        # In float32 even under bf16 autocast (CUDA training): bf16 keeps 8 bits of mantissa and
        # would pick another code than the float32 receiver for close codewords.
        with torch.autocast(z.device.type, enabled=False):
            return nearest_codeword(z.float(), *search_tables(self.codes().float()))

    def search(self, allowed: torch.Tensor | None = None) -> CodewordSearch:
        """The nearest-codeword search with this codebook's tables computed once, for inference
        (indices identical to :meth:`nearest`, or to ``search.nearest_allowed`` of ``allowed``);
        a snapshot: rebuild it after training."""
        return CodewordSearch(self.codes().float(), allowed)

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
        then re-seeding of dead codes from this batch (of every rank's, under ``torchrun``).
        With ``affine="statistics"``, the running statistics take this batch in first."""
        if self.affine == "statistics":
            ste_plus.update_statistics(self.affine_stats, flat, self.codebook.weight,
                                       first=not bool(self.affine_stats_ready))  # fmt: skip
            self.affine_stats_ready.fill_(True)
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
            if self.reserved_code is not None:
                dead = dead[dead != self.reserved_code]
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
        elif self.affine == "statistics":
            scale, shift = ste_plus.affine_from_statistics(*self.affine_stats)
            vectors = (vectors - shift) / scale
        self.codebook.weight[which] = vectors
        if self.inplace_lr > 0:
            self.inplace_momentum[which] = 0.0
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
        if self.training and self.inplace_lr > 0:  # the codebook's own step comes first
            ste_plus.inplace_sgd_step(self.codebook.weight, self.inplace_momentum, self._affine,
                                      flat, indices.reshape(-1), self.inplace_lr)  # fmt: skip
        z_q = self.lookup(indices)  # (B, D, h, w), carries the gradient to the codebook
        codebook_loss, commitment_loss = vq_losses(z, z_q, self.beta)
        if self.ema_decay is None and self.inplace_lr == 0:
            loss = codebook_loss + commitment_loss
        else:  # the codebook follows the EMA or its own step; its loss is only reported
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
        if self.sync_nu:  # same value, and nu times the gradient reaches the codewords
            return ste_plus.synchronized_straight_through(z, z_q, self.sync_nu), indices, info
        return straight_through(z, z_q), indices, info

    def extra_repr(self) -> str:
        options = [f"num_codes={self.num_codes}", f"code_dim={self.code_dim}", f"beta={self.beta}"]
        defaults = {"init": "uniform", "ema_decay": None, "dead_code_threshold": 0,
                    "gradient": "ste", "affine": "none", "sync_nu": 0.0,
                    "inplace_lr": 0.0}  # fmt: skip
        options += [
            f"{k}={getattr(self, k)!r}" for k, v in defaults.items() if getattr(self, k) != v
        ]
        return ", ".join(options)


__all__ = [
    "GRADIENTS",
    "CodewordSearch",
    "Quantizer",
    "VectorQuantizer",
    "code_counts",
    "nearest_codeword",
    "perplexity",
    "rotation_trick",
    "search_tables",
    "straight_through",
    "usage_stats",
    "vq_losses",
]
