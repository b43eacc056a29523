"""One small config per quantizer family, each holding only that family's options and
checking them when it is made; :func:`quantizer_config_from_dict` also reads the flat options
that checkpoints stored before these configs existed. :mod:`mmslim.nn.quantizers.zoo` builds
the quantizers from them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from mmslim.config.base import _Config
from mmslim.config.choices import (
    AFFINE_MODES,
    CODEBOOK_INITS,
    GAMMA_POLICIES,
    INPLACE_OPTIMIZERS,
    LIBRARY_INITS,
    QUANTIZER_FAMILIES,
    STD_PENALTIES,
    VQ_GRADIENTS,
)


@dataclass(frozen=True)
class _QuantizerConfig(_Config):
    """Shared part of the quantizer family configs: the family's name travels in the dict."""

    family: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        d = dict(d)
        family = d.pop("family", cls.family)
        if family != cls.family:
            raise ValueError(f"{cls.__name__} describes family {cls.family!r}, not {family!r}")
        return super().from_dict(d)

    def _check(self, ok: bool, message: str) -> None:
        if not ok:
            raise ValueError(f"{type(self).__name__}: {message}")


@dataclass(frozen=True)
class _CodebookConfig(_QuantizerConfig):
    """Codebook options shared by the families that hold a codebook (VQ, Gumbel, soft)."""

    codebook_init: str = "uniform"  # "uniform" +-1/K (reference), "kmeans", "rd_gaussian"
    dead_code_steps: int = 0  # > 0: re-seed codes unused this many steps (Jukebox restarts)
    # Codewords e * s + t, s and t shared by all codes (Huh et al. 2023): "learned", or from
    # "statistics", running means and variances of the encoder outputs and the codebook (vqtorch).
    affine: str = "none"

    _choices: ClassVar[dict[str, tuple]] = {"codebook_init": CODEBOOK_INITS, "affine": AFFINE_MODES}

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check(self.dead_code_steps >= 0, f"dead_code_steps = {self.dead_code_steps} < 0")


@dataclass(frozen=True)
class VQConfig(_CodebookConfig):
    """Nearest-neighbour VQ (van den Oord et al. 2017); the defaults give the plain VQ-VAE."""

    family: ClassVar[str] = "vq"
    ema_decay: float = 0.0  # > 0: EMA codebook updates instead of the codebook loss (VQ-VAE-2)
    gradient: str = "ste"  # "ste" straight-through, or "rotation" (Fifty et al. 2025)
    # VQ-STE++ (Huh et al. 2023, mmslim.nn.quantizers.ste_plus):
    sync_nu: float = 0.0  # > 0: codewords also get sync_nu x the decoder's gradient
    inplace_optimizer: str = "none"  # "sgd": the codebook takes its own step before the network
    inplace_lr: float = 50.0  # learning rate of that step (momentum 0.9; vqtorch's example)

    _choices: ClassVar[dict[str, tuple]] = {
        **_CodebookConfig._choices,
        "gradient": VQ_GRADIENTS,
        "inplace_optimizer": INPLACE_OPTIMIZERS,
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check(0.0 <= self.ema_decay < 1.0, f"ema_decay = {self.ema_decay}; use 0 (off) "
                    "or a decay in (0, 1), 0.99 being the usual")  # fmt: skip
        self._check(not (self.ema_decay and self.affine != "none"),
                    "an affine codebook needs a codebook learned by gradient: set ema_decay = 0 "
                    "or affine = 'none'")  # fmt: skip
        inplace = self.inplace_optimizer != "none"
        self._check(self.sync_nu >= 0 and self.inplace_lr > 0, "sync_nu >= 0, inplace_lr > 0")
        self._check(not (self.sync_nu and (self.ema_decay or inplace or self.gradient != "ste")),
                    "sync_nu passes the decoder's gradient to a codebook learned by gradient "
                    "through the straight-through estimator: use it with ema_decay = 0, "
                    "inplace_optimizer = 'none' and gradient = 'ste'")  # fmt: skip
        self._check(not (inplace and (self.ema_decay or self.affine == "learned")),
                    "inplace_optimizer moves the codebook by its own step: not with ema_decay "
                    "> 0 nor affine = 'learned' (use affine = 'statistics')")  # fmt: skip


@dataclass(frozen=True)
class FSQConfig(_QuantizerConfig):
    """Finite scalar quantization (Mentzer et al. 2024): a fixed grid, no codebook."""

    family: ClassVar[str] = "fsq"
    levels: tuple[int, ...] = ()  # levels per channel, product = num_codes; () = (8, 8, 8) for 512

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(int(v) for v in self.levels))  # lists from dicts
        self._check(all(v >= 2 for v in self.levels), f"levels {self.levels} must all be >= 2")


@dataclass(frozen=True)
class GumbelConfig(_CodebookConfig):
    """Gumbel-softmax over the codebook (Jang et al. 2017), annealed temperature."""

    family: ClassVar[str] = "gumbel"
    tau_start: float = 1.0  # temperature at the first step
    tau_end: float = 0.0625  # ... reached after anneal_steps training steps
    anneal_steps: int = 5000  # length of the geometric temperature annealing

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check(0 < self.tau_end <= self.tau_start, "need 0 < tau_end <= tau_start")
        self._check(self.anneal_steps >= 0, f"anneal_steps = {self.anneal_steps} < 0")


