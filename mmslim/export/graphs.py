"""The sender and the receiver as plain inference graphs.

What a sensor runs and what a receiver runs, cut out of a trained :class:`~mmslim.nn.MMSlim` and
simplified for inference only:

    Sender:    x, mask_source (B, 1, H, W) in [0, 1]
                 ─► MaskNet ─┬► M·x ─► Enc_hi ─► pre-VQ ─► nearest codeword ─► (B, H/4, W/4)
                             │      (code 0 where M is low all around, with ModelConfig.fine_gate)
                             └► (1−M)·x ─► Enc_lo ─► pre-VQ ─► nearest codeword ─► (B, H/16, W/16)
                                           (among ModelConfig.coarse_codes only, if given)
    Receiver:  indices_hi, indices_lo ─► codewords ─► Dec_hi + Dec_lo ─► x_hat (B, 1, H, W)

Always, without changing a single bit of the result:

- the nearest-codeword search is one matrix multiply against precomputed tables
  (:class:`mmslim.nn.quantizers.search.CodewordSearch`, the same arithmetic as training's), and the
  receiver's codebooks are computed once (an affine codebook's scale and shift applied);
- no validation, no training statistics, no losses: callers check their inputs once per call.

With ``fold=False, channels_last=False`` the graphs therefore compute exactly what the eval-mode
model computes: indices equal to ``MMSlim.encode``'s and maps equal to ``forward``'s, bit for
bit (the ``"torch"`` backend). Two options trade that for speed, each changing float rounding
only (about 1e-7 relative), so that a few near-tie indices in a million may flip:

- ``fold``: every BatchNorm folded into the convolution before it
  (:func:`mmslim.nn.blocks.fold_batchnorm`), stride-1 transposed convs written as plain
  convs (:func:`mmslim.nn.blocks.transposed_as_conv`), MaskNet's one-output conv as a tap sum
  (:func:`mmslim.nn.blocks.one_output_as_taps`), and with the fine gate the fine search
  run on the sent latents only (:meth:`~mmslim.nn.quantizers.search.CodewordSearch.where`); what
  is exported to ONNX;
- ``channels_last``: the channels-last memory layout, which oneDNN's convolutions run faster.

Both are ``nn.Module`` objects with tensor-only inputs and outputs, so the same modules run under
PyTorch (:class:`mmslim.export.backends.TorchBackend`) and export to ONNX
(:mod:`mmslim.export.onnx`).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from mmslim.nn.blocks import fold_batchnorm, one_output_as_taps, transposed_as_conv
from mmslim.nn.quantizers.vq import VectorQuantizer
from mmslim.nn.sending import GATE_CODE, sent_latents


def _search(quantizer: nn.Module, allowed: torch.Tensor | None = None) -> nn.Module:
    """The index search of ``quantizer``: precomputed tables for VQ families (of the ``allowed``
    codes only, if given), else the quantizer itself in eval mode (e.g. FSQ), wrapped to return
    only the indices."""
    if isinstance(quantizer, VectorQuantizer):
        return quantizer.search(allowed)
    return _Indices(copy.deepcopy(quantizer).eval())


class _Indices(nn.Module):
    """Any quantizer's indices: (B, D, h, w) -> (B, h, w) int64."""

    def __init__(self, quantizer: nn.Module):
        super().__init__()
        self.quantizer = quantizer

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.quantizer(z)[1]


class _Codewords(nn.Module):
    """A receiver's codebook: (B, h, w) int64 -> (B, D, h, w). VQ families keep the (K, D) codes
    as a buffer (computed once); other quantizers use their own ``lookup``."""

    def __init__(self, quantizer: nn.Module):
        super().__init__()
        self.quantizer = None
        if isinstance(quantizer, VectorQuantizer):
            self.register_buffer("codes", quantizer.codes().detach().clone())  # (K, D)
        else:
            self.quantizer = copy.deepcopy(quantizer).eval()

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        if self.quantizer is not None:
            return self.quantizer.lookup(indices)
        return nn.functional.embedding(indices, self.codes).permute(0, 3, 1, 2)  # (B, D, h, w)


