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
MASK_MODES = ("learned", "fixed", "none")  # mmSlim, then the ablations: M = 0.5, one VQ-VAE
QUANTIZER_FAMILIES = ("vq", "fsq", "gumbel", "soft", "vqp")  # mmslim.nn.quantizers.zoo
CODEBOOK_INITS = ("uniform", "kmeans", "rd_gaussian")  # uniform +-1/K is the reference's
VQ_GRADIENTS = ("ste", "rotation")  # straight-through, or the rotation trick
MASK_HEADS = ("sigmoid", "reference")  # MaskNet's head; "reference" keeps the paper's defect
OBJECTIVES = ("ssim", "radar")  # the paper's 1 - SSIM, or the radar-aware objective
SSIM_WINDOWS = ("box", "gaussian")  # 11x11 uniform (reference) or Gaussian sigma 1.5
SCENARIO_NAMES = ("default", "lab77")  # simulator set-ups (mmslim.data.simulator.SCENARIOS)
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


@dataclass
class ModelConfig(_Config):
    """Sizes of MaskNet and the two VQ-VAE branches; the defaults are the reference release's."""

    hidden: int = 128  # h: channels of the encoders/decoders
    res_hidden: int = 32  # res_h: bottleneck channels inside each residual layer
    n_res_layers: int = 2  # residual layers per stack (each with its own weights)
    num_codes: int = 512  # codebook size K per branch (9-bit indices)
    code_dim: int = 64  # codeword dimension D
    beta: float = 0.25  # commitment weight (VQ-VAE paper)
    mask_hidden: int = 16  # MaskNet hidden channels
    quantizer: str = "vq"  # quantizer family; "vq" is plain nearest-neighbour VQ
    mask: str = "learned"  # MaskNet; ablations: "fixed" (M = 0.5), "none" (one VQ-VAE: hi only)
    mask_head: str = "sigmoid"  # "reference": the paper's BN.LeakyReLU before the sigmoid
    # Quantizer options (mmslim.nn.quantizers.zoo; defaults give the reference's plain VQ-VAE).
    # Families: "vq", "fsq", "gumbel", "soft"; "vqp" wraps vector-quantize-pytorch (reference).
    quantizer_branches: str = "both"  # "both", "hi" or "lo" use the options; the other: plain VQ
    codebook_init: str = "uniform"  # "uniform" +-1/K (reference), "kmeans", "rd_gaussian"
    ema_decay: float = 0.0  # > 0: EMA codebook updates instead of the codebook loss (VQ-VAE-2)
    dead_code_steps: int = 0  # > 0: re-seed codes unused this many steps (Jukebox restarts)
    vq_gradient: str = "ste"  # "ste" straight-through, or "rotation" (Fifty et al. 2024)
    codebook_affine: bool = False  # learned scale and shift shared by all codes (Huh et al. 2023)
    fsq_levels: tuple[int, ...] = ()  # FSQ levels, product = num_codes; () = (8, 8, 8) for 512
    gumbel_tau_start: float = 1.0  # Gumbel-softmax temperature at the first step
    gumbel_tau_end: float = 0.0625  # ... reached after gumbel_anneal_steps training steps
    gumbel_anneal_steps: int = 5000  # length of the geometric temperature annealing
    soft_tau: float = 1.0  # initial (learned) temperature of soft quantization

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
            "codebook_init": "kmeans",
            "ema_decay": 0.99,
            "dead_code_steps": 20,
        },
        # Seconds per epoch on a few frames: tests and smoke runs, not a usable model.
        "tiny": {"hidden": 16, "res_hidden": 8, "n_res_layers": 1, "num_codes": 64, "code_dim": 8},
    }
    _choices: ClassVar[dict[str, tuple]] = {
        "quantizer": QUANTIZER_FAMILIES,
        "mask": MASK_MODES,
        "mask_head": MASK_HEADS,
        "quantizer_branches": QUANTIZER_BRANCHES,
        "codebook_init": CODEBOOK_INITS,
        "vq_gradient": VQ_GRADIENTS,
    }
    _legacy: ClassVar[dict[str, Any]] = {"mask_head": "reference"}  # before the head was chosen


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
    split_weight: float = 1.0  # radar: MaskNet told where the targets are (balanced BCE)
    phase_weight: float = 1.0  # radar, phase stage: 1 - cos error, weighted by target strength
    rate_weight: float = 0.0  # lambda: x estimated bits per map element (0: no rate term)
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
            "rate_weight": 1.0,
            "val_every": 4,
        },
        "tiny": {"epochs": 2, "batch_size": 4, "lr_hi": 1e-3, "lr_lo": 1e-3, "lr_mask": 1e-3},
    }
    _choices: ClassVar[dict[str, tuple]] = {"objective": OBJECTIVES, "ssim_window": SSIM_WINDOWS}
    _legacy: ClassVar[dict[str, Any]] = {"objective": "ssim"}  # before the radar objective


__all__ = ["PRESETS", "ModelConfig", "TrainConfig"]
