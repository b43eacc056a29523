"""Typed configuration: one dataclass per concern, each with named presets.

``paper`` reproduces the reference sizes and recipe (meant for a GPU); ``cpu-small`` is small
enough to train on a 2-core laptop or in CI in minutes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

# --- every set of allowed values, defined once; validation and the CLI's choices read these ---
PRESETS = ("paper", "cpu-small", "tiny")  # GPU recipe, 2-core recipe, seconds (tests, smoke)
STAGES = ("amplitude", "phase")  # training stages, which are also the map kinds
KINDS = STAGES  # map kinds in files and data (a stage trains one kind)
BRANCHES = ("hi", "lo")  # the fine (high-rate) and coarse (low-rate) VQ-VAE
QUANTIZER_BRANCHES = ("both", *BRANCHES)  # where ModelConfig's quantizer options apply
CODING_MODES = ("fixed", "huffman", "ans")  # entropy coding; the order is each mode's file code
BACKENDS = ("torch", "onnx")  # what runs the sender and receiver graphs: PyTorch, ONNX Runtime
# mmSlim's learned mask, the same thresholded at 0.5 ("hard": each cell goes to one branch only),
# then the ablations: M = 0.5, one VQ-VAE
MASK_MODES = ("learned", "hard", "fixed", "none")
QUANTIZER_FAMILIES = ("vq", "fsq", "gumbel", "soft", "vqp")  # mmslim.nn.quantizers.zoo
CODEBOOK_INITS = ("uniform", "kmeans", "rd_gaussian")  # uniform +-1/K is the reference's
VQ_GRADIENTS = ("ste", "rotation")  # straight-through, or the rotation trick
MASK_HEADS = ("sigmoid", "reference")  # MaskNet's head; "reference" keeps the paper's defect
OBJECTIVES = ("ssim", "radar")  # the paper's 1 - SSIM, or the radar-aware objective
SSIM_WINDOWS = ("box", "gaussian")  # 11x11 uniform (reference) or Gaussian sigma 1.5
SCENARIO_NAMES = ("default", "lab77")  # simulator set-ups (mmslim.data.simulator.SCENARIOS)
FLOOR_MODES = ("none", "smooth", "noise")  # what the receiver draws for the floor (codec.floor)
MAX_CODES = 2**15  # largest codebook the file header and the prefix coders accept


def _check_preset(name: str) -> None:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


class _Config:
    """Shared helpers: presets by name, plain-dict round trip (for checkpoints)."""

    _presets: ClassVar[dict[str, dict[str, Any]]] = {}
    _choices: ClassVar[dict[str, tuple]] = {}  # field -> allowed values, checked at construction
    _legacy: ClassVar[dict[str, Any]] = {}  # field -> value meant by dicts written without it

    @classmethod
    def preset(cls, name: str, **overrides: Any):
        _check_preset(name)
        return cls(**{**cls._presets.get(name, {}), **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def same_as(self, d: dict[str, Any]) -> bool:
        """Whether a stored config dict describes this config (fields it lacks take defaults,
        so checkpoints written before a field was added still match)."""
        canon = lambda c: json.dumps(c.to_dict(), sort_keys=True)  # noqa: E731 (tuples -> lists)
        return canon(self) == canon(type(self).from_dict(d))

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        """The config a stored dict describes. A field the dict lacks takes its value from
        ``_legacy`` (what configs written before the field existed meant), else its default."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
        return cls(**{**{k: v for k, v in cls._legacy.items() if k not in d}, **d})

    def __post_init__(self) -> None:
        """Validate every field with a set of allowed values (``_choices``) at construction."""
        for name, allowed in self._choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{type(self).__name__}.{name} = {getattr(self, name)!r}; "
                    f"choose one of {', '.join(map(str, allowed))}"
                )


# --- quantizer families: one small config each, built by mmslim.nn.quantizers.zoo ---
AFFINE_MODES = ("none", "learned", "statistics")  # codebook affine map (Huh et al. 2023)
INPLACE_OPTIMIZERS = ("none", "sgd")  # alternated codebook optimisation (Huh et al. 2023)
STD_PENALTIES = ("none", "unit", "spread")  # soft family: penalty on the learned std (semivq)
GAMMA_POLICIES = ("shared", "personalize")  # soft family: the learned offset's form (semivq)
LIBRARY_INITS = ("uniform", "kmeans")  # what vector-quantize-pytorch offers


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


