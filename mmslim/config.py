"""Typed configuration: one dataclass per concern, each with named presets.

``paper`` reproduces the reference sizes and recipe (meant for a GPU); ``cpu-small`` is small
enough to train on a 2-core laptop or in CI in minutes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

PRESETS = ("paper", "cpu-small")


def _check_preset(name: str) -> None:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


class _Config:
    """Shared helpers: presets by name, plain-dict round trip (for checkpoints)."""

    _presets: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def preset(cls, name: str, **overrides: Any):
        _check_preset(name)
        return cls(**{**cls._presets.get(name, {}), **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
        return cls(**d)


@dataclass
class ModelConfig(_Config):
    """Sizes of MaskNet and the two VQ-VAE branches (DESIGN.md section 2)."""

    hidden: int = 128  # h: channels of the encoders/decoders
    res_hidden: int = 32  # res_h: bottleneck channels inside each residual layer
    n_res_layers: int = 2  # residual layers per stack (each with its own weights)
    num_codes: int = 512  # codebook size K per branch (9-bit indices)
    code_dim: int = 64  # codeword dimension D
    beta: float = 0.25  # commitment weight (VQ-VAE paper)
    mask_hidden: int = 16  # MaskNet hidden channels
    quantizer: str = "vq"  # quantizer family; "vq" is plain nearest-neighbour VQ

    _presets: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": {},
        # ~0.2 s per training step of 16 frames (224 x 64) on 2 CPU cores, ~0.3 M parameters.
        "cpu-small": {"hidden": 48, "res_hidden": 16, "n_res_layers": 2, "code_dim": 32},
    }


@dataclass
class TrainConfig(_Config):
    """Recipe of one training stage (reference: Adam+amsgrad, ReduceLROnPlateau, batch 32)."""

    epochs: int = 500  # passes over the training split
    batch_size: int = 32  # frames per step
    lr_hi: float = 5e-5  # learning rate of the high-rate branch
    lr_lo: float = 1e-5  # learning rate of the low-rate branch
    lr_mask: float = 5e-5  # learning rate of MaskNet (amplitude stage only)
    amsgrad: bool = True  # Adam variant used by the reference
    plateau_factor: float = 0.5  # ReduceLROnPlateau factor
    plateau_patience: int = 3  # ReduceLROnPlateau patience, in validations
    ssim_window: str = "box"  # "box" (reference, 11x11 uniform) or "gaussian" (11x11, sigma 1.5)
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
            "epochs": 60,
            "batch_size": 16,
            "lr_hi": 2e-3,
            "lr_lo": 2e-3,
            "lr_mask": 1e-3,
        },
    }


__all__ = ["PRESETS", "ModelConfig", "TrainConfig"]
