"""From maps in physical units to a file and back: the whole codec path around the model.

    maps (N, H, W) dB or rad ──normalise──► (N, 1, H, W) in [0, 1] + side info (N, 2) min/max
        ──MMSlim.encode──► index grids ──codec.encode_file──► bytes
    bytes ──codec.decode_file──► index grids + side info ──MMSlim.decode_indices──► [0, 1]
        ──clamp, de-normalise──► maps (N, H, W)

Both ends are checked before any work: maps going in by :func:`mmslim.codec.inputs.check_maps`
(constant frames, zero frames, complex or integer dtypes, values outside a plausible range are
refused with the fix), files coming out against what the model knows (:func:`expected_of`: its
fingerprint, K, the frame shape and the grids it makes for it, the kind) so that a file cannot
make the decoder allocate more than the frames it claims, at the model's size.

Also fits the entropy prior (per-branch index frequencies on the training split) into the model's
``prior`` buffers.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from tqdm.auto import tqdm

from mmslim.codec.container import decode_file, encode_file
from mmslim.codec.floor import restore_floor, seed_of
from mmslim.codec.frames import BitstreamError
from mmslim.codec.header import Expected
from mmslim.codec.inputs import check_maps
from mmslim.codec.prior import IndexPrior
from mmslim.data.dataset import FRAME_SHAPE, DataError, RadarFrames, normalize

DECODE_BATCH = 16  # frames through the model's decoders at once: bounds activation memory


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


def expected_of(model, frame_shape=FRAME_SHAPE, kind: str | None = None) -> Expected:
    """What a file decoded by ``model`` must say: its fingerprint and K, ``frame_shape`` (H, W)
    and the grids the model makes for it, and ``kind`` if given."""
    try:
        grids = model.latent_shapes(*frame_shape)
    except ValueError as err:
        raise ValueError(f"frame_shape {tuple(frame_shape)} cannot be decoded: {err}") from None
    return Expected(
        fingerprint=model.fingerprint(),
        num_codes=model.config.num_codes,
        kind=kind,
        frame_shape=tuple(frame_shape),
        shape_hi=grids["hi"],
        shape_lo=grids["lo"],
    )


def compress_maps(
    model,
    maps: np.ndarray,
    kind: str,
    mode: str = "ans",
    mask_source: np.ndarray | None = None,
    progress: bool = False,
    *,
    key: bytes | None = None,
    first_sequence: int = 0,
) -> bytes:
    """Compress maps in physical units to one file.

    maps: (N, H, W) float, dB for ``kind="amplitude"``, radians for ``"phase"`` (checked by
        :func:`mmslim.codec.inputs.check_maps`; ``DataError`` names what is wrong).
    mask_source: (N, H, W) amplitude in dB that the mask is computed from; required for phase
        (a phase model's MaskNet looks at amplitude), ignored for amplitude.
    key: HMAC key (>= 16 bytes) to authenticate the file (:mod:`mmslim.codec.auth`).
    first_sequence: sequence number of the first frame (continue a stream across files).
    """
    if kind == "phase" and mask_source is None:
        raise ValueError("compressing phase needs the amplitude maps (mask_source) for the mask")
    maps = check_maps(maps, kind)  # (N, H, W) float32
    try:
        model.latent_shapes(*maps.shape[1:])
    except ValueError as err:
        raise DataError(
            f"frames of {maps.shape[1]} x {maps.shape[2]}: {err}; crop or pad them"
        ) from None
    x01, vmin, vmax = normalize(torch.as_tensor(maps))
    src = None
    if kind == "phase":
        amp = check_maps(mask_source, "amplitude", "mask_source (amplitude)")
        if amp.shape != maps.shape:
            raise DataError(f"amplitude maps {amp.shape} do not match the phase maps {maps.shape}")
        src = normalize(torch.as_tensor(amp))[0][:, None]  # (N, 1, H, W)
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
        frame_shape=maps.shape[1:],
        first_sequence=first_sequence,
        key=key,
    )


@torch.no_grad()
def decompress_maps(
    model,
    data: bytes,
    progress: bool = False,
    *,
    kind: str | None = None,
    frame_shape: tuple[int, int] = FRAME_SHAPE,
    key: bytes | None = None,
    first_sequence: int | None = None,
    floor: str = "smooth",
):
    """Decode a file made by :func:`compress_maps` with the same model.

    kind: the model's stage, if known (a file of the other kind is refused).
    frame_shape: (H, W) the receiver expects (the radar's 224 x 64 by default); a file of
        another frame shape is refused before anything is decoded.
    key: the HMAC key the file was made with (tagged files need it).
    first_sequence: the frame number the stream is at (the previous file's first sequence
        number plus its frame count), if the receiver tracks it: a file that starts elsewhere
        is refused, which reveals frames lost at the end of the previous file.
    floor: what the receiver draws for an amplitude map's noise floor (:mod:`mmslim.codec.
        floor`): ``"smooth"`` (its local median: no invented peaks for CFAR to report),
        ``"noise"`` (smooth plus seeded noise texture) or ``"none"`` (the decoder's output).
        Phase maps are returned as decoded.

    Returns ``(maps, decoded)``: maps (N, H, W) float32 in physical units (the reconstruction
    clamped to [0, 1] before de-normalising, so values stay within the frame's min/max), and
    the :class:`mmslim.codec.DecodedFile` (header, index grids, side info). Any bad file (from
    another model, damaged, truncated, edited, of another frame shape) raises
    ``BitstreamError``. Memory: the output, plus one batch of the model's activations.
    """
    model.eval()
    expected = dataclasses.replace(
        expected_of(model, frame_shape, kind), first_sequence=first_sequence
    )
    decoded = decode_file(data, model.prior, expected.fingerprint, expected, key)
    dev = next(model.parameters()).device
    hi = torch.from_numpy(decoded.indices_hi)
    lo = torch.from_numpy(decoded.indices_lo)
    n, (height, width) = len(hi), expected.frame_shape
    out = torch.empty(n, height, width)  # (N, H, W): the one allocation the header sizes
    for i in tqdm(range(0, n, DECODE_BATCH), desc="decompress", disable=not progress, unit="batch"):
        batch = slice(i, i + DECODE_BATCH)
        x_hat = model.decode_indices(hi[batch].to(dev), lo[batch].to(dev))["x_hat"]
        if x_hat.shape[-2:] != (height, width):  # a model whose grids do not invert its shapes
            raise BitstreamError(f"model decodes to {tuple(x_hat.shape[-2:])}", "frame_shape")
        out[batch] = x_hat[:, 0].clamp(0, 1).cpu()  # (b, H, W)
    side = torch.from_numpy(np.asarray(decoded.side, dtype=np.float32))  # (N, 2)
    lo, hi = side[:, 0, None, None], side[:, 1, None, None]  # (N, 1, 1) each
    out.mul_(hi - lo).add_(lo)  # denormalize() in place: the output is not copied
    maps = out.numpy()
    if decoded.header.kind == "amplitude" and floor != "none":
        maps = restore_floor(maps, floor, seed_of(data))
        np.clip(maps, lo.numpy(), hi.numpy(), out=maps)  # noise filling stays in the frame's range
    return maps, decoded
