"""Running a trained model over a dataset: reconstructions and validation metrics."""

from __future__ import annotations

import torch

from mmslim.config import TrainConfig
from mmslim.data.dataset import RadarFrames
from mmslim.metrics.image import psnr, ssim
from mmslim.nn.losses import LossContext, loss_terms, target_mask
from mmslim.nn.quantizers.vq import code_counts, perplexity


@torch.no_grad()
def reconstruct(
    model, dataset: RadarFrames, stage: str, batch_size: int = 32
) -> dict[str, torch.Tensor]:
    """Eval-mode outputs for every frame of ``dataset``, on the CPU.

    Returns ``x`` (N, 1, H, W), ``x_hat``, ``x_hat_hi``, ``x_hat_lo``, ``mask`` (same shape),
    ``indices_hi`` (N, H/4, W/4), ``indices_lo`` (N, H/16, W/16), and ``vq_loss`` (N,)
    (each batch's VQ loss repeated over its frames).
    """
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    maps, _ = dataset.tensors(stage)  # (N, 1, H, W)
    amps, _ = dataset.tensors("amplitude")
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
    target_db_error: mean |dB error| (amplitude) or mean |rad error| (phase) on target cells
    """
    if isinstance(config, str):
        config = TrainConfig(ssim_window=config, objective="ssim")
    r = reconstruct(model, dataset, stage, batch_size)
    x, x_hat, m = r["x"], r["x_hat"], r["mask"]
    amps, amp_range = dataset.tensors("amplitude")
    _, x_range = dataset.tensors(stage)
    context = LossContext(amps, amp_range, x_range, stage)
    terms = loss_terms(x, {"x_hat": x_hat, "vq_loss": r["vq_loss"].mean()}, config, context)
    targets = target_mask(amps, amp_range, config.target_db).bool()  # (N, 1, H, W)
    span = (x_range[:, 1] - x_range[:, 0]).view(-1, 1, 1, 1)
    err = (x_hat.clamp(0, 1) - x) * span  # physical units
    if stage == "phase":
        err = torch.remainder(err + torch.pi, 2 * torch.pi) - torch.pi  # circular
    metrics = {
        "loss": float(terms.pop("loss")),
        **{f"term_{k}": float(v) for k, v in terms.items()},
        "ssim": float(ssim(x, x_hat.clamp(0, 1))),
        "psnr": float(psnr(x, x_hat.clamp(0, 1))),
        "ssim_hi": float(ssim(m * x, r["x_hat_hi"])),
        "ssim_lo": float(ssim((1 - m) * x, r["x_hat_lo"])),
        "mask_mean": float(m.mean()),
        "mask_target": float(m[targets].mean()),
        "mask_background": float(m[~targets].mean()),
        "target_error": float(err[targets].abs().mean()),
    }
    for branch in ("hi", "lo"):
        counts = code_counts(r[f"indices_{branch}"], model.config.num_codes)
        metrics[f"perplexity_{branch}"] = float(perplexity(counts))
        metrics[f"dead_{branch}"] = float((counts == 0).float().mean())
    return metrics
