"""How well the training loss's rate estimate predicts the size of the real file.

The rate term of the radar objective (``TrainConfig.rate_weight``) is
:func:`mmslim.nn.losses.soft_bits`: soft code assignments scored against the batch's own code
frequencies. What a link pays is the ``.mmsl`` file: ANS against the prior fitted on the training
split, plus per-frame framing and side information. ``mmslim bench rate`` measures on validation
frames, in bits per map element:

- ``estimate``: the training estimate (model in eval mode, all frames as one batch), for the
  latents the sender sends (with ``ModelConfig.gate_detections``, the detections' too, which
  training does not see);
- ``ideal``: the hard indices' code length under the model's prior, ``sum -log2 p(index)``;
- ``indices``: the ANS payloads of the frames (what the indices really cost);
- ``file``: the whole file (header, frame records, side information included);
- ``estimate_error``: ``estimate / file - 1``, the gap the loss does not see;
- ``framed``: the estimate plus the container's fixed bytes for that many frames (the format
  fixes them: header, frame records, side information), what a link budget would add to the
  loss's figure; ``framed_error``: ``framed / file - 1``. At low rates the fixed bytes are a
  tenth of the file, which the loss, summing index bits, never sees.
"""

from __future__ import annotations

import torch

from mmslim.codec.container import file_bytes
from mmslim.codec.maps import compress_maps
from mmslim.data.dataset import FrameSet, normalize


@torch.no_grad()
def rate_check(model, frames: FrameSet, kind: str = "amplitude") -> dict:
    """One row of the figures above for ``model`` (its stage is ``kind``) on ``frames``."""
    model.eval()
    maps, amp = getattr(frames, kind), frames.amplitude
    elements = maps.size
    x01 = normalize(torch.from_numpy(maps))[0][:, None]  # (N, 1, H, W)
    src = normalize(torch.from_numpy(amp))[0][:, None] if kind == "phase" else None
    also = None
    if model.config.gate_detections:  # what the codec's sender adds to the gate (maps in dB)
        from mmslim.codec.detections import detected_latents

        grid = model.latent_shapes(*amp.shape[1:])["hi"]
        also = torch.from_numpy(detected_latents(amp, grid))
    out = model(x01, mask_source=src, estimate_rate=True, also_sent=also)
    ideal = model.prior.cross_entropy_bits(out["indices_hi"], "hi") + (
        model.prior.cross_entropy_bits(out["indices_lo"], "lo")
    )
    data = compress_maps(model, maps, kind, "ans", amp if kind == "phase" else None)
    fixed = file_bytes(0, len(maps))  # what the container adds to the frames' strings
    payload = len(data) - fixed  # the frames' strings alone
    estimate = float(out["rate_bits"]) / elements
    framed = estimate + 8 * fixed / elements
    file_bpe = 8 * len(data) / elements
    return {
        "kind": kind,
        "frames": len(maps),
        "estimate": estimate,
        "ideal": ideal / elements,
        "indices": 8 * payload / elements,
        "file": file_bpe,
        "estimate_error": estimate / file_bpe - 1.0,
        "framed": framed,
        "framed_error": framed / file_bpe - 1.0,
    }


__all__ = ["rate_check"]
