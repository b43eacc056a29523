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

from mmslim.config import TrainConfig
from mmslim.data.dataset import RadarFrames
from mmslim.metrics.image import psnr, ssim
from mmslim.nn.losses import LossContext, loss_terms, target_mask
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
    model,
    dataset: RadarFrames,
    stage: str,
    config: TrainConfig | str = "box",
    batch_size: int = 32,
) -> dict[str, float]:
    """Validation metrics of one stage.

    loss:            the training objective of ``config`` (a TrainConfig, or the SSIM window of
                     the paper's objective; :func:`mmslim.nn.losses.loss_terms`), and each of its
                     terms as ``term_<name>``
    ssim, psnr:      of the clamped reconstruction (Gaussian 11x11 SSIM, data range 1; dB)
    ssim_hi/ssim_lo: each branch against its target, M*x and (1-M)*x
    perplexity_hi/lo, dead_hi/lo: code usage over the whole set (dead = share never used)
    mask_mean:       mean of the mask, the share of the map routed to the high-rate branch
    mask_target, mask_background: mean mask on target cells (within ``target_db`` of the peak)
                     and on the rest: a mask that splits has the first near 1, the second near 0
    target_error:    mean |error| on target cells, in dB (amplitude) or radians (phase)

    Under ``torchrun`` every rank evaluates its share of the frames and gets the figures of all:
    the means over frames weighted by the ranks' frames, the means over cells (mask_target,
    mask_background, target_error) by their cells, so that they equal one process's.
    """
    if isinstance(config, str):
        config = TrainConfig(ssim_window=config, objective="ssim")
    mine = shard(len(dataset))  # this rank's frames (all of them in one process)
    # A rank with no frame (fewer frames than ranks) evaluates frame 0 with weight 0, so that
    # every rank sends the same figures to the reduction.
    frames = mine if len(mine) else range(1)
    r = reconstruct(model, dataset, stage, batch_size, frames)
    x, x_hat, m = r["x"], r["x_hat"], r["mask"]
    keep = torch.as_tensor(list(frames), dtype=torch.int64)
    amps, amp_range = (t[keep] for t in dataset.tensors("amplitude"))
    x_range = dataset.tensors(stage)[1][keep]  # (n, 2)
    context = LossContext(amps, amp_range, x_range, stage)
    terms = loss_terms(x, {"x_hat": x_hat, "vq_loss": r["vq_loss"].mean()}, config, context)
    targets = target_mask(amps, amp_range, config.target_db).bool()  # (n, 1, H, W)
    span = (x_range[:, 1] - x_range[:, 0]).view(-1, 1, 1, 1)
    err = (x_hat.clamp(0, 1) - x) * span  # physical units
    if stage == "phase":
        err = torch.remainder(err + torch.pi, 2 * torch.pi) - torch.pi  # circular
    means = {  # each a mean over frames
        "loss": float(terms.pop("loss")),
        **{f"term_{k}": float(v) for k, v in terms.items()},
        "ssim": float(ssim(x, x_hat.clamp(0, 1))),
        "psnr": float(psnr(x, x_hat.clamp(0, 1))),
        "ssim_hi": float(ssim(m * x, r["x_hat_hi"])),
        "ssim_lo": float(ssim((1 - m) * x, r["x_hat_lo"])),
        "mask_mean": float(m.mean()),
    }
    own = min(len(mine), 1)  # 0 for a rank whose stand-in frame must count for nothing
    cells = {  # means over cells, not frames: ranks send (sum, number of cells)
        "mask_target": m[targets],
        "mask_background": m[~targets],
        "target_error": err[targets].abs(),  # 0 when no cell is a target
    }
    cell_sums = {
        name: (own * float(v.double().sum()), own * v.numel()) for name, v in cells.items()
    }
    k = model.config.num_codes
    counts = {b: code_counts(r[f"indices_{b}"], k) * own for b in ("hi", "lo")}
    return _reduce(means, len(mine), cell_sums, counts, next(model.parameters()).device)


def _reduce(
    means: dict, n: int, cell_sums: dict, counts: dict, device: torch.device
) -> dict[str, float]:
    """Figures of all ranks from this rank's frame means over ``n`` frames, its (sum, number of
    cells) of the per-cell figures, and its code counts."""
    names, cell_names = list(means), list(cell_sums)
    # (len(names) + 1 + 2 len(cell_names) + 2K,) float64: exact for counts below 2^53.
    sums = [n * means[k] for k in names] + [n] + [x for k in cell_names for x in cell_sums[k]]
    together = torch.cat([torch.tensor(sums, dtype=torch.float64), counts["hi"].double(),
                          counts["lo"].double()]).to(device)  # fmt: skip
    all_reduce_sum_(together)
    together = together.cpu()
    total = together[len(names)]
    metrics = {k: float(together[i] / total) for i, k in enumerate(names)}
    start = len(names) + 1
    for i, name in enumerate(cell_names):
        cell_sum, cells = together[start + 2 * i], together[start + 2 * i + 1]
        metrics[name] = float(cell_sum / cells) if cells else 0.0
    k, start = counts["hi"].numel(), start + 2 * len(cell_names)
    for j, branch in enumerate(("hi", "lo")):
        c = together[start + j * k : start + (j + 1) * k]  # (K,)
        metrics[f"perplexity_{branch}"] = float(perplexity(c))
        metrics[f"dead_{branch}"] = float((c == 0).float().mean())
    return metrics
