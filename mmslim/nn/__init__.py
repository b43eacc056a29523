"""Neural-network parts of mmSlim: blocks, quantizers, MaskNet and the full model."""

from mmslim.nn.blocks import (
    DecoderHi,
    DecoderLo,
    EncoderHi,
    EncoderLo,
    ResidualLayer,
    ResidualStack,
)
from mmslim.nn.masknet import MaskNet
from mmslim.nn.model import Branch, MMSlim, check_frames, make_quantizer
from mmslim.nn.quantizers import (
    Quantizer,
    VectorQuantizer,
    perplexity,
    straight_through,
    usage_stats,
    vq_losses,
)

__all__ = [
    "Branch",
    "DecoderHi",
    "DecoderLo",
    "EncoderHi",
    "EncoderLo",
    "MMSlim",
    "MaskNet",
    "Quantizer",
    "ResidualLayer",
    "ResidualStack",
    "VectorQuantizer",
    "check_frames",
    "make_quantizer",
    "perplexity",
    "straight_through",
    "usage_stats",
    "vq_losses",
]
