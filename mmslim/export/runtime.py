"""The exported graphs under ONNX Runtime, with numpy only: no PyTorch in this module.

:class:`OnnxGraphs` runs a sender and a receiver graph (the bytes of :mod:`mmslim.export.onnx`)
a batch at a time; :class:`mmslim.export.backends.OnnxBackend` builds one from a model, and
:class:`mmslim.export.sensor.ExportedCodec` from an exported folder, on a machine that may have
no PyTorch at all. Batches are spread over the cores as :class:`Batches` says.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

BATCH_SIZE = 8  # frames per graph call: small, so memory stays flat (4 to 16 ran alike)
CODEC_FILE = "codec.json"  # an exported folder's description beside its two graphs


class Batches:
    """How a backend spreads batches of frames over the cores: side by side, one batch per
    core, each with single-threaded kernels.

    Kernels split over threads end every operator in a barrier; on a busy machine that turns
    into waiting for the slowest thread (measured: one warm frame took 100 ms with 2-thread
    kernels on a loaded 2-core machine, 12 ms with one). Whole batches per core need no
    barrier, and a lone batch (one frame from a sensor) runs on the calling thread.
    """

    threads: int = 1  # batches side by side
    _pool: ThreadPoolExecutor | None = None

    def map_batches(self, fn, items: Iterable, count: int) -> Iterator:
        """``fn(item)`` for each of the ``count`` items, results in order, ``threads`` at a
        time. At most two batches per thread are in flight, so memory stays bounded however
        many frames there are."""
        with self._single_threaded_kernels():
            if self.threads <= 1 or count < 2:
                yield from map(fn, items)
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="mmslim")
            pending: deque = deque()
            for item in items:
                pending.append(self._pool.submit(self._in_pool, fn, item))
                if len(pending) >= 2 * self.threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

    @contextmanager
    def _single_threaded_kernels(self):
        """Single-threaded kernels on the calling thread while batches run."""
        yield

    def _in_pool(self, fn, item):
        """``fn(item)`` on a pool thread, its kernels single-threaded."""
        return fn(item)


class OnnxGraphs(Batches):
    """A sender and a receiver graph under ONNX Runtime's CPU execution provider.

    Args:
        sender, receiver: the ONNX bytes of :mod:`mmslim.export.onnx`.
        fingerprint: the 8 bytes of the model they were exported from (written into files).
        shape: (H, W) of the frames they were exported for.
        threads: batches run side by side, each on single-threaded kernels.
    """

    name = "onnx"

    def __init__(
        self, sender: bytes, receiver: bytes, fingerprint: bytes, shape: tuple[int, int],
        threads: int = 1,
    ):  # fmt: skip
        self.sender = _session(sender)  # single-threaded kernels, shared by the batch threads
        self.receiver = _session(receiver)
        self.fingerprint = bytes(fingerprint)
        self.shape = tuple(shape)
        self.threads = threads
        self.batch_size = BATCH_SIZE

    def encode(self, x: np.ndarray, mask_source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, 1, H, W) float32 maps in [0, 1] and their amplitude -> (indices_hi (B, H/4,
        W/4), indices_lo (B, H/16, W/16)) int64."""
        if tuple(x.shape[-2:]) != self.shape:
            raise ValueError(
                f"this ONNX sender was exported for {self.shape[0]} x {self.shape[1]} frames, "
                f"got {x.shape[-2]} x {x.shape[-1]}: use backend='torch' or export for that size"
            )
        hi, lo = self.sender.run(None, {"x": x, "mask_source": mask_source})
        return hi, lo

    def decode(self, indices_hi: np.ndarray, indices_lo: np.ndarray) -> np.ndarray:
        """int64 grids (B, H/4, W/4), (B, H/16, W/16) -> x_hat (B, 1, H, W) float32."""
        feeds = {"indices_hi": indices_hi.astype(np.int64, copy=False),
                 "indices_lo": indices_lo.astype(np.int64, copy=False)}  # fmt: skip
        return self.receiver.run(None, feeds)[0]


def _session(onnx_bytes: bytes, threads: int = 1):
    """An ONNX Runtime CPU session of ``onnx_bytes`` with ``threads`` intra-op threads and all
    graph optimisations (constant folding, Conv+activation fusion, blocked NCHWc layouts).
    Several threads may call ``run`` on it at once."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


__all__ = ["BATCH_SIZE", "CODEC_FILE", "Batches", "OnnxGraphs"]
