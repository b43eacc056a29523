"""Quantizers: the bottleneck of each VQ-VAE branch, one file per family.

Read :mod:`~mmslim.nn.quantizers.interface` first (the shared interface and the gradient
tricks), then :mod:`~mmslim.nn.quantizers.vq` (plain VQ with its options) and its helpers
:mod:`~mmslim.nn.quantizers.codebook_init`, :mod:`~mmslim.nn.quantizers.codebook_updates` and
:mod:`~mmslim.nn.quantizers.ste_plus` (VQ-STE++) and :mod:`~mmslim.nn.quantizers.search`
(the nearest-codeword search, as the sender graphs run it), the other families
(:mod:`~mmslim.nn.quantizers.fsq`, :mod:`~mmslim.nn.quantizers.gumbel` with
:mod:`~mmslim.nn.quantizers.soft_discretization`, and :mod:`~mmslim.nn.quantizers.library`, a
wrapped reference), and last :mod:`~mmslim.nn.quantizers.zoo`, the registry that builds any of
them from a config.
"""

from mmslim.nn.quantizers.fsq import FSQ
from mmslim.nn.quantizers.gumbel import GumbelQuantizer, SoftQuantizer
from mmslim.nn.quantizers.vq import (
    Quantizer,
    VectorQuantizer,
    perplexity,
    rotation_trick,
    straight_through,
    usage_stats,
    vq_losses,
)
from mmslim.nn.quantizers.zoo import QUANTIZERS, SOURCES, VARIANTS, build_quantizer, variant_config

__all__ = [
    "FSQ",
    "QUANTIZERS",
    "SOURCES",
    "VARIANTS",
    "GumbelQuantizer",
    "Quantizer",
    "SoftQuantizer",
    "VectorQuantizer",
    "build_quantizer",
    "perplexity",
    "rotation_trick",
    "straight_through",
    "usage_stats",
    "variant_config",
    "vq_losses",
]
