"""Training objectives, shared by training (:mod:`mmslim.training.fit`) and evaluation.

Two objectives (``TrainConfig.objective``, choices :data:`mmslim.config.OBJECTIVES`):

``"ssim"``, the paper's: ``1 - SSIM(x, x_hat)`` (11x11 box window, as the reference) plus both
branches' VQ losses, plus a range penalty the reference lacks (:func:`range_penalty`).

``"radar"``, what a radar user keeps (each term in dB / 10, so the weights compare):

- **target** (:func:`target_error`): mean |dB error| on the *target region*, the cells of the
  input within ``target_db`` (40 dB) of the frame's peak, as :func:`mmslim.metrics.radar.
  target_region` defines it. About 1-3 % of the cells; SSIM barely sees them.
- **background level** (:func:`background_level_error`): the local mean *power* around every
  cell, over CA-CFAR's own window (25 x 13 cells), in dB. CFAR thresholds are that mean times a
  constant, so keeping it keeps the thresholds; the floor's texture is left free.
- **background spread** (:func:`background_spread_error`): the local standard deviation of the
  dB map over the same window. Small by default: a decoder cannot predict noise, and a
  reconstruction that invents texture raises false alarms.
- **floor** (:func:`floor_error`): mean |dB error| on the background (every cell more than two
  cells from the target region). Noise texture cannot be predicted from a few bits, and the
  |error| of an unpredictable value is smallest at its median: this term makes the decoder draw
  the floor as a smooth surface at its local median instead of inventing texture, whose peaks
  CA-CFAR reports as false alarms (the level term alone leaves texture free, and decoders
  trained without this term fill it with spikes wider than the original's).
- **CFAR** (:func:`cfar_error`): how far, in dB, a cell of the reconstruction lies on the other
  side of CA-CFAR's threshold than the original's cell (up to a 1 dB margin), per detection of
  the original. The target and level terms keep each cell's value and the mean power of its
  neighbourhood, but CFAR compares a cell with the power of a ring of training cells around it;
  on the shipped model the detections it missed had their cell within 1 dB but that ring 6.7
  dB too strong (target power smeared into it), and its false alarms were blobs 17 dB too
  strong right beside the target region, where neither term looks.
- **split** (:func:`split_loss`): MaskNet is told where the targets are (the target region,
  dilated by one cell), with a balanced cross-entropy, so the fine branch gets the targets and
  the coarse one the floor. Without it nothing in a rate-free loss rewards a split.
- **phase** (:func:`phase_error`, phase stage): ``1 - cos(phi_hat - phi)`` on the target region of
  the amplitude, weighted by target strength; phase elsewhere is noise and costs nothing.
- **rate** (:func:`soft_bits`): ``rate_weight`` x estimated bits per map element of both index
  grids, differentiable through soft assignments (0 by default).

References: Wang et al., "Image quality assessment: from error visibility to structural
similarity", IEEE TIP 2004 (SSIM); Richards, *Fundamentals of Radar Signal Processing*, ch. 7
(CA-CFAR); Agustsson et al., "Soft-to-Hard Vector Quantization for End-to-End Learning
Compressible Representations", NeurIPS 2017 (soft assignments for a rate estimate).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mmslim.config import TrainConfig
from mmslim.metrics.image import ssim

CFAR_WINDOW = (25, 13)  # CA-CFAR's full window in (Doppler, range) cells: 2 (guard + train) + 1


@dataclass
class LossContext:
    """What the radar objective needs beyond the map and the model's output.

    amp01: (B, 1, H, W) amplitude in [0, 1] (the target region is defined on it);
    amp_range: (B, 2) its per-frame (min, max) in dB; x_range: (B, 2) the compressed map's
    (min, max) in physical units (dB, or radians in the phase stage); stage: the map kind.
    """

    amp01: torch.Tensor
    amp_range: torch.Tensor
    x_range: torch.Tensor
    stage: str = "amplitude"


def stage_loss(
    x: torch.Tensor,
    out: dict,
    config: TrainConfig | str | None = None,
    context: LossContext | None = None,
) -> torch.Tensor:
    """The training objective of ``config`` (a TrainConfig; a string is the SSIM window of the
    paper's objective, for short calls). ``x``: (B, 1, H, W) in [0, 1]; ``out``: the model's
    output. Returns a scalar; :func:`loss_terms` gives the parts."""
    return loss_terms(x, out, config, context)["loss"]


def loss_terms(
    x: torch.Tensor,
    out: dict,
    config: TrainConfig | str | None = None,
    context: LossContext | None = None,
) -> dict[str, torch.Tensor]:
    """Every term of the objective (unweighted, scalars) and their weighted sum ``loss``."""
    if config is None or isinstance(config, str):
        config = TrainConfig(ssim_window=config or "box", objective="ssim")
    x_hat = out["x_hat"].float()
    terms = {"range": range_penalty(x_hat), "vq": out["vq_loss"].float()}
    weights = {"range": 1.0, "vq": 1.0}
    if config.objective == "ssim":
        terms["ssim"] = 1.0 - ssim(x, x_hat, window=config.ssim_window)
        weights["ssim"] = 1.0
    else:
        if context is None:
            raise ValueError("the radar objective needs a LossContext (amplitude and ranges)")
        targets = target_mask(context.amp01, context.amp_range, config.target_db)  # (B,1,H,W)
        span = (context.x_range[:, 1] - context.x_range[:, 0]).view(-1, 1, 1, 1).float()
        if context.stage == "phase":
            weight = targets * target_strength(context.amp01, context.amp_range, config.target_db)
            terms["phase"] = phase_error((x_hat - x) * span, weight)
            weights["phase"] = config.phase_weight
        else:
            terms["target"] = target_error((x_hat - x) * span, targets)
            terms["background"] = background_level_error(x * span, x_hat * span)
            terms["spread"] = background_spread_error(x * span, x_hat * span)
            terms["floor"] = floor_error((x_hat - x) * span, targets)
            weights.update(
                target=config.target_weight,
                background=config.background_weight,
                spread=config.spread_weight,
                floor=config.floor_weight,
            )
            if config.cfar_weight:
                terms["cfar"] = cfar_error(x * span, x_hat * span)
                weights["cfar"] = config.cfar_weight
            if "mask" in out and out["mask"].requires_grad:
                terms["split"] = split_loss(out["mask"], dilate(targets))
                weights["split"] = config.split_weight
    if "rate_bits" in out:
        terms["rate"] = out["rate_bits"].float() / x.numel()  # bits per map element
        weights["rate"] = config.rate_weight
    terms["loss"] = sum(weights[k] * terms[k] for k in weights)
    return terms


def range_penalty(x_hat: torch.Tensor) -> torch.Tensor:
    """Mean distance of ``x_hat`` outside [0, 1] (0 inside): ``mean(relu(-x) + relu(x - 1))``.

    SSIM is nearly blind to the sign of the output: for ``x_hat = -x`` both of its factors are
    negative and their product is high (0.73 on the sample's maps), so SSIM alone let training
    settle on a negated map in 3 of 36 short runs. This penalty is 0 for any reconstruction a
    receiver would show unchanged and makes the negated one cost about the map's mean (0.4).
    """
    return (torch.relu(-x_hat) + torch.relu(x_hat - 1.0)).mean()


def target_mask(amp01: torch.Tensor, amp_range: torch.Tensor, target_db: float) -> torch.Tensor:
    """Cells within ``target_db`` of their frame's peak: (B, 1, H, W) in [0, 1] and (B, 2) dB
    -> (B, 1, H, W) float 0/1 (the region of :func:`mmslim.metrics.radar.target_region`)."""
    span = (amp_range[:, 1] - amp_range[:, 0]).view(-1, 1, 1, 1)  # dB per unit of amp01
    peak = amp01.amax(dim=(2, 3), keepdim=True)  # 1 for normalised maps
    return (amp01 >= peak - target_db / span).float()


def target_strength(amp01: torch.Tensor, amp_range: torch.Tensor, target_db: float):
    """(B, 1, H, W) in [0, 1]: 0 at ``target_db`` below the frame's peak, 1 at the peak."""
    span = (amp_range[:, 1] - amp_range[:, 0]).view(-1, 1, 1, 1)
    below_peak_db = (amp01.amax(dim=(2, 3), keepdim=True) - amp01) * span
    return (1.0 - below_peak_db / target_db).clamp(0.0, 1.0)


def dilate(mask: torch.Tensor, cells: int = 1) -> torch.Tensor:
    """Grow a 0/1 mask (B, 1, H, W) by ``cells`` in every direction (3x3 max filter)."""
    return F.max_pool2d(mask, 2 * cells + 1, stride=1, padding=cells)


def target_error(err_db: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean |error| on target cells, in units of 10 dB. err_db, targets: (B, 1, H, W)."""
    return (err_db.abs() * targets).sum() / targets.sum().clamp_min(1.0) / 10.0


def floor_error(err_db: torch.Tensor, targets: torch.Tensor, margin: int = 2) -> torch.Tensor:
    """Mean |error| on background cells, in units of 10 dB: cells farther than ``margin`` cells
    from the target region. err_db, targets: (B, 1, H, W)."""
    floor = 1.0 - dilate(targets, margin)
    return (err_db.abs() * floor).sum() / floor.sum().clamp_min(1.0) / 10.0


def _local_mean(x: torch.Tensor, window: tuple[int, int] = CFAR_WINDOW) -> torch.Tensor:
    """Mean over a (h, w) window around every cell: Doppler wraps around (the FFT is circular),
    range is mirrored at its edges (CA-CFAR, :func:`mmslim.metrics.radar.ca_cfar`, leaves out
    the cells past the edge instead; a training loss only needs a smooth local level)."""
    h, w = window
    x = F.pad(x, (0, 0, h // 2, h // 2), mode="circular")
    x = F.pad(x, (w // 2, w // 2, 0, 0), mode="reflect")
    return F.avg_pool2d(F.avg_pool2d(x, (h, 1), stride=1), (1, w), stride=1)  # separable


def local_power_db(db: torch.Tensor) -> torch.Tensor:
    """Local mean power in dB, ``10 log10(mean(10^(dB/10)))`` over CFAR's window, computed
    relative to each frame's peak so nothing overflows. db: (B, 1, H, W) -> same shape."""
    peak = db.detach().amax(dim=(2, 3), keepdim=True)
    power = torch.pow(10.0, ((db - peak) / 10.0).clamp(max=3.0))
    return 10.0 * torch.log10(_local_mean(power) + 1e-12) + peak


def background_level_error(db: torch.Tensor, db_hat: torch.Tensor) -> torch.Tensor:
    """Mean |local power error| over every cell, in units of 10 dB. (B, 1, H, W) dB maps (any
    offset: only differences count)."""
    return (local_power_db(db_hat) - local_power_db(db)).abs().mean() / 10.0


CFAR_GUARD = (9, 5)  # the guard window (cell under test included) inside CFAR_WINDOW


def cfar_margin_db(db: torch.Tensor, pfa: float = 1e-6) -> torch.Tensor:
    """dB by which each cell exceeds CA-CFAR's threshold (> 0: detected), as
    :func:`mmslim.metrics.radar.ca_cfar` decides with its default windows: the cell's power
    against the mean power of the training ring (CFAR_WINDOW less CFAR_GUARD) times ``alpha``.
    db: (B, 1, H, W) -> same shape."""
    peak = db.detach().amax(dim=(2, 3), keepdim=True)
    power = torch.pow(10.0, ((db - peak) / 10.0).clamp(max=3.0))
    n_outer, n_inner = CFAR_WINDOW[0] * CFAR_WINDOW[1], CFAR_GUARD[0] * CFAR_GUARD[1]
    ring = _local_mean(power) * n_outer - _local_mean(power, CFAR_GUARD) * n_inner
    n = n_outer - n_inner
    alpha = n * (pfa ** (-1.0 / n) - 1.0)
    noise_db = 10.0 * torch.log10(ring.clamp_min(1e-12) / n)
    return (db - peak) - noise_db - 10.0 * torch.log10(torch.tensor(alpha))


def cfar_error(db: torch.Tensor, db_hat: torch.Tensor, margin_db: float = 1.0) -> torch.Tensor:
    """dB on the wrong side of CA-CFAR's threshold, summed over cells, per detection of the
    original, in units of 10 dB (B, 1, H, W dB maps). A cell the original detects costs what
    the reconstruction falls short of ``min(its margin, margin_db)``; any other cell, what it
    exceeds ``max(its margin, -margin_db)``. 0 when every cell lands on its side."""
    m, m_hat = cfar_margin_db(db).detach(), cfar_margin_db(db_hat)
    detected = m > 0
    short = torch.relu(torch.clamp(m, max=margin_db) - m_hat)  # a detection lost
    over = torch.relu(m_hat - torch.clamp(m, min=-margin_db))  # a false alarm
    wrong = torch.where(detected, short, over)
    return wrong.sum() / detected.sum().clamp_min(1) / 10.0


def background_spread_error(db: torch.Tensor, db_hat: torch.Tensor) -> torch.Tensor:
    """Mean |error of the local standard deviation of dB values|, in units of 10 dB."""

    def spread(v):
        mean = _local_mean(v)
        return (_local_mean(v * v) - mean * mean).clamp_min(1e-6).sqrt()

    return (spread(db_hat) - spread(db)).abs().mean() / 10.0


def split_loss(mask: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Balanced binary cross-entropy of the mask (B, 1, H, W) in (0, 1) against 0/1 targets:
    the mean over target cells and the mean over the rest count equally."""
    m = mask.float().clamp(1e-4, 1 - 1e-4)
    on, off = targets, 1.0 - targets
    pos = -(torch.log(m) * on).sum() / on.sum().clamp_min(1.0)
    neg = -(torch.log(1 - m) * off).sum() / off.sum().clamp_min(1.0)
    return 0.5 * (pos + neg)


def phase_error(err_rad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Weighted mean of ``1 - cos(err)``: 0 for a perfect phase, 2 for the opposite one.
    err_rad, weight: (B, 1, H, W); zero weight makes a cell free."""
    return (weight * (1.0 - torch.cos(err_rad))).sum() / weight.sum().clamp_min(1e-6)


def soft_bits(
    z: torch.Tensor,
    codewords: torch.Tensor,
    indices: torch.Tensor,
    smoothing: float = 0.5,
    sent: torch.Tensor | None = None,
) -> torch.Tensor:
    """Bits an entropy coder spends on one index grid, with a gradient for the encoder.

    The value is the hard indices' code length against the batch's code marginal ``p`` (hard
    counts + ``smoothing``, detached): ``sum -log2 p(index)``, what ANS spends against a prior
    close to ``p``. The gradient is that of the soft version, each latent's soft assignment
    ``q(k) = softmax(-|z - e_k|^2 / tau)`` scored as ``sum_k q(k) (-log2 p(k))`` (``tau``: the
    mean distance to the nearest codeword), a straight-through estimate: the soft value alone
    overstates the rate (a soft assignment spreads over rarer, costlier codes; by 40-70 % of
    the file on the models it was checked on, ``mmslim bench rate``), the hard one has no
    gradient.

    z: (B, D, h, w) latents; codewords: (K, D); indices: (B, h, w) int64. Returns total bits.
    sent: (B, h, w) bool, the latents whose index the encoder chose (``ModelConfig.fine_gate``
    sends the others as a fixed code): only they get the soft gradient; every index is counted.
    """
    k = codewords.shape[0]
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).float()  # (N, D)
    dist = torch.cdist(flat, codewords.float()).square()  # (N, K)
    tau = dist.detach().min(dim=1).values.mean().clamp_min(1e-6)
    q = torch.softmax(-dist / tau, dim=1)  # (N, K)
    counts = torch.bincount(indices.reshape(-1), minlength=k).float() + smoothing  # (K,)
    cost = -torch.log2(counts / counts.sum())  # (K,) bits
    hard = cost[indices.reshape(-1)].sum()
    soft = q * cost  # (N, K)
    soft = (soft if sent is None else soft[sent.reshape(-1)]).sum()
    return hard + (soft - soft.detach())


__all__ = [
    "LossContext",
    "background_level_error",
    "background_spread_error",
    "cfar_error",
    "cfar_margin_db",
    "dilate",
    "floor_error",
    "local_power_db",
    "loss_terms",
    "phase_error",
    "range_penalty",
    "soft_bits",
    "split_loss",
    "stage_loss",
    "target_error",
    "target_mask",
    "target_strength",
]
