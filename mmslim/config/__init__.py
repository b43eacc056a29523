"""Typed configuration: the model (:class:`ModelConfig`) and the training recipe
(:class:`TrainConfig`), each with named presets. ``paper`` reproduces the reference sizes and
recipe (meant for a GPU); ``cpu-small`` is small enough to train on a 2-core laptop or in CI in
minutes.

Beside them: :mod:`~mmslim.config.choices` (every set of allowed values, importable from here),
:mod:`~mmslim.config.quantizers` (one config per quantizer family) and
:mod:`~mmslim.config.base` (presets, validation and the dict round trip they share).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from mmslim.config.base import _Config
from mmslim.config.choices import (  # every set of allowed values, importable from here
    AFFINE_MODES,
    BACKENDS,
    BRANCHES,
    CODEBOOK_INITS,
    CODING_MODES,
    FLOOR_MODES,
    GAMMA_POLICIES,
    INPLACE_OPTIMIZERS,
    KINDS,
    LIBRARY_INITS,
    MASK_HEADS,
    MASK_MODES,
    MAX_CODES,
    OBJECTIVES,
    PRESETS,
    QUANTIZER_BENCH_RECIPES,
    QUANTIZER_BRANCHES,
    QUANTIZER_FAMILIES,
    SCENARIO_NAMES,
    SSIM_WINDOWS,
    STAGES,
    STD_PENALTIES,
    VQ_GRADIENTS,
)
from mmslim.config.quantizers import (
    _FLAT_DEFAULTS,
    QUANTIZER_CONFIGS,
    FSQConfig,
    GumbelConfig,
    LibraryVQConfig,
    QuantizerConfig,
    SoftConfig,
    VQConfig,
    _from_flat,
    quantizer_config_from_dict,
)


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
    # Fine latents the mask leaves empty are not coded: a fine latent is sent only if the mask
    # reaches this value in its own 4 x 4 cells or a neighbour's; the others go as code 0, which
    # the entropy coder makes nearly free (mmslim.nn.sending.sent_latents). 0: every latent is sent.
    fine_gate: float = 0.0
    # With the gate, also send the fine latents holding a CA-CFAR detection of the input's
    # amplitude or next to one (mmslim.codec.detections): a sender rule of the codec, which has
    # the maps in dB; training and MMSlim.forward gate by the mask alone.
    gate_detections: bool = False
    # The coarse codes the sender may choose (ascending; empty: all num_codes). The coarse grid
    # only draws the floor's level, and a handful of codes draw it as well as all 512 while
    # costing about 3 bits a latent instead of 7.7 (mmslim.codec.coarse): a sender rule, like
    # the gate.
    coarse_codes: tuple[int, ...] = ()

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
        if not 0.0 <= self.fine_gate < 1.0:
            raise ValueError(f"ModelConfig.fine_gate = {self.fine_gate!r}; give a mask level in "
                             "[0, 1) (0: send every fine latent)")  # fmt: skip
        if self.fine_gate and self.mask not in ("learned", "hard"):
            raise ValueError(f"ModelConfig.fine_gate needs MaskNet's mask, not mask={self.mask!r}; "
                             "set fine_gate=0 for the ablations")  # fmt: skip
        if self.gate_detections and not self.fine_gate:
            raise ValueError(
                "ModelConfig.gate_detections adds latents to the fine gate's: set fine_gate too "
                "(without a gate every latent is sent already)"
            )
        codes = tuple(int(c) for c in self.coarse_codes)  # a checkpoint's dict holds a list
        object.__setattr__(self, "coarse_codes", codes)
        if codes and (
            list(codes) != sorted(set(codes)) or not 0 <= codes[0] <= codes[-1] < self.num_codes
        ):
            raise ValueError(
                f"ModelConfig.coarse_codes = {codes!r}; give distinct codes in [0, "
                f"{self.num_codes}) in ascending order (empty: every code)"
            )
        if codes and self.mask == "none":
            raise ValueError("ModelConfig.coarse_codes: the single VQ-VAE (mask='none') has no "
                             "coarse grid")  # fmt: skip
        if not isinstance(self.quantizer, tuple(QUANTIZER_CONFIGS.values())):
            raise ValueError(
                f"ModelConfig.quantizer = {self.quantizer!r}; give a family config, e.g. "
                f"VQConfig(), FSQConfig(), GumbelConfig(), SoftConfig() or LibraryVQConfig()"
            )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "quantizer": self.quantizer.to_dict()}

    def without_sender_rules(self) -> ModelConfig:
        """This config with the rules only a codec's sender applies reset: the detections rule
        and the coarse codes (the fine gate stays: training gates too). They are chosen per
        sender and per stage (coarse codes index one stage's codebook), so the phase stage does
        not take them from the amplitude stage, and two configs that differ only in them
        train alike."""
        return dataclasses.replace(self, gate_detections=False, coarse_codes=())

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
    cfar_weight: float = 0.0  # radar: cells on the wrong side of CA-CFAR's threshold, in dB
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
    "AFFINE_MODES",
    "BACKENDS",
    "BRANCHES",
    "CODEBOOK_INITS",
    "CODING_MODES",
    "FLOOR_MODES",
    "GAMMA_POLICIES",
    "INPLACE_OPTIMIZERS",
    "KINDS",
    "LIBRARY_INITS",
    "MASK_HEADS",
    "MASK_MODES",
    "MAX_CODES",
    "OBJECTIVES",
    "QUANTIZER_BENCH_RECIPES",
    "QUANTIZER_BRANCHES",
    "QUANTIZER_FAMILIES",
    "SCENARIO_NAMES",
    "SSIM_WINDOWS",
    "STAGES",
    "STD_PENALTIES",
    "VQ_GRADIENTS",
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