@dataclass(frozen=True)
class SoftConfig(_CodebookConfig):
    """Soft-to-hard quantization (Agustsson et al. 2017) with a learned temperature."""

    family: ClassVar[str] = "soft"
    tau: float = 1.0  # initial (learned) temperature
    # Soft discretization (semivq; mmslim.nn.quantizers.soft_discretization), training only:
    learnable_std: bool = False  # a learned kernel std per latent channel (approach 1)
    alter_penalty: str = "none"  # its penalty: "unit" (1 - std)^2, "spread" -std^2
    penalty_weight: float = 0.01  # weight of that penalty in the loss
    learnable_gamma: bool = False  # a learned offset added to the soft output (approaches 2, 3)
    gamma_policy: str = "shared"  # "shared": one for all codes; "personalize": per vector

    _choices: ClassVar[dict[str, tuple]] = {
        **_CodebookConfig._choices,
        "alter_penalty": STD_PENALTIES,
        "gamma_policy": GAMMA_POLICIES,
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check(self.tau > 0, f"tau = {self.tau}; the temperature must be > 0")
        self._check(self.learnable_std or self.alter_penalty == "none",
                    f"alter_penalty = {self.alter_penalty!r} penalises the learned std: set "
                    "learnable_std = True")  # fmt: skip


@dataclass(frozen=True)
class LibraryVQConfig(_QuantizerConfig):
    """vector-quantize-pytorch's ``VectorQuantize`` (a wrapped reference; it learns by EMA)."""

    family: ClassVar[str] = "vqp"
    ema_decay: float = 0.99  # the library's ``decay``; it always learns its codebook by EMA
    codebook_init: str = "uniform"  # "uniform" (the library's own) or "kmeans" (``kmeans_init``)
    dead_code: bool = False  # the library's dead-code expiry (``threshold_ema_dead_code=2``)
    gradient: str = "ste"  # "ste", or "rotation" (the library's ``rotation_trick``)

    _choices: ClassVar[dict[str, tuple]] = {"codebook_init": LIBRARY_INITS,
                                            "gradient": VQ_GRADIENTS}  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check(
            0.0 < self.ema_decay < 1.0,
            f"ema_decay = {self.ema_decay}: the library's VQ learns its codebook by EMA, use a "
            "decay in (0, 1) (0.99 is the usual)",
        )


QuantizerConfig = VQConfig | FSQConfig | GumbelConfig | SoftConfig | LibraryVQConfig
QUANTIZER_CONFIGS: dict[str, type] = {
    c.family: c for c in (VQConfig, FSQConfig, GumbelConfig, SoftConfig, LibraryVQConfig)
}
assert tuple(QUANTIZER_CONFIGS) == QUANTIZER_FAMILIES, "one config class per family"


def quantizer_config_from_dict(d: dict[str, Any]) -> QuantizerConfig:
    """The family config a stored dict (with its ``family``) describes."""
    family = d.get("family", "vq")
    if family not in QUANTIZER_CONFIGS:
        raise ValueError(
            f"unknown quantizer family {family!r}; choose one of {', '.join(QUANTIZER_FAMILIES)}"
        )
    return QUANTIZER_CONFIGS[family].from_dict(d)


# ModelConfig dicts written before the family configs held the options as flat fields; these
# were their defaults, and the family config field each one became (checkpoints still hold them).
_FLAT_DEFAULTS: dict[str, Any] = {
    "codebook_init": "uniform", "ema_decay": 0.0, "dead_code_steps": 0, "vq_gradient": "ste",
    "codebook_affine": False, "fsq_levels": (), "gumbel_tau_start": 1.0, "gumbel_tau_end": 0.0625,
    "gumbel_anneal_steps": 5000, "soft_tau": 1.0,
}  # fmt: skip
_CODEBOOK = {"codebook_init": "codebook_init", "dead_code_steps": "dead_code_steps",
             "codebook_affine": "affine"}  # fmt: skip
_FLAT_TO_FAMILY: dict[str, dict[str, str]] = {
    "vq": {**_CODEBOOK, "ema_decay": "ema_decay", "vq_gradient": "gradient"},
    "fsq": {"fsq_levels": "levels"},
    "gumbel": {
        **_CODEBOOK,
        "gumbel_tau_start": "tau_start",
        "gumbel_tau_end": "tau_end",
        "gumbel_anneal_steps": "anneal_steps",
    },  # fmt: skip
    "soft": {**_CODEBOOK, "soft_tau": "tau"},
    "vqp": {
        "ema_decay": "ema_decay",
        "codebook_init": "codebook_init",
        "dead_code_steps": "dead_code",
        "vq_gradient": "gradient",
    },  # fmt: skip
}


def _from_flat(family: str, flat: dict[str, Any]) -> QuantizerConfig:
    """The family config of a dict written in the flat form (``quantizer`` a family name)."""
    if family not in QUANTIZER_CONFIGS:
        raise ValueError(
            f"unknown quantizer {family!r}; choose one of {', '.join(QUANTIZER_FAMILIES)}"
        )
    mapping = _FLAT_TO_FAMILY[family]
    flat = {k: tuple(v) if isinstance(v, list) else v for k, v in flat.items()}
    foreign = sorted(k for k, v in flat.items() if k not in mapping and v != _FLAT_DEFAULTS[k])
    if foreign:  # such a config could never be built: the family has no such option
        raise ValueError(f"quantizer {family!r} has no option {', '.join(foreign)}")
    options = {mapping[k]: v for k, v in flat.items() if k in mapping}
    if "affine" in options:
        options["affine"] = "learned" if options["affine"] else "none"
    if family == "vqp" and "dead_code" in options:
        options["dead_code"] = options["dead_code"] > 0
    return QUANTIZER_CONFIGS[family](**options)
