"""From maps in physical units to a file and back: the whole codec path around the model.

    maps (N, H, W) dB or rad ──normalise──► (N, 1, H, W) in [0, 1] + side info (N, 2) min/max
        ──MMSlim.encode──► index grids ──codec.encode_file──► bytes
    bytes ──codec.decode_file──► index grids + side info ──MMSlim.decode_indices──► [0, 1]
        ──clamp, de-normalise──► maps (N, H, W)

Also fits the entropy prior (per-branch index frequencies on the training split) into the model's
``prior`` buffers.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from mmslim.codec.container import decode_file, encode_file
from mmslim.codec.prior import IndexPrior
from mmslim.data.dataset import RadarFrames, denormalize, normalize


@torch.no_grad()
def encode_maps(model, x: torch.Tensor, mask_source: torch.Tensor | None, batch_size: int = 64):
    """Index grids of normalised maps ``x`` (N, 1, H, W): ``(indices_hi, indices_lo)`` as int64
    numpy arrays (N, H/4, W/4) and (N, H/16, W/16)."""
    model.eval()
    dev = next(model.parameters()).device
    hi, lo = [], []
    for i in range(0, len(x), batch_size):
        src = None if mask_source is None else mask_source[i : i + batch_size].to(dev)
        enc = model.encode(x[i : i + batch_size].to(dev), src)
        hi.append(enc["indices_hi"].cpu())
        lo.append(enc["indices_lo"].cpu())
    return torch.cat(hi).numpy(), torch.cat(lo).numpy()


def fit_prior(model, dataset: RadarFrames, stage: str) -> IndexPrior:
    """Refit ``model.prior`` on the index frequencies of ``model`` over ``dataset`` (the training
    split), with add-one smoothing so that codes never seen still code; returns the prior."""
    maps, _ = dataset.tensors(stage)  # (N, 1, H, W)
    amps, _ = dataset.tensors("amplitude")
    hi, lo = encode_maps(model, maps, amps)
    return model.prior.update(hi, lo)


def compress_maps(
    model,
    maps: np.ndarray,
    kind: str,
    mode: str = "ans",
    mask_source: np.ndarray | None = None,
    progress: bool = False,
) -> bytes:
    """Compress maps in physical units to one file.

    maps: (N, H, W) float, dB for ``kind="amplitude"``, radians for ``"phase"``.
    mask_source: (N, H, W) amplitude in dB that the mask is computed from; required for phase
        (a phase model's MaskNet looks at amplitude), ignored for amplitude.
    """
    if kind == "phase" and mask_source is None:
        raise ValueError("compressing phase needs the amplitude maps (mask_source) for the mask")
    x01, vmin, vmax = normalize(torch.as_tensor(np.asarray(maps, dtype=np.float32)))
    src = None
    if kind == "phase":
        src = normalize(torch.as_tensor(np.asarray(mask_source, dtype=np.float32)))[0][:, None]
    x01 = x01[:, None]  # (N, 1, H, W)
    batches = range(0, len(x01), 64)
    idx_hi, idx_lo = [], []
    for i in tqdm(batches, desc=f"compress {kind}", disable=not progress, unit="batch"):
        s = None if src is None else src[i : i + 64]
        h, l_ = encode_maps(model, x01[i : i + 64], s)
        idx_hi.append(h)
        idx_lo.append(l_)
    side = torch.stack([vmin, vmax], dim=1).numpy()  # (N, 2) float32, exact in the file
    return encode_file(
        np.concatenate(idx_hi),
        np.concatenate(idx_lo),
        side,
        model.prior_for(mode),
        model.fingerprint(),
        kind,
        mode,
        num_codes=model.config.num_codes,
    )


@torch.no_grad()
def decompress_maps(model, data: bytes, progress: bool = False):
    """Decode a file made by :func:`compress_maps` with the same model.

    Returns ``(maps, decoded)``: maps (N, H, W) float32 in physical units (the reconstruction
    clamped to [0, 1] before de-normalising, so values stay within the frame's min/max), and
    the :class:`mmslim.codec.DecodedFile` (header, index grids, side info). A file from another
    model, a damaged or a truncated file raises ``BitstreamError``.
    """
    model.eval()
    decoded = decode_file(data, model.prior, model.fingerprint())
    dev = next(model.parameters()).device
    hi = torch.from_numpy(decoded.indices_hi)
    lo = torch.from_numpy(decoded.indices_lo)
    out = []
    for i in tqdm(range(0, len(hi), 64), desc="decompress", disable=not progress, unit="batch"):
        x_hat = model.decode_indices(hi[i : i + 64].to(dev), lo[i : i + 64].to(dev))["x_hat"]
        out.append(x_hat[:, 0].clamp(0, 1).cpu())  # (b, H, W)
    side = torch.from_numpy(np.asarray(decoded.side, dtype=np.float32))  # (N, 2)
    maps = denormalize(torch.cat(out), side[:, 0], side[:, 1]) if out else torch.zeros(0)
    return maps.numpy().astype(np.float32), decoded
