"""Which coarse codes a sender keeps (``ModelConfig.coarse_codes``).

Why. The coarse branch draws what MaskNet leaves to it: the floor's level and its slow changes
across range and Doppler. Trained with 512 codes, its encoder spreads the 56 latents of a frame
over nearly all of them (about 7.7 bits a latent under the entropy prior), yet the floor's level
needs far fewer: on the shipped amplitude model, 8 codes keep CFAR F1 and the target error as
they were and the mean dB error within 0.1 dB, and the coarse grid's bits fall from about a third
of the file to about a seventh (``mmslim bench rd``, notebook 07 section 8). Like the fine gate,
this is a rule of the sender: the weights and the receiver are unchanged, and the prior is refit.

How. The coarse latents of the training frames (before quantization) are clustered with k-means
(``count`` clusters, Lloyd's iteration from a seeded draw of latents); each cluster keeps the
codeword nearest its centre. Clusters that share a codeword are topped up with the most used
codes of the full search, so ``count`` codes are kept.
"""

from __future__ import annotations

import torch

from mmslim.data.dataset import RadarFrames


def coarse_latents(model, dataset: RadarFrames, stage: str, batch_size: int = 64) -> torch.Tensor:
    """The coarse branch's latents before quantization of every frame of ``dataset``, as rows
    (N * h * w, D); the mask comes from the amplitude, as the sender computes it."""
    maps, _ = dataset.tensors(stage)  # (N, 1, H, W) in [0, 1]
    amps, _ = dataset.tensors("amplitude")
    model.eval()
    dev = next(model.parameters()).device
    rows = []
    with torch.no_grad():
        for i in range(0, len(maps), batch_size):
            _, _, x_lo = model.split(
                maps[i : i + batch_size].to(dev), amps[i : i + batch_size].to(dev)
            )
            z = model.lo.latents(x_lo)  # (B, D, h, w)
            rows.append(z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).cpu())
    return torch.cat(rows)


def choose_coarse_codes(
    model, dataset: RadarFrames, stage: str, count: int, iterations: int = 30, seed: int = 0
) -> tuple[int, ...]:
    """``count`` coarse codes (ascending) for a sender: the codewords nearest the k-means centres
    of the coarse latents of ``dataset`` (the training split), topped up with the most used."""
    codes = model.lo.quantizer.codes().detach().cpu().float()  # (K, D)
    if not 1 <= count <= len(codes):
        raise ValueError(f"count = {count}; keep between 1 and {len(codes)} coarse codes")
    z = coarse_latents(model, dataset, stage).float()  # (M, D)
    if len(z) == 0:
        raise ValueError("no frames to choose coarse codes on")
    g = torch.Generator().manual_seed(seed)
    centres = z[torch.randperm(len(z), generator=g)[: min(count, len(z))]].clone()  # (k, D)
    for _ in range(iterations):
        nearest = torch.cdist(z, centres).argmin(dim=1)  # (M,)
        for j in range(len(centres)):
            members = z[nearest == j]
            if len(members):
                centres[j] = members.mean(dim=0)
    kept = set(torch.cdist(centres, codes).argmin(dim=1).tolist())
    usage = torch.bincount(torch.cdist(z, codes).argmin(dim=1), minlength=len(codes))
    for code in torch.argsort(usage, descending=True, stable=True).tolist():
        if len(kept) >= count:
            break
        kept.add(code)
    return tuple(sorted(kept))


__all__ = ["choose_coarse_codes", "coarse_latents"]
