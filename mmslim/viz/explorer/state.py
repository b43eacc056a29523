"""What the mask explorer shows for one frame: the split MaskNet makes and what each branch
rebuilds, computed without drawing anything.

:func:`explorer_state` gives, for one walker, frame, map kind, threshold and blend, the input,
the learned mask, the mask actually used, M·x and (1−M)·x, each branch's output, the sum, its
error, both index grids and a few numbers.

Threshold and blend change the mask given to the branches: the *hard* mask is 1 where the
learned mask ``M > threshold`` (threshold 0 sends every cell to the fine branch, threshold 1
every cell to the coarse one), and the mask used is ``(1 − blend)·M + blend·hard``, so blend 0
is the trained model as it is and blend 1 the hard split. With no threshold given, Otsu's
threshold of the frame's learned mask is used (N. Otsu, "A threshold selection method from
gray-level histograms", IEEE Trans. SMC 9(1), 1979; scikit-image's ``threshold_otsu``): the
value that best splits M into two groups, rather than a fixed 0.5 that may sit on the floor of
a mask (the paper's head keeps M near 0.5 over the whole noise floor).
"""

from __future__ import annotations

import numpy as np
import torch

from mmslim.config import KINDS
from mmslim.data.dataset import RadarFrames
from mmslim.metrics.image import psnr, ssim
from mmslim.metrics.radar import wrap_phase
from mmslim.viz.maps import to_physical

UNITS = {"amplitude": "dB", "phase": "rad"}  # unit of each map kind in physical values


def hard_mask(mask: torch.Tensor, threshold: float) -> torch.Tensor:
    """1.0 where ``mask > threshold``, else 0.0; threshold <= 0 gives all ones and >= 1 all
    zeros, whatever the mask's rounding (a sigmoid can round to exactly 0 or 1)."""
    if threshold <= 0:
        return torch.ones_like(mask)
    if threshold >= 1:
        return torch.zeros_like(mask)
    return (mask > threshold).to(mask.dtype)


def blended_mask(mask: torch.Tensor, threshold: float, blend: float) -> torch.Tensor:
    """``(1 - blend) * mask + blend * hard_mask(mask, threshold)``; blend in [0, 1]."""
    if not 0.0 <= blend <= 1.0:
        raise ValueError(f"blend must lie in [0, 1], got {blend}")
    return (1.0 - blend) * mask + blend * hard_mask(mask, threshold)


def otsu_threshold(mask) -> float:
    """Otsu's threshold of a mask's values (any shape), rounded to 0.01 (the slider's step)."""
    from skimage.filters import threshold_otsu

    m = mask.detach().float().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
    return round(float(threshold_otsu(m)), 2)