@dataclass
class ModelConfig(_Config):
    """Sizes of MaskNet and the two VQ-VAE branches (defaults: the reference release's), and
    the quantizer.

    ``quantizer`` is one family's config (:class:`VQConfig`, :class:`FSQConfig`,
    :class:`GumbelConfig`, :class:`SoftConfig`, :class:`LibraryVQConfig`), which holds only that
    family's options; ``quantizer_branches`` says which branch uses it (the other keeps plain VQ)::

        ModelConfig(quantizer=VQConfig(gradient="rotation"), quantizer_branches="hi")
    """

    hidden: int = 128  # h: channels of the encoders/decoders
    res_hidden: int = 32  # res_h: bottleneck channels inside each residual layer
    n_res_layers: int = 2  # residual layers per stack (each with its own weights)
    num_codes: int = 512  # codebook size K per branch (9-bit indices)
    code_dim: int = 64  # codeword dimension D
    beta: float = 0.25  # commitment weight (VQ-VAE paper)
    mask_hidden: int = 16  # MaskNet hidden channels
    # The quantizer family and its options (mmslim.nn.quantizers.zoo); the default, VQConfig(),
    # is the reference's plain VQ-VAE.
    quantizer: QuantizerConfig = dataclasses.field(default_factory=VQConfig)
    mask: str = "learned"  # MaskNet; ablations: "fixed" (M = 0.5), "none" (one VQ-VAE: hi only)
    mask_head: str = "sigmoid"  # "reference": the paper's BN.LeakyReLU before the sigmoid
    quantizer_branches: str = "both"  # "both", "hi" or "lo" use `quantizer`; the other: plain VQ

    _presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        # ~0.2 s per training step of 16 frames (224 x 64) on 2 CPU cores, ~0.3 M parameters.
        # The radar objective's gradients are larger than SSIM's: with the reference's uniform
        # codebook and codebook loss the encoder outgrows the codebook and the VQ loss diverges
        # (1e4 within 30 steps); k-means start, EMA updates and dead-code restarts keep up.
        "cpu-small": {
            "hidden": 48,
            "res_hidden": 16,
            "n_res_layers": 2,
            "code_dim": 32,
            "quantizer": VQConfig(codebook_init="kmeans", ema_decay=0.99, dead_code_steps=20),
        },
        # Seconds per epoch on a few frames: tests and smoke runs, not a usable model.
        "tiny": {"hidden": 16, "res_hidden": 8, "n_res_layers": 1, "num_codes": 64, "code_dim": 8},
    }
    _choices: ClassVar[dict[str, tuple]] = {
        "mask": MASK_MODES,
        "mask_head": MASK_HEADS,
        "quantizer_branches": QUANTIZER_BRANCHES,
    }
    _legacy: ClassVar[dict[str, Any]] = {"mask_head": "reference"}  # before the head was chosen

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.quantizer, tuple(QUANTIZER_CONFIGS.values())):
            raise ValueError(
                f"ModelConfig.quantizer = {self.quantizer!r}; give a family config, e.g. "
                f"VQConfig(), FSQConfig(), GumbelConfig(), SoftConfig() or LibraryVQConfig()"
            )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "quantizer": self.quantizer.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        """As :meth:`_Config.from_dict`; ``quantizer`` is a family config's dict, or, in dicts
        written before the family configs (shipped checkpoints), a family name with the options
        as flat fields (``codebook_init``, ``ema_decay``, ``fsq_levels``, ``soft_tau``...)."""
        d = dict(d)
        flat = {k: d.pop(k) for k in _FLAT_DEFAULTS if k in d}
        quantizer = d.get("quantizer", "vq")
        if isinstance(quantizer, str):
            d["quantizer"] = _from_flat(quantizer, flat)
        elif flat:
            raise ValueError(f"ModelConfig: unknown fields {sorted(flat)} beside a quantizer "
                             "config; they belong inside it")  # fmt: skip
        elif isinstance(quantizer, dict):
            d["quantizer"] = quantizer_config_from_dict(quantizer)
        return super().from_dict(d)


