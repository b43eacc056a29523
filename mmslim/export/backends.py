"""Backends: what runs the sender and the receiver graphs for the codec (``--backend``).

- ``"torch"``  PyTorch, in inference mode, on the model's device: the graphs of
               :mod:`mmslim.export.graphs` as the model computes them (precomputed codeword
               tables): indices and maps bit for bit those of the eval-mode model. Options
               ``fold=True, channels_last=True`` run faster at the cost of float rounding.
- ``"onnx"``   ONNX Runtime (https://onnxruntime.ai) on the CPU: the same graphs exported by
               :mod:`mmslim.export.onnx`, as a sensor board would run them.

Both take and return numpy arrays, so that :mod:`mmslim.codec.maps` drives them alike::

    backend = backend_for(model, "onnx")
    hi, lo = backend.encode(x01, mask_source01)     # (B, 1, H, W) float32 -> int64 grids
    x_hat = backend.decode(hi, lo)                   # -> (B, 1, H, W) float32

Building a backend costs a copy of the weights (and, for ONNX, an export: about a second), so
:func:`backend_for` keeps one per model and rebuilds it only when the model's weights or its
device change, or the thread count differs. The backend also holds the model's fingerprint,
hashed once at build time rather than on every call.

A file written with one backend decodes with the other: both read and write the same index
grids; their maps differ by float rounding only (about 1e-6 of the [0, 1] range).
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from mmslim.config import BACKENDS
from mmslim.data.arrays import FRAME_SHAPE
from mmslim.export.graphs import Receiver, Sender
from mmslim.export.runtime import BATCH_SIZE, Batches, OnnxGraphs


@dataclass(frozen=True)
class BackendKey:
    """What a built backend depends on: the model's tensors (identity, storage, in-place
    version), the backend's name and options, and the number of threads."""

    tensors: tuple
    name: str
    options: tuple
    threads: int


class TorchBackend(Batches):
    """The graphs under PyTorch, in inference mode, on ``model``'s device.

    Args:
        model: a trained :class:`~mmslim.nn.MMSlim` (copied, not changed).
        fold: BatchNorm folded into the convolutions (float rounding changes).
        channels_last: channels-last convolutions (float rounding changes).
        With both False (the default) the results are bit for bit the eval-mode model's.
    """

    name = "torch"

    def __init__(self, model: torch.nn.Module, fold: bool = False, channels_last: bool = False):
        self.device = next(model.parameters()).device
        self.sender = Sender(model, fold, channels_last)
        self.receiver = Receiver(model, fold, channels_last)
        self.fingerprint = model.fingerprint()
        self.batch_size = BATCH_SIZE
        self.threads = torch.get_num_threads() if self.device.type == "cpu" else 1

    @contextmanager
    def _single_threaded_kernels(self):
        threads = torch.get_num_threads()  # the caller's setting: set it back afterwards
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)

    def _in_pool(self, fn, item):
        if torch.get_num_threads() != 1:  # OpenMP's setting is per thread: say it here too
            torch.set_num_threads(1)
        return fn(item)

    @torch.inference_mode()
    def encode(
        self, x: np.ndarray, mask_source: np.ndarray, also_sent: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(B, 1, H, W) float32 maps in [0, 1] and their amplitude, and (B, H/4, W/4) bool fine
        latents to send whatever the gate says (None: none) -> (indices_hi (B, H/4, W/4),
        indices_lo (B, H/16, W/16)) int64."""
        x_t = torch.from_numpy(x).to(self.device)
        src = x_t if mask_source is x else torch.from_numpy(mask_source).to(self.device)
        b, _, h, w = x.shape
        f = self.sender.hi_downsample
        if also_sent is None:
            also = torch.zeros(b, h // f, w // f, dtype=torch.bool, device=self.device)
        else:
            also = torch.from_numpy(np.ascontiguousarray(also_sent, dtype=bool)).to(self.device)
        hi, lo = self.sender(x_t, src, also)
        return hi.cpu().numpy(), lo.cpu().numpy()

    @torch.inference_mode()
    def decode(self, indices_hi: np.ndarray, indices_lo: np.ndarray) -> np.ndarray:
        """int64 grids (B, H/4, W/4), (B, H/16, W/16) -> x_hat (B, 1, H, W) float32."""
        hi = torch.from_numpy(indices_hi).to(self.device)
        lo = torch.from_numpy(indices_lo).to(self.device)
        return self.receiver(hi, lo).cpu().numpy()


class OnnxBackend(OnnxGraphs):
    """The exported graphs under ONNX Runtime's CPU execution provider.

    Args:
        model: a trained :class:`~mmslim.nn.MMSlim` (exported, not changed).
        threads: batches run side by side; default: ``torch.get_num_threads()``.
        int8: the sender's convolutions in int8 (:func:`mmslim.export.onnx.quantize_int8`):
            dynamic, or static when ``calibration`` frames (N, 1, H, W) in [0, 1] are given;
            its indices differ from float32's (``mmslim bench speed --int8`` says by how much).
        shape: (H, W) of the frames.
    """

    name = "onnx"

    def __init__(
        self,
        model: torch.nn.Module,
        threads: int | None = None,
        int8: bool = False,
        shape: tuple[int, int] = FRAME_SHAPE,
        calibration: np.ndarray | None = None,
    ):
        from mmslim.export.graphs import fine_reach
        from mmslim.export.onnx import export_receiver, export_sender, quantize_int8

        sender = export_sender(model, shape)
        if int8:
            sender = quantize_int8(sender, calibration)
        receiver = export_receiver(model, shape)
        threads = threads or torch.get_num_threads()
        super().__init__(
            sender, receiver, model.fingerprint(), shape, threads, fine_reach(model, shape)
        )


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {key: backend}


def _tensors_key(model: torch.nn.Module) -> tuple:
    """Identity, storage and in-place version of every parameter and buffer: changes when the
    weights are trained, loaded, replaced or moved. A direct walk of the module tree (about
    0.1 ms for MMSlim; ``parameters()`` takes ten times longer)."""
    key, stack = [], [model]
    while stack:
        module = stack.pop()
        for tensors in (module._parameters, module._buffers):
            key += [(id(t), t.data_ptr(), t._version) for t in tensors.values() if t is not None]
        stack += module._modules.values()
    return tuple(key)


def backend_for(model: torch.nn.Module, name: str = "torch", **options):
    """The backend ``name`` (one of :data:`mmslim.config.BACKENDS`) for ``model``, built once
    and reused while the model's weights, device and the thread count stay the same.

    ``options`` go to the backend's constructor (e.g. ``int8=True`` for ONNX).
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {BACKENDS}")
    if name == "onnx":
        _require_onnxruntime()
        options["shape"] = tuple(options.get("shape", FRAME_SHAPE))  # one cache entry per shape
    key = BackendKey(
        _tensors_key(model), name, tuple(sorted(options.items())), torch.get_num_threads()
    )
    built = _CACHE.setdefault(model, {})
    backend = built.get((name, key.options))
    if backend is None or backend[0] != key:
        made = TorchBackend(model, **options) if name == "torch" else OnnxBackend(model, **options)
        backend = built[(name, key.options)] = (key, made)
    return backend[1]


def _require_onnxruntime() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as err:
        raise RuntimeError(
            f"backend 'onnx' needs the onnx and onnxruntime packages ({err}); install them with "
            "`pip install -e .` (they are dependencies of mmslim) or use backend='torch'"
        ) from None


__all__ = ["BATCH_SIZE", "OnnxBackend", "TorchBackend", "backend_for"]