@torch.no_grad()
def forward_with_mask(model, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model's two branches run with a given mask instead of MaskNet's.

    x, mask: (B, 1, H, W). Returns ``x_hat``, ``x_hat_hi``, ``x_hat_lo`` (B, 1, H, W) and
    ``indices_hi`` (B, H/4, W/4), ``indices_lo`` (B, H/16, W/16) int64. Runs in eval mode.
    """
    was_training = model.training
    model.eval()
    out = model(x, mask=mask)
    model.train(was_training)
    keys = ("x_hat", "x_hat_hi", "x_hat_lo", "indices_hi", "indices_lo")
    return {k: out[k] for k in keys}


def subject_frames(dataset: RadarFrames, subject: str) -> np.ndarray:
    """Positions in ``dataset`` of one walker's frames, by sequence then frame number: (n,)."""
    fs = dataset.frames
    pos = np.flatnonzero(fs.subject == subject)
    if len(pos) == 0:
        raise ValueError(f"no frames of subject {subject!r}; subjects: {fs.subjects()}")
    return pos[np.lexsort((fs.frame[pos], fs.sequence[pos]))]


@torch.no_grad()
def explorer_state(
    model,
    dataset: RadarFrames,
    subject: str,
    frame: int,
    kind: str = "amplitude",
    threshold: float | None = None,
    blend: float = 0.0,
) -> dict:
    """Everything the explorer shows for one frame of one walker.

    model: the trained model of ``kind`` (its MaskNet always looks at the amplitude map).
    frame: position among the walker's frames (see :func:`subject_frames`).
    threshold: of the hard mask; None: :func:`otsu_threshold` of this frame's learned mask.

    Returns a dict of (H, W) float arrays -- ``x`` (normalised input), ``x_phys`` (dB or rad),
    ``mask_learned`` (MaskNet's M), ``mask`` (the mask used), ``x_hi_in`` (mask·x),
    ``x_lo_in`` ((1-mask)·x), ``x_hat_hi``, ``x_hat_lo``, ``x_hat`` (normalised), ``x_hat_phys``,
    ``error`` (x_hat_phys - x_phys, wrapped to [-pi, pi) for phase) -- of ``indices_hi``
    (H/4, W/4) and ``indices_lo`` (H/16, W/16) int64, and of scalars ``ssim``, ``psnr`` (of the
    clamped reconstruction, normalised), ``mask_mean``, ``error_rms`` in ``unit`` (dB or rad),
    ``phys_limits`` (the colour limits of physical maps: the walker's range over all its frames
    for amplitude, [-pi, pi] for phase), the arguments (``threshold`` as used) and
    ``num_codes``.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    positions = subject_frames(dataset, subject)
    if not 0 <= frame < len(positions):
        raise ValueError(f"frame must lie in [0, {len(positions)}) for {subject}, got {frame}")
    item = dataset[int(positions[frame])]
    if kind == "amplitude":  # the walker's range over all its frames: a colour is one dB value
        ranges = dataset.tensors("amplitude")[1][torch.from_numpy(positions)]  # (n, 2)
        phys_limits = (float(ranges[:, 0].min()), float(ranges[:, 1].max()))
    else:
        phys_limits = (-float(np.pi), float(np.pi))
    dev = next(model.parameters()).device
    x = item[kind][None].to(dev)  # (1, 1, H, W)
    amp = item["amplitude"][None].to(dev)  # (1, 1, H, W), what MaskNet looks at
    was_training = model.training
    model.eval()
    learned = model.mask_net(amp)  # (1, 1, H, W)
    model.train(was_training)
    threshold = otsu_threshold(learned) if threshold is None else float(threshold)
    mask = blended_mask(learned, threshold, blend)
    out = forward_with_mask(model, x, mask)
    x_hat = out["x_hat"].clamp(0, 1)
    value_range = item["amp_range" if kind == "amplitude" else "phase_range"]  # (2,)
    x_phys = to_physical(x[0, 0].cpu(), value_range)
    x_hat_phys = to_physical(x_hat[0, 0].cpu(), value_range)
    error = x_hat_phys - x_phys
    if kind == "phase":
        error = wrap_phase(error)

    def arr(t: torch.Tensor) -> np.ndarray:
        return t[0, 0].float().cpu().numpy()  # (1, 1, H, W) -> (H, W)

    return {
        "kind": kind,
        "subject": subject,
        "frame": frame,
        "index": int(positions[frame]),
        "threshold": threshold,
        "blend": float(blend),
        "x": arr(x),
        "x_phys": x_phys,
        "mask_learned": arr(learned),
        "mask": arr(mask),
        "x_hi_in": arr(mask * x),
        "x_lo_in": arr((1 - mask) * x),
        "x_hat_hi": arr(out["x_hat_hi"]),
        "x_hat_lo": arr(out["x_hat_lo"]),
        "x_hat": arr(x_hat),
        "x_hat_phys": x_hat_phys,
        "error": error,
        "indices_hi": out["indices_hi"][0].cpu().numpy(),
        "indices_lo": out["indices_lo"][0].cpu().numpy(),
        "ssim": float(ssim(x, x_hat)),
        "psnr": float(psnr(x, x_hat)),
        "mask_mean": float(mask.mean()),
        "num_codes": int(model.config.num_codes),
        "error_rms": float(np.sqrt(np.mean(error**2))),
        "unit": UNITS[kind],
        "phys_limits": phys_limits,
    }
