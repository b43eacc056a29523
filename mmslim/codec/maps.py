"""From maps in physical units to a file and back: the whole codec path around the model.

    maps (N, H, W) dB or rad ──normalise──► (N, 1, H, W) in [0, 1] + side info (N, 2) min/max
        ──MMSlim.encode──► index grids ──codec.encode_file──► bytes
    bytes ──codec.decode_file──► index grids + side info ──MMSlim.decode_indices──► [0, 1]
        ──clamp, de-normalise──► maps (N, H, W)

The sender and receiver graphs run under a backend (``backend="torch"`` or ``"onnx"``,
:mod:`mmslim.export.backends`), a batch of frames at a time.

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
from mmslim.export.backends import backend_for
from mmslim.nn.model import check_frames


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
    backend: str = "torch",
) -> bytes:
    """Compress maps in physical units to one file.

    maps: (N, H, W) float, dB for ``kind="amplitude"``, radians for ``"phase"``.
    mask_source: (N, H, W) amplitude in dB that the mask is computed from; required for phase
        (a phase model's MaskNet looks at amplitude), ignored for amplitude.
    backend: what runs the sender graph: ``"torch"`` (bit for bit the eval-mode model) or
        ``"onnx"`` (ONNX Runtime), or a backend object of :mod:`mmslim.export.backends`.

    Frames are streamed through the backend a batch at a time, so memory beyond the input and
    the index grids does not grow with N.
    """
    if kind == "phase" and mask_source is None:
        raise ValueError("compressing phase needs the amplitude maps (mask_source) for the mask")
    if len(maps) == 0:
        raise ValueError("no frames to compress: expected maps of shape (N, H, W) with N >= 1")
    prior = model.prior_for(mode)  # refuses ANS with an unfitted prior before any work
    runner = backend_for(model, backend) if isinstance(backend, str) else backend
    n, step = len(maps), runner.batch_size
    side = np.zeros((n, 2), np.float32)  # per-frame (min, max), exact in the file
    idx_hi = idx_lo = None  # (N, H/4, W/4), (N, H/16, W/16) int16 (K <= 2**15), filled below

    def encode(i: int):
        x01, vmin, vmax = _normalized(maps[i : i + step], "x")  # (b, 1, H, W)
        src = x01 if kind != "phase" else _normalized(mask_source[i : i + step], "mask_source")[0]
        return (vmin, vmax), runner.encode(x01, src)

    starts = range(0, n, step)
    results = runner.map_batches(encode, starts, len(starts))
    bar = tqdm(starts, desc=f"compress {kind}", disable=not progress, unit="batch")
    for i, ((vmin, vmax), (hi, lo)) in zip(bar, results):
        if idx_hi is None:
            idx_hi = np.zeros((n, *hi.shape[1:]), np.int16)
            idx_lo = np.zeros((n, *lo.shape[1:]), np.int16)
        idx_hi[i : i + step], idx_lo[i : i + step] = hi, lo
        side[i : i + step, 0], side[i : i + step, 1] = vmin, vmax
    return encode_file(
        idx_hi,
        idx_lo,
        side,
        prior,
        runner.fingerprint,
        kind,
        mode,
        num_codes=model.config.num_codes,
    )


def _normalized(maps, name: str):
    """(b, H, W) maps in physical units -> ((b, 1, H, W) float32 in [0, 1], min (b,), max (b,)),
    checked as the model checks its input (finite, (B, 1, H, W), H and W divisible by 16)."""
    x01, vmin, vmax = normalize(torch.as_tensor(np.asarray(maps, dtype=np.float32)))
    x01 = x01[:, None]  # (b, 1, H, W)
    check_frames(x01, name)
    return x01.numpy(), vmin.numpy(), vmax.numpy()


def decompress_maps(model, data: bytes, progress: bool = False, backend: str = "torch"):
    """Decode a file made by :func:`compress_maps` with the same model (with either backend).

    Returns ``(maps, decoded)``: maps (N, H, W) float32 in physical units (the reconstruction
    clamped to [0, 1] before de-normalising, so values stay within the frame's min/max), and
    the :class:`mmslim.codec.DecodedFile` (header, index grids, side info). A file from another
    model, a damaged or a truncated file raises ``BitstreamError``.
    backend: what runs the receiver graph, as for :func:`compress_maps`.
    """
    runner = backend_for(model, backend) if isinstance(backend, str) else backend
    decoded = decode_file(data, model.prior, runner.fingerprint)
    hi, lo = decoded.indices_hi, decoded.indices_lo
    side = np.asarray(decoded.side, dtype=np.float32)  # (N, 2)
    n, step = len(hi), runner.batch_size
    height, width = 4 * hi.shape[1], 4 * hi.shape[2]  # the fine grid is H/4 x W/4
    maps = np.zeros((n, height, width), np.float32) if n else np.zeros(0, np.float32)
    starts = range(0, n, step)
    results = runner.map_batches(
        lambda i: runner.decode(hi[i : i + step], lo[i : i + step]), starts, len(starts)
    )
    bar = tqdm(starts, desc="decompress", disable=not progress, unit="batch")
    for i, x_hat in zip(bar, results):
        x01 = np.clip(x_hat[:, 0], 0, 1)  # (b, H, W)
        maps[i : i + step] = denormalize(x01, side[i : i + step, 0], side[i : i + step, 1])
    return maps, decoded