def _inference_copy(module: nn.Module, fold: bool) -> nn.Module:
    """An eval-mode copy of ``module``; if ``fold``, with its BatchNorms folded, its stride-1
    transposed convs written as plain convs and its one-output convs as tap sums."""
    if not fold:
        return copy.deepcopy(module).eval()
    return one_output_as_taps(transposed_as_conv(fold_batchnorm(module)))


def _encoder(branch: nn.Module, fold: bool) -> nn.Sequential:
    """Encoder and 1x1 pre-VQ conv of a branch: (B, 1, H, W) -> (B, D, H/f, W/f)."""
    return nn.Sequential(_inference_copy(branch.encoder, fold), copy.deepcopy(branch.pre_vq))


class Sender(nn.Module):
    """The sensor's graph: maps -> two index grids.

    Args:
        model: a trained :class:`~mmslim.nn.MMSlim` (not changed; its parts are copied).
        fold: fold BatchNorm into the convolutions (rounding changes, see the module doc).
        channels_last: run the convolutions in the channels-last memory layout (likewise).

    ``forward(x, mask_source, also_sent)``: both (B, 1, H, W) float in [0, 1] (``mask_source``
    is the amplitude map; pass ``x`` itself for an amplitude model), and (B, H/4, W/4) bool, the
    fine latents sent whatever the gate says (the codec's CA-CFAR detections, all False
    without ``ModelConfig.gate_detections``) -> ``(indices_hi, indices_lo)``, (B, H/4, W/4) and
    (B, H/16, W/16) int64.
    """

    def __init__(self, model: nn.Module, fold: bool = True, channels_last: bool = False):
        super().__init__()
        self.mask_mode = model.config.mask  # "learned", or the ablations "fixed", "none"
        self.lo_downsample, self.hi_downsample = model.lo.downsample, model.hi.downsample
        self.fine_gate = model.config.fine_gate  # 0: every fine latent is sent
        self.mask_net = _inference_copy(model.mask_net, fold)
        self.encoder_hi, self.encoder_lo = _encoder(model.hi, fold), _encoder(model.lo, fold)
        self.search_hi = _search(model.hi.quantizer)
        self.search_lo = _search(model.lo.quantizer, model.coarse_allowed())
        # With the gate, the fast graphs search only the fine latents that are sent.
        self.search_sent_only = bool(fold and self.fine_gate) and hasattr(self.search_hi, "where")
        self.channels_last = channels_last
        self.eval().requires_grad_(False)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def mask(self, mask_source: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) amplitude -> (B, 1, H, W) mask, as ``MMSlim.split`` computes it."""
        if self.mask_mode in ("learned", "hard"):
            mask = self.mask_net(mask_source)
            return (mask > 0.5).to(mask.dtype) if self.mask_mode == "hard" else mask
        return torch.full_like(mask_source, 0.5 if self.mask_mode == "fixed" else 1.0)

    def forward(
        self, x: torch.Tensor, mask_source: torch.Tensor, also_sent: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
            mask_source = mask_source.contiguous(memory_format=torch.channels_last)
        mask = self.mask(mask_source)  # (B, 1, H, W)
        z_hi = self.encoder_hi(mask * x)  # (B, D, H/4, W/4)
        if not self.fine_gate:
            indices_hi = self.search_hi(z_hi)  # (B, H/4, W/4)
        else:  # latents far from the mask's targets go as the gate code
            sent = sent_latents(mask, self.hi_downsample, self.fine_gate) | also_sent
            if self.search_sent_only:
                indices_hi = self.search_hi.where(z_hi, sent, GATE_CODE)
            else:
                indices_hi = self.search_hi(z_hi).masked_fill(~sent, GATE_CODE)
        if self.mask_mode == "none":  # one VQ-VAE: the coarse grid is sent as zeros
            b, _, h, w = x.shape
            f = self.lo_downsample
            return indices_hi, torch.zeros(b, h // f, w // f, dtype=torch.int64, device=x.device)
        indices_lo = self.search_lo(self.encoder_lo((1.0 - mask) * x))  # (B, H/16, W/16)
        return indices_hi, indices_lo


class Receiver(nn.Module):
    """The receiver's graph: two index grids -> the map in [0, 1] (not yet clamped).

    Args:
        model: a trained :class:`~mmslim.nn.MMSlim` (not changed; its parts are copied).
        fold: fold BatchNorm into the convolutions (rounding changes, see the module doc).
        channels_last: run the convolutions in the channels-last memory layout (likewise).
        split: return the two branches' maps apart (what is exported to ONNX, so that the
            runtime can decode a band of the fine grid only: see :func:`fine_reach`).

    ``forward(indices_hi, indices_lo)``: (B, H/4, W/4) and (B, H/16, W/16) int64 ->
    ``x_hat`` (B, 1, H, W) float, ``x_hat_hi + x_hat_lo`` as ``MMSlim.decode_indices`` gives it;
    with ``split``, ``(x_hat_hi, x_hat_lo)`` instead, and the fine grid may be any band of rows
    (B, h, W/4) -> x_hat_hi (B, 1, 4h, W).
    """

    def __init__(
        self, model: nn.Module, fold: bool = True, channels_last: bool = False, split: bool = False
    ):
        super().__init__()
        self.use_lo = model.config.mask != "none"  # one VQ-VAE: the coarse grid is ignored
        self.split = split
        self.lo_upsample = model.lo.downsample
        self.codes_hi = _Codewords(model.hi.quantizer)
        self.codes_lo = _Codewords(model.lo.quantizer)
        self.decoder_hi = _inference_copy(model.hi.decoder, fold)
        self.decoder_lo = _inference_copy(model.lo.decoder, fold)
        self.channels_last = channels_last
        self.eval().requires_grad_(False)
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def _decode(self, decoder: nn.Module, z: torch.Tensor) -> torch.Tensor:
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        return decoder(z.contiguous(memory_format=fmt))  # (B, 1, H, W)

    def forward(self, indices_hi: torch.Tensor, indices_lo: torch.Tensor):
        x_hat = self._decode(self.decoder_hi, self.codes_hi(indices_hi))  # (B, 1, H, W)
        if self.split:
            return x_hat, self._coarse(indices_lo)
        if self.use_lo:
            x_hat = x_hat + self._decode(self.decoder_lo, self.codes_lo(indices_lo))
        return x_hat

    def _coarse(self, indices_lo: torch.Tensor) -> torch.Tensor:
        """The coarse branch's map (B, 1, H, W); zeros for one VQ-VAE, which ignores it."""
        if self.use_lo:
            return self._decode(self.decoder_lo, self.codes_lo(indices_lo))
        b, h, w = indices_lo.shape
        f = self.lo_upsample
        return torch.zeros(b, 1, h * f, w * f, device=indices_lo.device)


