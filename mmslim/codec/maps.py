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

The sender and receiver graphs run under a backend (``backend="torch"`` or ``"onnx"``,
:mod:`mmslim.export.backends`), a batch of frames at a time, after those checks: the hot path
neither validates again nor hashes the weights (the backend holds the fingerprint).

``model`` is a trained :class:`~mmslim.nn.MMSlim`, or anything that offers what this module
reads of one (``latent_shapes``, ``prior_for``, ``prior``, ``fingerprint``): the exported codec
of :mod:`mmslim.export.sensor` is one, with its ONNX graphs as the backend. Nothing here imports
PyTorch unless a torch model is used.

Also fits the entropy prior (per-branch index frequencies on the training split) into the model's
``prior`` buffers.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from mmslim.codec.container import decode_file, encode_file
from mmslim.codec.frames import BitstreamError
from mmslim.codec.header import Expected
from mmslim.codec.inputs import check_maps
from mmslim.data.arrays import FRAME_SHAPE, DataError, denormalize, normalize

if TYPE_CHECKING:  # PyTorch is imported where a torch model is used, not by the coding path
    import torch

    from mmslim.codec.prior import IndexPrior
    from mmslim.data.dataset import RadarFrames


def encode_maps(
    model,
    x: torch.Tensor,
    mask_source: torch.Tensor | None,
    batch_size: int = 64,
    also_sent: np.ndarray | None = None,
):
    """Index grids of normalised maps ``x`` (N, 1, H, W): ``(indices_hi, indices_lo)`` as int64
    numpy arrays (N, H/4, W/4) and (N, H/16, W/16). ``also_sent``: (N, H/4, W/4) bool, fine
    latents sent whatever the gate says (see :func:`compress_maps`)."""
    import torch

    model.eval()
    dev = next(model.parameters()).device
    hi, lo = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            src = None if mask_source is None else mask_source[i : i + batch_size].to(dev)
            also = None
            if also_sent is not None:
                also = torch.from_numpy(also_sent[i : i + batch_size]).to(dev)
            enc = model.encode(x[i : i + batch_size].to(dev), src, also)
            hi.append(enc["indices_hi"].cpu())
            lo.append(enc["indices_lo"].cpu())
    return torch.cat(hi).numpy(), torch.cat(lo).numpy()


def fit_prior(model, dataset: RadarFrames, stage: str) -> IndexPrior:
    """Refit ``model.prior`` on the index frequencies of ``model`` over ``dataset`` (the training
    split), with add-one smoothing so that codes never seen still code; returns the prior."""
    maps, _ = dataset.tensors(stage)  # (N, 1, H, W)
    amps, ranges = dataset.tensors("amplitude")
    also = None
    if _sends_detections(model):  # the detector needs dB: the frames' own ranges undo [0, 1]
        from mmslim.codec.detections import detected_latents

        amp_db = denormalize(amps[:, 0].numpy(), *ranges.numpy().T)  # (N, H, W)
        also = detected_latents(amp_db, model.latent_shapes(*amp_db.shape[1:])["hi"])
    hi, lo = encode_maps(model, maps, amps, also_sent=also)
    return model.prior.update(hi, lo)


