"""The mmSlim model: MaskNet and two VQ-VAE branches, one fine (high rate), one coarse (low rate).

Each :class:`~mmslim.nn.branch.Branch` is one VQ-VAE (encoder, 1x1 pre-VQ conv, quantizer,
decoder), built twice; :mod:`mmslim.nn.sending` says which fine latents are sent (the gate) and
which a link loses. :class:`MMSlim` composes them.
"""

from __future__ import annotations

import dataclasses
import hashlib

import torch
from torch import nn

from mmslim.codec.frames import decode_frames, encode_frames
from mmslim.codec.prior import IndexPrior
from mmslim.config import MASK_MODES, ModelConfig
from mmslim.nn.branch import Branch
from mmslim.nn.losses import soft_bits
from mmslim.nn.masknet import MaskNet
from mmslim.nn.quantizers.vq import VectorQuantizer, usage_stats
from mmslim.nn.sending import GATE_CODE, hard_mask, lost_patches, sent_latents

FACTOR = 16  # H and W must be divisible by the coarse branch's downsampling


def check_frames(x: torch.Tensor, name: str = "x") -> None:
    """Raise ``ValueError`` unless ``x`` is a finite float (B, 1, H, W), H and W divisible by 16."""
    expected = f"expected {name} as a float tensor (B, 1, H, W) with H and W divisible by {FACTOR}"
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{expected}, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != 1:
        raise ValueError(f"{expected}, got shape {tuple(x.shape)}")
    if x.shape[2] % FACTOR or x.shape[3] % FACTOR:
        raise ValueError(f"{expected}, got H x W = {x.shape[2]} x {x.shape[3]}")
    if not x.is_floating_point():
        raise ValueError(f"{expected}, got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"expected finite values in {name}, found NaN or inf")


class MMSlim(nn.Module):
    """mmSlim: MaskNet and a dual VQ-VAE for compressing mmWave radar range-Doppler maps.

    Paper: "mmSlim" -- MaskNet + dual VQ-VAE compression of mmWave radar frames (overview in the
    README; sizes of the reference release in ``ModelConfig.preset("paper")``)::

                ┌────────── MaskNet(mask_source) ─────────┐  M in (0,1), (B, 1, H, W)
                │                                         │
      x ──┬──►  M·x  ──► Enc_hi (÷4)  ─► VQ ─► Dec_hi ──┐ │  indices_hi (B, H/4, W/4)
          │                                             ├─┼─►  x_hat = x_hat_hi + x_hat_lo
          └──► (1−M)·x ► Enc_lo (÷16) ─► VQ ─► Dec_lo ──┘ │  indices_lo (B, H/16, W/16)

    For 224 x 64 frames the latents are 56 x 16 and 14 x 4: 952 indices per frame. What a sender
    transmits is the two index grids (:meth:`encode`); a receiver rebuilds the frame from them
    (:meth:`decode_indices`). ``mask_source`` is the amplitude map: the same tensor as ``x`` in
    the amplitude stage, the amplitude belonging to the phase map ``x`` in the phase stage.

    With ``config.fine_gate`` > 0 the sender keeps only the fine latents near where the mask
    reaches that level (:func:`sent_latents`) and sends the others as code 0 (:data:`GATE_CODE`):
    the fine branch's bits go to the targets, not to the floor. The receiver needs no change.

    Ablations (``config.mask``, compared by ``mmslim bench rd``): ``"fixed"`` replaces MaskNet by
    M = 0.5 everywhere; ``"none"`` is a single VQ-VAE: M = 1, the whole map goes through the fine
    branch and the coarse branch is not run. Its ``indices_lo`` are kept, all zero, so that the
    codec and file format stay the same; under the ANS prior they cost about 0.04 bit each (the
    MaskNet and coarse-branch weights stay in the model, unused, so checkpoints keep one layout).

    Args:
        config: sizes; ``ModelConfig.preset("paper")`` or ``ModelConfig.preset("cpu-small")``.
    """

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = config if config is not None else ModelConfig()
        if self.config.mask not in MASK_MODES:
            raise ValueError(f"unknown mask {self.config.mask!r}; choose one of {MASK_MODES}")
        self.mask_net = MaskNet(self.config.mask_hidden, self.config.mask_head)
        self.hi = Branch.build("hi", self.config)
        self.lo = Branch.build("lo", self.config)
        self.prior = IndexPrior(self.config.num_codes)  # entropy model; fit_prior after training
        if self.config.fine_gate and hasattr(self.hi.quantizer, "reserved_code"):
            self.hi.quantizer.reserved_code = GATE_CODE  # it means "nothing here": never re-seed
        if self.config.coarse_codes and not isinstance(self.lo.quantizer, VectorQuantizer):
            raise ValueError("ModelConfig.coarse_codes needs a codebook (a VQ family) in the "
                             "coarse branch")  # fmt: skip

    def coarse_allowed(self) -> torch.Tensor | None:
        """(A,) int64, the coarse codes this sender may choose (``ModelConfig.coarse_codes``);
        None: all of them."""
        if not self.config.coarse_codes:
            return None
        return torch.tensor(self.config.coarse_codes, device=self.prior.counts_lo.device)

    def split(
        self,
        x: torch.Tensor,
        mask_source: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ):
        """Validate, then split ``x`` with the mask: returns ``(mask, M*x, (1-M)*x)``, each
        (B, 1, H, W). ``mask`` (B, 1, H, W) in [0, 1], if given, replaces MaskNet's (to explore
        what each branch does with another split, e.g. a thresholded mask)."""
        check_frames(x, "x")
        if mask_source is None:
            mask_source = x
        else:
            check_frames(mask_source, "mask_source")
            if mask_source.shape != x.shape:
                raise ValueError(
                    f"expected mask_source of the same shape as x {tuple(x.shape)}, "
                    f"got {tuple(mask_source.shape)}"
                )
        if mask is not None:
            if mask.shape != x.shape:
                raise ValueError(
                    f"expected mask of shape {tuple(x.shape)}, got {tuple(mask.shape)}"
                )
        elif self.config.mask in ("learned", "hard"):
            mask = self.mask_net(mask_source)
            if self.config.mask == "hard":
                mask = hard_mask(mask)
        else:  # ablations: a constant mask, 0.5 ("fixed") or 1 ("none": all to the fine branch)
            mask = torch.full_like(x, 0.5 if self.config.mask == "fixed" else 1.0)
        return mask, mask * x, (1.0 - mask) * x

    def _lo(self, x_lo: torch.Tensor) -> dict:
        """The coarse branch's output dict; for ``mask="none"`` the branch is skipped and this
        gives zeros: ``x_hat`` (B, 1, H, W), ``indices`` (B, H/16, W/16), a zero VQ loss."""
        if self.config.mask != "none":
            return self.lo(x_lo, allowed=self.coarse_allowed())
        b, _, h, w = x_lo.shape
        f = self.lo.downsample
        indices = torch.zeros(b, h // f, w // f, dtype=torch.int64, device=x_lo.device)
        zero = x_lo.new_zeros(())
        stats = {"loss": zero, "codebook_loss": zero, "commitment_loss": zero}
        stats.update(usage_stats(indices, self.lo.quantizer.num_codes))
        return {"x_hat": torch.zeros_like(x_lo), "indices": indices, "z": None, "stats": stats}

    def forward(
        self,
        x: torch.Tensor,
        mask_source: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        estimate_rate: bool = False,
        lost_share: float = 0.0,
        also_sent: torch.Tensor | None = None,
    ) -> dict:
        """Training/evaluation pass.

        Args:
            x: (B, 1, H, W) float in [0, 1], the map to compress; H and W divisible by 16.
            mask_source: (B, 1, H, W) amplitude map the mask is computed from; defaults to ``x``.
            mask: (B, 1, H, W) in [0, 1] to use instead of MaskNet's; None for the model's own.
            estimate_rate: also return ``rate_bits``, a differentiable estimate of the bits of
                both index grids (:func:`mmslim.nn.losses.soft_bits`), for a rate term.
            lost_share: train for a lossy link: random 2 x 2 patches of the fine grid covering
                about this share of it reach the decoder as the most likely code
                (:meth:`decode_with_missing`'s rule), the others as sent. 0: none.
            also_sent: (B, H/4, W/4) bool, fine latents sent whatever the gate says, as
                :meth:`encode` takes them (the codec's detections); None: the gate alone.

        Returns a dict:
            ``x_hat``: (B, 1, H, W) reconstruction, ``x_hat_hi + x_hat_lo``;
            ``x_hat_hi``, ``x_hat_lo``: (B, 1, H, W) the two branches' outputs;
            ``mask``: (B, 1, H, W) in (0, 1);
            ``indices_hi``: (B, H/4, W/4) int64; ``indices_lo``: (B, H/16, W/16) int64;
            ``vq_loss``: scalar, sum of both quantizers' losses;
            ``stats_hi``, ``stats_lo``: the quantizers' info dicts (``loss``, ``perplexity``,
            ``counts`` (K,), ``dead_share``, ...);
            ``rate_bits``: scalar, only with ``estimate_rate``.
        """
        mask, x_hi, x_lo = self.split(x, mask_source, mask)
        lost = None
        if lost_share > 0:
            grid = self.latent_shapes(*x.shape[-2:])["hi"]
            missing = lost_patches((len(x), *grid), lost_share).to(x.device)
            lost = (missing, self.likely_fine_code())
        sent = self.sent_fine(mask)
        if sent is not None and also_sent is not None:
            sent = sent | also_sent.to(sent.device)
        hi = self.hi(x_hi, sent, lost)
        lo = self._lo(x_lo)
        out = {
            "x_hat": hi["x_hat"] + lo["x_hat"],  # the reference negated this sum; we do not
            "x_hat_hi": hi["x_hat"],
            "x_hat_lo": lo["x_hat"],
            "mask": mask,
            "indices_hi": hi["indices"],
            "indices_lo": lo["indices"],
            "vq_loss": hi["stats"]["loss"] + lo["stats"]["loss"],
            "stats_hi": hi["stats"],
            "stats_lo": lo["stats"],
        }
        if estimate_rate:
            out["rate_bits"] = sum(
                soft_bits(part["z"], branch.codewords(), part["indices"], sent=chosen)
                for part, branch, chosen in ((hi, self.hi, sent), (lo, self.lo, None))
                if part["z"] is not None  # the "none" ablation does not run the coarse branch
            )
        return out

    def encode(
        self,
        x: torch.Tensor,
        mask_source: torch.Tensor | None = None,
        also_sent: torch.Tensor | None = None,
    ) -> dict:
        """Sender side: (B, 1, H, W) -> ``indices_hi`` (B, H/4, W/4), ``indices_lo``
        (B, H/16, W/16), both int64. Use in eval mode (BatchNorm running statistics).
        ``also_sent``: (B, H/4, W/4) bool, fine latents sent whatever the gate says (the codec's
        detections, ``ModelConfig.gate_detections``)."""
        mask, x_hi, x_lo = self.split(x, mask_source)
        if self.config.mask == "none":
            lo = self._lo(x_lo)["indices"]
        else:
            lo = self.lo.encode(x_lo, self.coarse_allowed())
        hi, sent = self.hi.encode(x_hi), self.sent_fine(mask)
        if sent is not None:
            if also_sent is not None:
                sent = sent | also_sent.to(sent.device)
            hi = hi.masked_fill(~sent, GATE_CODE)
        return {"indices_hi": hi, "indices_lo": lo}

    def with_fine_gate(self, level: float, detections: bool | None = None) -> MMSlim:
        """A copy of this model (weights, prior, train/eval mode) whose sender gates the fine
        grid at ``level`` (``ModelConfig.fine_gate``; 0: every latent sent), and also sends the
        latents near CA-CFAR detections if ``detections`` (``ModelConfig.gate_detections``;
        None: as this model). Refit its prior (:func:`mmslim.codec.fit_prior`) before coding
        with ANS: the gate changes the codes' frequencies."""
        if detections is None:
            detections = self.config.gate_detections and level > 0
        return self._sender(fine_gate=level, gate_detections=detections)

    def with_coarse_codes(self, codes) -> MMSlim:
        """A copy of this model (weights, prior, train/eval mode) whose sender chooses among the
        coarse ``codes`` only (``ModelConfig.coarse_codes``; empty: all of them; see
        :func:`mmslim.codec.coarse.choose_coarse_codes`). Refit its prior before coding with ANS."""
        return self._sender(coarse_codes=tuple(sorted(int(c) for c in codes)))

    def _sender(self, **rules) -> MMSlim:
        """A copy of this model (weights, prior, device, train/eval mode) with the config fields
        ``rules`` replaced: another sender of the same weights."""
        copy = MMSlim(dataclasses.replace(self.config, **rules))
        copy.load_state_dict(self.state_dict())
        device = next(self.parameters()).device
        return copy.to(device).train(self.training)

    def sent_fine(self, mask: torch.Tensor) -> torch.Tensor | None:
        """(B, 1, H, W) mask -> (B, H/4, W/4) bool, the fine latents sent as the encoder chose
        them (:func:`sent_latents` at ``config.fine_gate``); None when every latent is sent."""
        if not self.config.fine_gate:
            return None
        return sent_latents(mask, self.hi.downsample, self.config.fine_gate)

    def decode_indices(self, indices_hi: torch.Tensor, indices_lo: torch.Tensor) -> dict:
        """Receiver side: indices (B, H/4, W/4) and (B, H/16, W/16) int64 -> ``x_hat``,
        ``x_hat_hi``, ``x_hat_lo``, each (B, 1, H, W). In eval mode ``x_hat`` equals
        ``forward(x)["x_hat"]`` exactly."""
        self._check_indices(indices_hi, indices_lo)
        x_hat_hi = self.hi.decode_indices(indices_hi)
        if self.config.mask == "none":  # single VQ-VAE: the (all-zero) coarse grid is ignored
            x_hat_lo = torch.zeros_like(x_hat_hi)
        else:
            x_hat_lo = self.lo.decode_indices(indices_lo)
        return {"x_hat": x_hat_hi + x_hat_lo, "x_hat_hi": x_hat_hi, "x_hat_lo": x_hat_lo}

    def likely_fine_code(self) -> int:
        """The fine branch's most frequent code under the prior (what the fine grid holds
        wherever the mask sent nothing: the receiver's best guess for a missing index)."""
        return int(self.prior.counts_hi.argmax())

    def decode_preview(self, indices_lo: torch.Tensor) -> dict:
        """Layered decoding: a preview from the coarse grid alone, (B, H/16, W/16) int64 ->
        ``x_hat`` (B, 1, H, W), the fine grid taken as its most likely code everywhere (see
        :meth:`likely_fine_code`); a receiver can show it before the fine grid arrives."""
        b, h, w = indices_lo.shape
        r = self.lo.downsample // self.hi.downsample
        fine = torch.full((b, h * r, w * r), self.likely_fine_code(), dtype=torch.int64)
        return self.decode_indices(fine.to(indices_lo.device), indices_lo)

    def decode_with_missing(
        self, indices_hi: torch.Tensor, indices_lo: torch.Tensor, missing: torch.Tensor
    ) -> dict:
        """Decode a frame whose fine indices were partly lost on the link. ``missing``: (B,
        H/4, W/4) bool, True where an index did not arrive; those take the most likely code.
        Returns what :meth:`decode_indices` returns."""
        if missing.shape != indices_hi.shape or missing.dtype != torch.bool:
            raise ValueError(
                f"expected missing as a bool tensor of shape {tuple(indices_hi.shape)}, got "
                f"{missing.dtype} {tuple(missing.shape)}"
            )
        filled = indices_hi.masked_fill(missing, self.likely_fine_code())
        return self.decode_indices(filled, indices_lo)

    # --- codec: compress / decompress (CompressAI style; only the entropy coder makes bytes) --

    def compress(
        self, x: torch.Tensor, mask_source: torch.Tensor | None = None, mode: str = "ans"
    ) -> dict:
        """Sender: (B, 1, H, W) in [0, 1] -> ``{"strings": [B bytes], "shape": (H, W)}``.

        Each string holds one frame's two index grids, entropy coded against ``self.prior``
        (per-branch index frequencies from training; see :func:`mmslim.codec.fit_prior`).
        ``mode``: ``"ans"`` (default), ``"huffman"`` (the paper's) or ``"fixed"`` (9 bits/index).
        """
        enc = self.encode(x, mask_source)
        strings = encode_frames(
            enc["indices_hi"].cpu().numpy(),
            enc["indices_lo"].cpu().numpy(),
            mode,
            self.prior_for(mode),
            self.config.num_codes,
        )
        return {"strings": strings, "shape": tuple(x.shape[-2:])}

    def decompress(self, strings: list[bytes], shape: tuple[int, int], mode: str = "ans") -> dict:
        """Receiver: the strings of :meth:`compress` -> ``{"x_hat": (B, 1, H, W)}``, equal to the
        eval-mode ``forward(x)["x_hat"]``. A bad string raises ``codec.BitstreamError``."""
        grids = self.latent_shapes(*shape)
        hi, lo = decode_frames(
            strings, grids["hi"], grids["lo"], mode, self.prior_for(mode), self.config.num_codes
        )
        dev = next(self.parameters()).device
        out = self.decode_indices(torch.from_numpy(hi).to(dev), torch.from_numpy(lo).to(dev))
        return {"x_hat": out["x_hat"]}

    def fingerprint(self) -> bytes:
        """8 bytes identifying the weights and the entropy prior; written into every file so
        that a file is never decoded by another model."""
        digest = hashlib.sha256(b"mmslim-model-v2")
        for name, tensor in sorted(self.state_dict().items()):  # the prior's buffers included
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.digest()[:8]

    def prior_for(self, mode: str) -> IndexPrior | None:
        """The prior that coding ``mode`` needs: the fitted ``self.prior`` for ``"ans"``, None
        otherwise. Raises ``ValueError`` with the fix if ANS is asked of an unfitted prior."""
        if mode == "ans" and not self.prior.is_fitted:
            raise ValueError(
                "this model's entropy prior is not fitted, and ANS coding needs it. Fit it with "
                "mmslim.codec.fit_prior (or `mmslim prior --checkpoint CKPT --data DATA`)."
            )
        return self.prior if mode == "ans" else None

    def latent_shapes(self, height: int = 224, width: int = 64) -> dict[str, tuple[int, int]]:
        """Index-grid sizes of (H, W) frames: ``{"hi": (H/4, W/4), "lo": (H/16, W/16)}``."""
        if height % FACTOR or width % FACTOR or height <= 0 or width <= 0:
            raise ValueError(
                f"expected H and W positive and divisible by {FACTOR}, got {height} x {width}"
            )
        return {
            "hi": (height // self.hi.downsample, width // self.hi.downsample),
            "lo": (height // self.lo.downsample, width // self.lo.downsample),
        }

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (all, or only those with ``requires_grad``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def _check_indices(self, indices_hi: torch.Tensor, indices_lo: torch.Tensor) -> None:
        for name, idx, branch in (
            ("indices_hi", indices_hi, self.hi),
            ("indices_lo", indices_lo, self.lo),
        ):
            if not isinstance(idx, torch.Tensor) or idx.dim() != 3 or idx.dtype != torch.int64:
                got = tuple(idx.shape) if isinstance(idx, torch.Tensor) else type(idx).__name__
                raise ValueError(f"expected {name} as an int64 tensor (B, h, w), got {got}")
            k = branch.quantizer.num_codes
            if idx.numel() and (idx.min() < 0 or idx.max() >= k):
                raise ValueError(f"expected {name} in [0, {k}), got values outside")
        r = self.lo.downsample // self.hi.downsample  # 4: the lo grid is 4x coarser
        b, h, w = indices_hi.shape
        if indices_lo.shape != (b, h // r, w // r) or h % r or w % r:
            raise ValueError(
                f"expected indices_lo of shape (B, h/{r}, w/{r}) = {(b, h // r, w // r)} for "
                f"indices_hi {tuple(indices_hi.shape)}, got {tuple(indices_lo.shape)}"
            )


__all__ = ["MMSlim", "check_frames"]