@dataclass
class TrainConfig(_Config):
    """Recipe of one training stage (reference: Adam+amsgrad, ReduceLROnPlateau, batch 32)."""

    epochs: int = 500  # passes over the training split
    batch_size: int = 32  # frames per step
    lr_hi: float = 5e-5  # learning rate of the high-rate branch
    lr_lo: float = 1e-5  # learning rate of the low-rate branch
    lr_mask: float = 5e-5  # learning rate of MaskNet (amplitude stage only)
    # Codebook learning rate = branch lr x this. Adam moves a codeword by about lr per step, so
    # codewords initialised near 0 (uniform +-1/K) trail fast-growing encoder outputs unless
    # they learn faster; 1 is the reference.
    lr_codebook_scale: float = 1.0
    amsgrad: bool = True  # Adam variant used by the reference
    plateau_factor: float = 0.5  # ReduceLROnPlateau factor
    plateau_patience: int = 3  # ReduceLROnPlateau patience, in validations
    # The objective (mmslim.nn.losses): "ssim" is the paper's, "radar" keeps what radar users use.
    objective: str = "ssim"
    ssim_window: str = "box"  # "box" (reference, 11x11 uniform) or "gaussian" (11x11, sigma 1.5)
    target_db: float = 40.0  # radar: target region = cells within this of the frame's peak
    target_weight: float = 1.0  # radar: |dB error| on target cells
    background_weight: float = 1.0  # radar: local mean power over CFAR's window, in dB
    spread_weight: float = 0.1  # radar: local spread of the dB map (texture is not kept)
    floor_weight: float = 0.0  # radar: |dB error| off the targets (draws the floor at its median)
    split_weight: float = 1.0  # radar: MaskNet told where the targets are (balanced BCE)
    phase_weight: float = 1.0  # radar, phase stage: 1 - cos error, weighted by target strength
    rate_weight: float = 0.0  # lambda: x estimated bits per map element (0: no rate term)
    lost_share: float = (
        0.0  # share of fine indices the decoder sees lost (loss-resilience training)
    )
    val_fraction: float = 0.25  # share of subjects held out for validation
    val_every: int = 1  # validate every N epochs
    seed: int = 0  # seeds torch, numpy and the split
    amp: bool = True  # mixed precision (used on CUDA only)
    num_workers: int = 0  # DataLoader workers
    tensorboard: bool = False  # also log to TensorBoard (needs the tensorboard package)

    _presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        # Larger learning rates so that a few minutes on 2 CPU cores give a usable model.
        "cpu-small": {
            "epochs": 12,
            "batch_size": 16,
            "lr_hi": 1e-3,
            "lr_lo": 1e-3,
            "lr_mask": 5e-3,
            "lr_codebook_scale": 10.0,
            "objective": "radar",
            "target_weight": 3.0,
            "spread_weight": 0.0,
            "floor_weight": 1.0,
            # from scratch the target term pulls MaskNet's mask down on targets for the first
            # epochs; a stronger split term keeps it splitting from the start
            "split_weight": 3.0,
            "rate_weight": 1.0,
            "val_every": 4,
        },
        "tiny": {"epochs": 2, "batch_size": 4, "lr_hi": 1e-3, "lr_lo": 1e-3, "lr_mask": 1e-3},
    }
    _choices: ClassVar[dict[str, tuple]] = {"objective": OBJECTIVES, "ssim_window": SSIM_WINDOWS}
    _legacy: ClassVar[dict[str, Any]] = {"objective": "ssim"}  # before the radar objective


__all__ = [
    "PRESETS",
    "QUANTIZER_CONFIGS",
    "FSQConfig",
    "GumbelConfig",
    "LibraryVQConfig",
    "ModelConfig",
    "SoftConfig",
    "TrainConfig",
    "VQConfig",
    "quantizer_config_from_dict",
]