def expected_of(
    model, frame_shape=FRAME_SHAPE, kind: str | None = None, fingerprint: bytes | None = None
) -> Expected:
    """What a file decoded by ``model`` must say: its fingerprint and K, ``frame_shape`` (H, W)
    and the grids the model makes for it, and ``kind`` if given. ``fingerprint``: the model's,
    if already known (a backend hashes it once), else ``model.fingerprint()``."""
    try:
        grids = model.latent_shapes(*frame_shape)
    except ValueError as err:
        raise ValueError(f"frame_shape {tuple(frame_shape)} cannot be decoded: {err}") from None
    return Expected(
        fingerprint=model.fingerprint() if fingerprint is None else fingerprint,
        num_codes=model.prior.num_codes,
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
    backend="torch",
) -> bytes:
    """Compress maps in physical units to one file.

    maps: (N, H, W) float, dB for ``kind="amplitude"``, radians for ``"phase"`` (checked by
        :func:`mmslim.codec.inputs.check_maps`; ``DataError`` names what is wrong).
    mask_source: (N, H, W) amplitude in dB that the mask is computed from; required for phase
        (a phase model's MaskNet looks at amplitude), ignored for amplitude.
    key: HMAC key (>= 16 bytes) to authenticate the file (:mod:`mmslim.codec.auth`).
    first_sequence: sequence number of the first frame (continue a stream across files).
    backend: what runs the sender graph: ``"torch"`` (bit for bit the eval-mode model) or
        ``"onnx"`` (ONNX Runtime), or a backend object (:mod:`mmslim.export.backends`,
        :class:`mmslim.export.runtime.OnnxGraphs`).

    Frames are normalised and streamed through the backend a batch at a time, so memory beyond
    the checked input and the index grids does not grow with N. A model with
    ``ModelConfig.gate_detections`` also sends the fine latents at and around CA-CFAR
    detections of the amplitude in dB (:mod:`mmslim.codec.detections`), computed here, where
    the maps are still in physical units.
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
    amp = maps
    if kind == "phase":
        amp = check_maps(mask_source, "amplitude", "mask_source (amplitude)")
        if amp.shape != maps.shape:
            raise DataError(f"amplitude maps {amp.shape} do not match the phase maps {maps.shape}")
    prior = model.prior_for(mode)  # refuses ANS with an unfitted prior before any work
    runner = _runner(model, backend, maps.shape[1:])
    n, step = len(maps), runner.batch_size
    side = np.zeros((n, 2), np.float32)  # per-frame (min, max), exact in the file
    grids = model.latent_shapes(*maps.shape[1:])
    idx_hi = np.zeros((n, *grids["hi"]), np.int32)  # (N, H/4, W/4)
    idx_lo = np.zeros((n, *grids["lo"]), np.int32)  # (N, H/16, W/16)

    detections = _sends_detections(model)
    if detections:
        from mmslim.codec.detections import detected_latents

    def encode(i: int):
        x01, vmin, vmax = _normalized(maps[i : i + step])  # (b, 1, H, W)
        src = x01 if amp is maps else _normalized(amp[i : i + step])[0]
        also = detected_latents(amp[i : i + step], grids["hi"]) if detections else None
        return (vmin, vmax), runner.encode(x01, src, also)

    starts = range(0, n, step)
    results = runner.map_batches(encode, starts, len(starts))
    bar = tqdm(starts, desc=f"compress {kind}", disable=not progress, unit="batch")
    for i, ((vmin, vmax), (hi, lo)) in zip(bar, results):
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
        num_codes=model.prior.num_codes,
        frame_shape=maps.shape[1:],
        first_sequence=first_sequence,
        key=key,
    )


def _runner(model, backend, shape: tuple[int, int]):
    """The backend object for ``backend`` (a name or a backend already built), for frames of
    ``shape`` (H, W): an ONNX graph is exported for one frame shape."""
    if not isinstance(backend, str):
        return backend
    from mmslim.export.backends import backend_for

    options = {"shape": tuple(shape)} if backend == "onnx" else {}
    return backend_for(model, backend, **options)


def _sends_detections(model) -> bool:
    """Whether the sender also sends the fine latents near CA-CFAR detections
    (``ModelConfig.gate_detections``; an exported codec says it in ``codec.json``)."""
    config = getattr(model, "config", None)
    if config is not None:
        return bool(config.gate_detections)
    return bool(getattr(model, "gate_detections", False))


def _normalized(maps: np.ndarray):
    """(b, H, W) float32 maps in physical units, already checked -> ((b, 1, H, W) float32 in
    [0, 1], min (b,), max (b,)).

    In numpy, not torch: the same IEEE float32 arithmetic (equal bit for bit), but no OpenMP
    reduction, whose threads wait for busy cores (20 ms for one frame's min and max on a loaded
    2-core machine, against 0.02 ms here)."""
    x01, vmin, vmax = normalize(np.ascontiguousarray(maps))
    return x01[:, None], vmin, vmax  # (b, 1, H, W)


def decompress_maps(
    model,
    data: bytes,
    progress: bool = False,
    *,
    kind: str | None = None,
    frame_shape: tuple[int, int] = FRAME_SHAPE,
    key: bytes | None = None,
    first_sequence: int | None = None,
    floor: str = "none",
    backend="torch",
):
    """Decode a file made by :func:`compress_maps` with the same model (with either backend).

    kind: the model's stage, if known (a file of the other kind is refused).
    frame_shape: (H, W) the receiver expects (the radar's 224 x 64 by default); a file of
        another frame shape is refused before anything is decoded.
    key: the HMAC key the file was made with (tagged files need it).
    first_sequence: the frame number the stream is at (the previous file's first sequence
        number plus its frame count), if the receiver tracks it: a file that starts elsewhere
        is refused, which reveals frames lost at the end of the previous file.
    floor: what the receiver draws for an amplitude map's noise floor (:mod:`mmslim.codec.
        floor`): ``"none"`` (the decoder's output), ``"smooth"`` (its local median: no invented
        peaks for CFAR to report; for models trained without the floor term, whose decoders
        invent texture) or ``"noise"`` (smooth plus seeded noise texture). Phase maps are
        returned as decoded.
    backend: what runs the receiver graph, as for :func:`compress_maps`.

    Returns ``(maps, decoded)``: maps (N, H, W) float32 in physical units (the reconstruction
    clamped to [0, 1] before de-normalising, so values stay within the frame's min/max), and
    the :class:`mmslim.codec.DecodedFile` (header, index grids, side info). Any bad file (from
    another model, damaged, truncated, edited, of another frame shape) raises
    ``BitstreamError``. Memory: the output, plus a few batches of the model's activations.
    """
    runner = _runner(model, backend, frame_shape)
    expected = dataclasses.replace(
        expected_of(model, frame_shape, kind, runner.fingerprint), first_sequence=first_sequence
    )
    decoded = decode_file(data, model.prior, expected.fingerprint, expected, key)
    hi, lo = decoded.indices_hi, decoded.indices_lo
    side = np.asarray(decoded.side, dtype=np.float32)  # (N, 2)
    n, (height, width), step = len(hi), expected.frame_shape, runner.batch_size
    out = np.empty((n, height, width), np.float32)  # (N, H, W): the one allocation the header sizes
    order = runner.order(hi)  # frames grouped as the backend decodes them fastest
    batches = [order[i : i + step] for i in range(0, n, step)]
    results = runner.map_batches(lambda b: runner.decode(hi[b], lo[b]), batches, len(batches))
    bar = tqdm(batches, desc="decompress", disable=not progress, unit="batch")
    for b, x_hat in zip(bar, results):
        if x_hat.shape[-2:] != (height, width):  # a model whose grids do not invert its shapes
            raise BitstreamError(f"model decodes to {tuple(x_hat.shape[-2:])}", "frame_shape")
        x01 = np.clip(x_hat[:, 0], 0, 1)  # (b, H, W)
        out[b] = denormalize(x01, side[b, 0], side[b, 1])
    if decoded.header.kind == "amplitude" and floor != "none":
        from mmslim.codec.floor import restore_floor, seed_of

        out = restore_floor(out, floor, seed_of(data))
        vmin, vmax = side[:, 0, None, None], side[:, 1, None, None]  # (N, 1, 1) each
        np.clip(out, vmin, vmax, out=out)  # noise filling stays in the frame's range
    return out, decoded
