"""The quantizer zoo: build any quantizer from a :class:`~mmslim.config.ModelConfig`, by name.

``ModelConfig.quantizer`` names the family (:data:`QUANTIZERS`); the other quantizer fields of
the config are its options, whose defaults give the plain VQ-VAE. ``quantizer_branches`` says
which branch(es) use them: the other branch keeps the plain VQ, so that a variant can be tried in
the fine branch, the coarse branch, or both.

:data:`VARIANTS` names the settings compared by ``mmslim bench quantizers`` and notebook 09, each
as config overrides, with its source in :data:`SOURCES`::

    config = variant_config(ModelConfig.preset("cpu-small"), "vq-ema")
    quantizer = build_quantizer(config, "hi")
"""

from __future__ import annotations

from collections.abc import Callable

from mmslim.config import QUANTIZER_BRANCHES, QUANTIZER_FAMILIES, ModelConfig
from mmslim.nn.quantizers.fsq import FSQ, default_levels
from mmslim.nn.quantizers.gumbel import GumbelQuantizer, SoftQuantizer
from mmslim.nn.quantizers.library import LibraryVQ
from mmslim.nn.quantizers.vq import Quantizer, VectorQuantizer

_SEEDS = {"hi": 0, "lo": 1}  # distinct random streams per branch


def _codebook_options(c: ModelConfig, branch: str) -> dict:
    return {
        "init": c.codebook_init,
        "dead_code_threshold": c.dead_code_steps,
        "affine": c.codebook_affine,
        "seed": _SEEDS[branch],
    }


def _vq(c: ModelConfig, branch: str) -> Quantizer:
    return VectorQuantizer(
        c.num_codes,
        c.code_dim,
        beta=c.beta,
        ema_decay=c.ema_decay or None,
        gradient=c.vq_gradient,
        **_codebook_options(c, branch),
    )


def _refuse(c: ModelConfig, *names: str) -> None:
    """Raise if any of the config fields ``names`` is set away from its default."""
    default = ModelConfig()
    for name in names:
        if getattr(c, name) != getattr(default, name):
            raise ValueError(
                f"quantizer {c.quantizer!r} has no option {name} (got {getattr(c, name)!r})"
            )


def _fsq(c: ModelConfig, branch: str) -> Quantizer:
    _refuse(c, "codebook_init", "ema_decay", "dead_code_steps", "vq_gradient", "codebook_affine")
    levels = tuple(c.fsq_levels) or default_levels(c.num_codes)
    fsq = FSQ(levels, c.code_dim)
    if fsq.num_codes != c.num_codes:
        raise ValueError(
            f"FSQ levels {levels} give {fsq.num_codes} codes; the codec needs num_codes = "
            f"{c.num_codes}: choose levels whose product is {c.num_codes}"
        )
    return fsq


def _gumbel(c: ModelConfig, branch: str) -> Quantizer:
    _refuse(c, "ema_decay", "vq_gradient")
    return GumbelQuantizer(
        c.num_codes,
        c.code_dim,
        c.beta,
        tau_start=c.gumbel_tau_start,
        tau_end=c.gumbel_tau_end,
        anneal_steps=c.gumbel_anneal_steps,
        **_codebook_options(c, branch),
    )


def _soft(c: ModelConfig, branch: str) -> Quantizer:
    _refuse(c, "ema_decay", "vq_gradient")
    return SoftQuantizer(
        c.num_codes, c.code_dim, c.beta, tau=c.soft_tau, **_codebook_options(c, branch)
    )


def _vqp(c: ModelConfig, branch: str) -> Quantizer:
    _refuse(c, "codebook_affine")
    if c.codebook_init not in ("uniform", "kmeans"):
        raise ValueError(
            f"quantizer 'vqp' offers codebook_init 'uniform' (the library's own) or 'kmeans', "
            f"got {c.codebook_init!r}"
        )
    return LibraryVQ(
        c.num_codes,
        c.code_dim,
        c.beta,
        ema_decay=c.ema_decay,
        kmeans_init=c.codebook_init == "kmeans",
        dead_code=c.dead_code_steps > 0,
        rotation_trick=c.vq_gradient == "rotation",
    )


# Family name -> builder(config, branch).
QUANTIZERS: dict[str, Callable[[ModelConfig, str], Quantizer]] = {
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
    if config.quantizer not in QUANTIZERS:
        raise ValueError(
            f"unknown quantizer {config.quantizer!r}; available: {', '.join(QUANTIZERS)}"
        )
    if config.quantizer_branches not in QUANTIZER_BRANCHES:
        raise ValueError(
            f"unknown quantizer_branches {config.quantizer_branches!r}; "
            f"choose one of {QUANTIZER_BRANCHES}"
        )
    if config.quantizer_branches not in ("both", branch):  # this branch keeps the plain VQ
        return VectorQuantizer(config.num_codes, config.code_dim, beta=config.beta)
    return QUANTIZERS[config.quantizer](config, branch)


# Named settings for comparisons: config overrides on top of any base config.
VARIANTS: dict[str, dict] = {
    "vq": {},
    "vq-ema": {"ema_decay": 0.99},
    "vq-kmeans": {"codebook_init": "kmeans"},
    "vq-rd-gaussian": {"codebook_init": "rd_gaussian"},
    "vq-dead-code": {"dead_code_steps": 20},
    "vq-rotation": {"vq_gradient": "rotation"},
    "vq-affine": {"codebook_affine": True},
    "vq-ema-kmeans-dead": {"ema_decay": 0.99, "codebook_init": "kmeans", "dead_code_steps": 20},
    "fsq": {"quantizer": "fsq"},
    "gumbel": {"quantizer": "gumbel"},
    "soft": {"quantizer": "soft"},
    "vqp-ema-kmeans-dead": {
        "quantizer": "vqp",
        "ema_decay": 0.99,
        "codebook_init": "kmeans",
        "dead_code_steps": 20,
    },
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
    "fsq": "Mentzer et al., Finite Scalar Quantization: VQ-VAE Made Simple, ICLR 2024",
    "gumbel": "Jang et al., Categorical Reparameterization with Gumbel-Softmax, ICLR 2017",
    "soft": "Agustsson et al., Soft-to-Hard Vector Quantization, NeurIPS 2017",
    "vqp-ema-kmeans-dead": "the same recipe from vector-quantize-pytorch 1.32.0 (wrapped)",
}


# The fields that choose and tune the quantizer; a variant starts from their defaults (plain VQ).
QUANTIZER_FIELDS = ("quantizer", "codebook_init", "ema_decay", "dead_code_steps", "vq_gradient",
                    "codebook_affine", "fsq_levels", "gumbel_tau_start", "gumbel_tau_end",
                    "gumbel_anneal_steps", "soft_tau")  # fmt: skip


def variant_config(base: ModelConfig, name: str, branches: str = "both", **overrides):
    """``base``'s sizes with the settings of variant ``name`` (:data:`VARIANTS`) in ``branches``:
    the quantizer fields start from their defaults (plain VQ), whatever ``base`` chose, so every
    variant differs from plain VQ by exactly its own settings."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}")
    plain = {k: v for k, v in ModelConfig().to_dict().items() if k in QUANTIZER_FIELDS}
    settings = {**plain, **VARIANTS[name], "quantizer_branches": branches, **overrides}
    return ModelConfig.from_dict({**base.to_dict(), **settings})


__all__ = [
    "QUANTIZERS",
    "SOURCES",
    "VARIANTS",
    "build_quantizer",
    "variant_config",
]
