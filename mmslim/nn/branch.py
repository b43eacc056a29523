"""One VQ-VAE branch of mmSlim: encoder, 1x1 pre-VQ conv, quantizer, decoder.

The same class is built twice by :class:`mmslim.nn.model.MMSlim`, with the fine (÷4) or the
coarse (÷16) encoder/decoder pair.
"""

from __future__ import annotations

import torch
from torch import nn

from mmslim.config import BRANCHES, ModelConfig
from mmslim.nn.blocks import DecoderHi, DecoderLo, EncoderHi, EncoderLo
from mmslim.nn.quantizers.search import nearest_allowed
from mmslim.nn.quantizers.vq import Quantizer
from mmslim.nn.quantizers.zoo import build_quantizer
from mmslim.nn.sending import GATE_CODE


class Branch(nn.Module):
    """One VQ-VAE: encoder -> 1x1 conv (h -> D) -> quantizer -> decoder.

    Built with :meth:`build` as ``"hi"`` (downsampling f = 4) or ``"lo"`` (f = 16).

    Shapes: x (B, 1, H, W) -> latents (B, D, H/f, W/f) -> indices (B, H/f, W/f)
    -> x_hat (B, 1, H, W).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, quantizer: Quantizer, hidden: int):
        super().__init__()
        self.encoder = encoder
        self.pre_vq = nn.Conv2d(hidden, quantizer.code_dim, kernel_size=1)
        self.quantizer = quantizer
        self.decoder = decoder
        self.downsample: int = encoder.downsample

    @classmethod
    def build(cls, branch: str, config: ModelConfig) -> Branch:
        """The fine (``"hi"``) or coarse (``"lo"``) branch with the sizes of ``config``."""
        pairs = {"hi": (EncoderHi, DecoderHi), "lo": (EncoderLo, DecoderLo)}
        if branch not in pairs:
            raise ValueError(f"unknown branch {branch!r}; choose one of {BRANCHES}")
        enc_cls, dec_cls = pairs[branch]
        c = config
        encoder = enc_cls(c.hidden, c.res_hidden, c.n_res_layers)
        decoder = dec_cls(c.code_dim, c.hidden, c.res_hidden, c.n_res_layers)
        return cls(encoder, decoder, build_quantizer(c, branch), c.hidden)

    def latents(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous latents before quantization: (B, 1, H, W) -> (B, D, H/f, W/f)."""
        return self.pre_vq(self.encoder(x))

    def forward(self, x: torch.Tensor, sent=None, lost=None, allowed=None) -> dict:
        """(B, 1, H, W) -> dict with ``x_hat`` (B, 1, H, W), ``indices`` (B, H/f, W/f) int64,
        ``z`` (B, D, H/f, W/f) latents before quantization, ``stats`` (the quantizer's info).

        sent: (B, H/f, W/f) bool or None: latents outside it are sent as :data:`GATE_CODE`
        (``indices`` say so) and decoded as such.
        lost: ``(missing, code)``, missing (B, H/f, W/f) bool: the decoder sees the codeword of
        ``code`` there instead, as a receiver decodes indices lost on the link (training for
        loss resilience); ``indices`` stay those the sender would send.
        allowed: (A,) int64 or None: the codes the sender may choose (``ModelConfig.coarse_codes``;
        plain VQ codebooks only): each latent takes the nearest of them (straight-through in
        training; the quantizer's own loss and statistics stay those of the whole codebook)."""
        z = self.latents(x)
        z_q, indices, stats = self.quantizer(z)
        if allowed is not None:
            indices = nearest_allowed(z.detach(), self.quantizer.codes().detach(), allowed)
            chosen = self.quantizer.lookup(indices)
            z_q = z + (chosen - z).detach() if self.training else chosen
        if sent is not None:
            indices = indices.masked_fill(~sent, GATE_CODE)
            z_q = self._decoded_as(z_q, ~sent, GATE_CODE)
        if lost is not None:
            z_q = self._decoded_as(z_q, *lost)
        return {"x_hat": self.decoder(z_q), "indices": indices, "z": z, "stats": stats}

    def _decoded_as(self, z_q: torch.Tensor, where: torch.Tensor, code: int) -> torch.Tensor:
        """``z_q`` (B, D, h, w) with the codeword of ``code`` wherever ``where`` (B, h, w)."""
        fill = self.quantizer.lookup(torch.full((1, 1, 1), code, device=z_q.device))  # (1,D,1,1)
        return torch.where(where[:, None], fill.to(z_q.dtype), z_q)

    def codewords(self) -> torch.Tensor:
        """Every codeword the quantizer can output, (K, D), in index order (differentiable)."""
        k = self.quantizer.num_codes
        all_codes = torch.arange(k, device=self.pre_vq.weight.device).view(1, 1, k)
        return self.quantizer.lookup(all_codes)[0, :, 0].t()  # (1, D, 1, K) -> (K, D)

    def encode(self, x: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 1, H, W) -> indices (B, H/f, W/f) int64; with ``allowed`` (A,) int64, the nearest
        of those codes only."""
        z = self.latents(x)
        if allowed is not None:
            return nearest_allowed(z, self.quantizer.codes(), allowed)
        return self.quantizer(z)[1]

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """indices (B, H/f, W/f) int64 -> x_hat (B, 1, H, W)."""
        return self.decoder(self.quantizer.lookup(indices))


__all__ = ["Branch"]
