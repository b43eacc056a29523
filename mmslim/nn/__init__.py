"""Neural-network parts of mmSlim, read in this order: :mod:`~mmslim.nn.blocks` (encoders,
decoders, residual stacks), :mod:`~mmslim.nn.quantizers` (one file per family and the zoo),
:mod:`~mmslim.nn.masknet`, :mod:`~mmslim.nn.branch` (one VQ-VAE), :mod:`~mmslim.nn.sending`
(which fine latents are sent), :mod:`~mmslim.nn.model` (the MMSlim model: forward, compress,
decompress) and :mod:`~mmslim.nn.losses` (the training objectives, shared by training and
evaluation)."""

from mmslim.nn.blocks import (
    DecoderHi,
    DecoderLo,
    EncoderHi,
    EncoderLo,
    ResidualLayer,
    ResidualStack,
)
from mmslim.nn.branch import Branch
from mmslim.nn.masknet import MaskNet
from mmslim.nn.model import MMSlim, check_frames
from mmslim.nn.quantizers import (
    FSQ,
    QUANTIZERS,
    VARIANTS,
    GumbelQuantizer,
    Quantizer,
    SoftQuantizer,
    VectorQuantizer,
    build_quantizer,
    perplexity,
    rotation_trick,
    straight_through,
    usage_stats,
    variant_config,
    vq_losses,
)

__all__ = [
    "FSQ",
    "QUANTIZERS",
    "VARIANTS",
    "Branch",
    "DecoderHi",
    "DecoderLo",
    "EncoderHi",
    "EncoderLo",
    "GumbelQuantizer",
    "MMSlim",
    "MaskNet",
    "Quantizer",
    "ResidualLayer",
    "ResidualStack",
    "SoftQuantizer",
    "VectorQuantizer",
    "build_quantizer",
    "check_frames",
    "perplexity",
    "rotation_trick",
    "straight_through",
    "usage_stats",
    "variant_config",
    "vq_losses",
]
