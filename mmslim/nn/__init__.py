"""Neural-network parts of mmSlim: blocks, quantizers, MaskNet and the full model."""

from mmslim.nn.blocks import (
    DecoderHi,
    DecoderLo,
    EncoderHi,
    EncoderLo,
    ResidualLayer,
    ResidualStack,
)
from mmslim.nn.fsq import FSQ
from mmslim.nn.gumbel import GumbelQuantizer, SoftQuantizer
from mmslim.nn.masknet import MaskNet
from mmslim.nn.model import Branch, MMSlim, check_frames, make_quantizer
from mmslim.nn.quantizers import (
    Quantizer,
    VectorQuantizer,
    perplexity,
    rotation_trick,
    straight_through,
    usage_stats,
    vq_losses,
)
from mmslim.nn.zoo import QUANTIZERS, VARIANTS, build_quantizer, variant_config

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
    "make_quantizer",
    "perplexity",
    "rotation_trick",
    "straight_through",
    "usage_stats",
    "variant_config",
    "vq_losses",
]
