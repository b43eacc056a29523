"""The quantizer zoo: build any quantizer from a :class:`~mmslim.config.ModelConfig`, by name.

``ModelConfig.quantizer`` is one family's config (:data:`~mmslim.config.QUANTIZER_CONFIGS`:
``VQConfig``, ``FSQConfig``, ``GumbelConfig``, ``SoftConfig``, ``LibraryVQConfig``), holding that
family's options only; their defaults give each family's plain method (``VQConfig()`` is the
reference's VQ-VAE). ``quantizer_branches`` says which branch(es) use it: the other branch keeps
the plain VQ, so that a variant can be tried in the fine branch, the coarse branch, or both.

:data:`VARIANTS` names the settings compared by ``mmslim bench quantizers`` and notebook 09, each
a family config, with its source in :data:`SOURCES`::

    config = variant_config(ModelConfig.preset("cpu-small"), "vq-ema")
    quantizer = build_quantizer(config, "hi")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from mmslim.config import (
    QUANTIZER_FAMILIES,
    FSQConfig,
    GumbelConfig,
    LibraryVQConfig,
    ModelConfig,
    QuantizerConfig,
    SoftConfig,
    VQConfig,
)
from mmslim.nn.quantizers.fsq import FSQ, default_levels
from mmslim.nn.quantizers.gumbel import GumbelQuantizer, SoftQuantizer
from mmslim.nn.quantizers.library import LibraryVQ
from mmslim.nn.quantizers.vq import Quantizer, VectorQuantizer

_SEEDS = {"hi": 0, "lo": 1}  # distinct random streams per branch


def _codebook_options(q, branch: str) -> dict:
    return {
        "init": q.codebook_init,
        "dead_code_threshold": q.dead_code_steps,
        "affine": q.affine,
        "seed": _SEEDS[branch],
    }


def _vq(q: VQConfig, c: ModelConfig, branch: str) -> Quantizer:
    return VectorQuantizer(
        c.num_codes,
        c.code_dim,
        beta=c.beta,
        ema_decay=q.ema_decay or None,
        gradient=q.gradient,
        sync_nu=q.sync_nu,
        inplace_lr=q.inplace_lr if q.inplace_optimizer == "sgd" else 0.0,
        **_codebook_options(q, branch),
    )


def _fsq(q: FSQConfig, c: ModelConfig, branch: str) -> Quantizer:
    levels = q.levels or default_levels(c.num_codes)
    fsq = FSQ(levels, c.code_dim)
    if fsq.num_codes != c.num_codes:
        raise ValueError(
            f"FSQ levels {levels} give {fsq.num_codes} codes; the codec needs num_codes = "
            f"{c.num_codes}: choose levels whose product is {c.num_codes}"
        )
    return fsq


def _gumbel(q: GumbelConfig, c: ModelConfig, branch: str) -> Quantizer:
    return GumbelQuantizer(
        c.num_codes,
        c.code_dim,
        c.beta,
        tau_start=q.tau_start,
        tau_end=q.tau_end,
        anneal_steps=q.anneal_steps,
        **_codebook_options(q, branch),
    )


def _soft(q: SoftConfig, c: ModelConfig, branch: str) -> Quantizer:
    return SoftQuantizer(
        c.num_codes,
        c.code_dim,
        c.beta,
        tau=q.tau,
        learnable_std=q.learnable_std,
        alter_penalty=q.alter_penalty,
        penalty_weight=q.penalty_weight,
        learnable_gamma=q.learnable_gamma,
        gamma_policy=q.gamma_policy,
        **_codebook_options(q, branch),
    )


def _vqp(q: LibraryVQConfig, c: ModelConfig, branch: str) -> Quantizer:
    return LibraryVQ(
        c.num_codes,
        c.code_dim,
        c.beta,
        ema_decay=q.ema_decay,
        kmeans_init=q.codebook_init == "kmeans",
        dead_code=q.dead_code,
        rotation_trick=q.gradient == "rotation",
    )


# Family name -> builder(family config, model config, branch).
QUANTIZERS: dict[str, Callable[..., Quantizer]] = {
    "vq": _vq,
    "fsq": _fsq,
    "gumbel": _gumbel,
    "soft": _soft,
    "vqp": _vqp,
}
assert tuple(QUANTIZERS) == QUANTIZER_FAMILIES, "register each family in mmslim.config too"


def build_quantizer(config: ModelConfig, branch: str = "hi") -> Quantizer:
    """The quantizer of ``branch`` (``"hi"`` or ``"lo"``) that ``config`` describes."""
    if branch not in _SEEDS:
        raise ValueError(f"unknown branch {branch!r}; choose 'hi' or 'lo'")
    if config.quantizer_branches not in ("both", branch):  # this branch keeps the plain VQ
        return VectorQuantizer(config.num_codes, config.code_dim, beta=config.beta)
    return QUANTIZERS[config.quantizer.family](config.quantizer, config, branch)


# Named settings for comparisons: a family config each, put into any base config's sizes.
VARIANTS: dict[str, QuantizerConfig] = {
    "vq": VQConfig(),
    "vq-ema": VQConfig(ema_decay=0.99),
    "vq-kmeans": VQConfig(codebook_init="kmeans"),
    "vq-rd-gaussian": VQConfig(codebook_init="rd_gaussian"),
    "vq-dead-code": VQConfig(dead_code_steps=20),
    "vq-rotation": VQConfig(gradient="rotation"),
    "vq-affine": VQConfig(affine="learned"),
    "vq-ema-kmeans-dead": VQConfig(ema_decay=0.99, codebook_init="kmeans", dead_code_steps=20),
    "vq-sync": VQConfig(sync_nu=0.2),
    "vq-inplace": VQConfig(inplace_optimizer="sgd"),
    "vq-affine-statistics": VQConfig(affine="statistics"),
    "fsq": FSQConfig(),
    "gumbel": GumbelConfig(),
    "soft": SoftConfig(),
    "soft-std": SoftConfig(learnable_std=True, alter_penalty="unit"),
    "soft-gamma": SoftConfig(learnable_gamma=True),
    "soft-gamma-personal": SoftConfig(learnable_gamma=True, gamma_policy="personalize"),
    "vqp-ema-kmeans-dead": LibraryVQConfig(ema_decay=0.99, codebook_init="kmeans", dead_code=True),
}

SOURCES: dict[str, str] = {
    "vq": "van den Oord et al., Neural Discrete Representation Learning, NeurIPS 2017",
    "vq-ema": "van den Oord et al. 2017 (appendix A.1); Razavi et al., VQ-VAE-2, NeurIPS 2019",
    "vq-kmeans": "Zeghidour et al., SoundStream, IEEE/ACM TASLP 2021 (k-means init)",
    "vq-rd-gaussian": "Cover & Thomas, Elements of Information Theory, 10.3.2 (Gaussian R(D))",
    "vq-dead-code": "Dhariwal et al., Jukebox, 2020 (random restarts of dead codes)",
    "vq-rotation": "Fifty et al., Restructuring VQ with the Rotation Trick, ICLR 2025",
    "vq-affine": "Huh et al., Straightening Out the Straight-Through Estimator, ICML 2023",
    "vq-ema-kmeans-dead": "SoundStream's recipe: EMA + k-means init + dead-code replacement",
    "vq-sync": "Huh et al. 2023, synchronized update (nu = 0.2, vqtorch's example)",
    "vq-inplace": "Huh et al. 2023, alternated optimisation (in-place SGD, lr 50, momentum 0.9)",
    "vq-affine-statistics": "Huh et al. 2023, affine codebook from running statistics (vqtorch)",
    "fsq": "Mentzer et al., Finite Scalar Quantization: VQ-VAE Made Simple, ICLR 2024",
    "gumbel": "Jang et al., Categorical Reparameterization with Gumbel-Softmax, ICLR 2017",
    "soft": "Agustsson et al., Soft-to-Hard Vector Quantization, NeurIPS 2017",
    "soft-std": "semivq (soft discretization on vqtorch), approach 1: learnable std, unit penalty",
    "soft-gamma": "semivq, approach 2: a learned offset shared by all codes",
    "soft-gamma-personal": "semivq, approach 3: a learned offset per vector (personalize)",
    "vqp-ema-kmeans-dead": "the same recipe from vector-quantize-pytorch 1.32.0 (wrapped)",
}


# The ModelConfig fields a variant sets; everything else (the sizes) comes from the base config.
QUANTIZER_FIELDS = ("quantizer", "quantizer_branches")


def variant_config(base: ModelConfig, name: str, branches: str = "both", **overrides):
    """``base``'s sizes with variant ``name`` (:data:`VARIANTS`) in ``branches``, its family
    config changed by ``overrides`` (that family's options, e.g. ``levels=(8, 8, 8)`` for FSQ).
    Whatever quantizer ``base`` chose is replaced, so every variant differs from plain VQ by
    exactly its own settings."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}")
    quantizer = VARIANTS[name]
    options = {f.name for f in dataclasses.fields(quantizer)}
    foreign = sorted(set(overrides) - options)
    if foreign:
        raise ValueError(
            f"quantizer {quantizer.family!r} ({type(quantizer).__name__}) has no option "
            f"{', '.join(foreign)}; its options: {', '.join(sorted(options)) or 'none'}"
        )
    quantizer = dataclasses.replace(quantizer, **overrides)
    return dataclasses.replace(base, quantizer=quantizer, quantizer_branches=branches)


__all__ = [
    "QUANTIZERS",
    "QUANTIZER_FIELDS",
    "SOURCES",
    "VARIANTS",
    "build_quantizer",
    "variant_config",
]
