"""Running a trained model over a dataset: reconstructions and validation metrics.

Under ``torchrun`` (several processes, :mod:`mmslim.training.distributed`) :func:`evaluate` splits
the frames between the ranks and reduces the figures: every metric is either a mean over frames
(the ranks' means weighted by their frame counts give the mean over all frames) or comes from code
counts summed over ranks, so every rank gets the same numbers, equal to one process's up to
rounding, and each rank does only its share of the work.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmslim.data.dataset import RadarFrames
from mmslim.metrics.image import psnr, ssim
from mmslim.nn.losses import stage_loss
from mmslim.nn.quantizers.vq import code_counts, perplexity
from mmslim.training.distributed import all_reduce_sum_, shard


@torch.no_grad()
def reconstruct(
    model,
    dataset: RadarFrames,
    stage: str,
    batch_size: int = 32,
    frames: Sequence[int] | None = None,
) -> dict[str, torch.Tensor]:
    """Eval-mode outputs for every frame of ``dataset`` (or only ``frames``, positions in it), on
    the CPU.

    Returns ``x`` (N, 1, H, W), ``x_hat``, ``x_hat_hi``, ``x_hat_lo``, ``mask`` (same shape),
    ``indices_hi`` (N, H/4, W/4), ``indices_lo`` (N, H/16, W/16), and ``vq_loss`` (N,)
    (each batch's VQ loss repeated over its frames).
    """
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    maps, _ = dataset.tensors(stage)  # (N, 1, H, W)
    amps, _ = dataset.tensors("amplitude")
    if frames is not None:
        keep = torch.as_tensor(list(frames), dtype=torch.int64)
        maps, amps = maps[keep], amps[keep]  # (n, 1, H, W)
    keys = ("x_hat", "x_hat_hi", "x_hat_lo", "mask", "indices_hi", "indices_lo")
    parts: dict[str, list] = {k: [] for k in (*keys, "vq_loss")}
    for i in range(0, len(maps), batch_size):
        x, src = maps[i : i + batch_size].to(dev), amps[i : i + batch_size].to(dev)
        out = model(x, mask_source=src)
        for k in keys:
            parts[k].append(out[k].float().cpu() if out[k].is_floating_point() else out[k].cpu())
        parts["vq_loss"].append(out["vq_loss"].float().cpu().expand(len(x)))
    model.train(was_training)
    result = {k: torch.cat(v) for k, v in parts.items()}
    result["x"] = maps
    return result


def evaluate(
    model, dataset: RadarFrames, stage: str, window: str = "box", batch_size: int = 32
) -> dict[str, float]:
    """Validation metrics of one stage.

    loss:            the training objective (1 - SSIM with ``window``, range penalty, VQ
                     losses; :func:`mmslim.nn.losses.stage_loss`)
    ssim, psnr:      of the clamped reconstruction (Gaussian 11x11 SSIM, data range 1; dB)
    ssim_hi/ssim_lo: each branch against its target, M*x and (1-M)*x
    perplexity_hi/lo, dead_hi/lo: code usage over the whole set (dead = share never used)
    mask_mean:       mean of the mask, the share of the map routed to the high-rate branch

    Under ``torchrun`` every rank evaluates its share of the frames and gets the figures of all.
    """
    mine = shard(len(dataset))  # this rank's frames (all of them in one process)
    # A rank with no frame (fewer frames than ranks) evaluates frame 0 with weight 0, so that
    # every rank sends the same figures to the reduction.
    r = reconstruct(model, dataset, stage, batch_size, mine if len(mine) else range(1))
    x, x_hat, m = r["x"], r["x_hat"], r["mask"]
    means = {  # each a mean over frames
        "loss": float(stage_loss(x, {"x_hat": x_hat, "vq_loss": r["vq_loss"].mean()}, window)),
        "ssim": float(ssim(x, x_hat.clamp(0, 1))),
        "psnr": float(psnr(x, x_hat.clamp(0, 1))),
        "ssim_hi": float(ssim(m * x, r["x_hat_hi"])),
        "ssim_lo": float(ssim((1 - m) * x, r["x_hat_lo"])),
        "mask_mean": float(m.mean()),
    }
    k = model.config.num_codes
    counts = {b: code_counts(r[f"indices_{b}"], k) * min(len(mine), 1) for b in ("hi", "lo")}
    return _reduce(means, len(mine), counts, next(model.parameters()).device)


def _reduce(means: dict, n: int, counts: dict, device: torch.device) -> dict[str, float]:
    """Figures of all ranks from this rank's frame means over ``n`` frames and code counts."""
    names = list(means)
    # (len(names) + 1 + 2K,) float64: exact for counts below 2^53.
    sums = torch.tensor([n * means[k] for k in names] + [n], dtype=torch.float64)
    together = torch.cat([sums, counts["hi"].double(), counts["lo"].double()]).to(device)
    all_reduce_sum_(together)
    together = together.cpu()
    total = together[len(names)]
    metrics = {k: float(together[i] / total) for i, k in enumerate(names)}
    k = counts["hi"].numel()
    for j, branch in enumerate(("hi", "lo")):
        c = together[len(names) + 1 + j * k : len(names) + 1 + (j + 1) * k]  # (K,)
        metrics[f"perplexity_{branch}"] = float(perplexity(c))
        metrics[f"dead_{branch}"] = float((c == 0).float().mean())
    return metrics