def fine_reach(model: nn.Module, shape: tuple[int, int]) -> int:
    """How many latent rows away a fine latent's code can change the fine decoder's output.

    A fine map row depends only on the latents within this many rows of its own; so wherever
    every latent within reach holds code 0 (with the fine gate: nothing sent there), the fine
    map equals that of an all-zero grid, and a receiver need only decode the band of rows
    around the codes that are not 0 (:class:`mmslim.export.runtime.OnnxGraphs`). Measured on
    the structure alone: every weight set to 1 and every bias to 0, so no ReLU or cancellation
    hides a path, and one latent in the middle of a grid of ``shape`` (H, W) set to 1. For the
    shipped decoders it is 4 (a 3x3 conv, two residual 3x3 convs, two 4x4 transposed convs).
    Returns the grid's height or more when a layer reaches everywhere (then nothing is cut).
    """
    rows, cols = model.latent_shapes(*shape)["hi"]
    probe = fold_batchnorm(model.hi.decoder).cpu().float()
    with torch.no_grad():
        for m in probe.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):  # one that follows no conv: the identity
                m.reset_parameters()
        z = torch.zeros(1, model.config.code_dim, rows, cols)
        z[0, :, rows // 2, cols // 2] = 1.0
        y = probe(z)[0].abs().sum(0)  # (H, W)
    factor = y.shape[0] // rows  # output rows per latent row
    reached = torch.nonzero(y.sum(1) > 0).flatten() // factor  # latent rows of changed outputs
    if len(reached) == 0:
        return 0
    return int(max(rows // 2 - reached.min(), reached.max() - rows // 2))


__all__ = ["Receiver", "Sender", "fine_reach"]
