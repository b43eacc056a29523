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
# codec.json's layout: 2 added "format", "fine_reach" and "gate_detections"; a folder without
# "format" is 1 (those two absent, or written before the field existed, are read as such).
CODEC_FORMAT = 2


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

    def order(self, indices_hi: np.ndarray) -> np.ndarray:
        """The order in which to decode a file's frames (indices into them): as they come."""
        return np.arange(len(indices_hi))

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
        reach: the fine decoder's reach in latent rows (:func:`mmslim.export.graphs.
            fine_reach`); None decodes every fine grid whole.

    The receiver decodes only a band of each fine grid. Most fine latents hold code 0 (with
    the fine gate, about nine in ten: nothing is sent there), and a map row whose latents within
    ``reach`` rows are all 0 is the same row of the all-zero grid's map, computed once. So each
    frame's fine grid is cut to the rows with other codes plus ``2 * reach`` rows either side,
    the cuts of one batch to one height (frames are decoded in order of that height, see
    :meth:`order`), and the rows the cut decodes exactly are pasted over the all-zero map. The
    result equals decoding the whole grid up to float rounding (the same arithmetic on a
    smaller input: equal bit for bit in the tests); the fine decoder runs about 1.8 times
    faster on the sample's held-out frames.
    """

    name = "onnx"

    def __init__(
        self, sender: bytes, receiver: bytes, fingerprint: bytes, shape: tuple[int, int],
        threads: int = 1, reach: int | None = None,
    ):  # fmt: skip
        self.sender = _session(sender)  # single-threaded kernels, shared by the batch threads
        self.receiver = _session(receiver)
        self.fingerprint = bytes(fingerprint)
        self.shape = tuple(shape)
        self.threads = threads
        self.batch_size = BATCH_SIZE
        # A sender graph of a model without the fine gate has no use for ``also_sent`` (the
        # exporter drops the input); graphs exported before it existed lack it too.
        inputs = {i.name: i.shape for i in self.sender.get_inputs()}
        self.sender_grid = tuple(inputs["also_sent"][1:]) if "also_sent" in inputs else None
        # Graphs exported before the receiver returned the branches apart give one output, the
        # sum, of whole grids only.
        self.split = len(self.receiver.get_outputs()) == 2
        self.reach = reach if self.split else None
        if self.reach is not None:
            self.fine_rows, self.background = self._all_zero_map()

    def _all_zero_map(self) -> tuple[int, np.ndarray]:
        """(rows of the fine grid, the fine map of an all-zero grid (1, H, W))."""
        cols = self.receiver.get_inputs()[0].shape[2]
        lo = np.zeros([1, *self.receiver.get_inputs()[1].shape[1:]], np.int64)
        one_row = self.receiver.run(None, {"indices_hi": np.zeros((1, 1, cols), np.int64),
                                           "indices_lo": lo})[0]  # fmt: skip
        rows = self.shape[0] // one_row.shape[2]  # latent rows: H over map rows per latent row
        zero = np.zeros((1, rows, cols), np.int64)
        return rows, self.receiver.run(None, {"indices_hi": zero, "indices_lo": lo})[0][0]

    def order(self, indices_hi: np.ndarray) -> np.ndarray:
        """Frames in order of the height of their band of fine rows, so that a batch's cuts
        are alike and little is decoded for nothing."""
        if self.reach is None:
            return super().order(indices_hi)
        first, last = _rows_in_use(indices_hi)
        return np.argsort(last - first, kind="stable")

    def encode(
        self, x: np.ndarray, mask_source: np.ndarray, also_sent: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(B, 1, H, W) float32 maps in [0, 1] and their amplitude, and (B, H/4, W/4) bool fine
        latents to send whatever the gate says (None: none) -> (indices_hi (B, H/4, W/4),
        indices_lo (B, H/16, W/16)) int64."""
        if tuple(x.shape[-2:]) != self.shape:
            raise ValueError(
                f"this ONNX sender was exported for {self.shape[0]} x {self.shape[1]} frames, "
                f"got {x.shape[-2]} x {x.shape[-1]}: use backend='torch' or export for that size"
            )
        feeds = {"x": x, "mask_source": mask_source}
        if self.sender_grid is not None:  # (H/4, W/4): the graph takes ``also_sent``
            if also_sent is None:
                also_sent = np.zeros((len(x), *self.sender_grid), bool)
            feeds["also_sent"] = np.ascontiguousarray(also_sent, dtype=bool)
        hi, lo = self.sender.run(None, feeds)
        return hi, lo

    def decode(self, indices_hi: np.ndarray, indices_lo: np.ndarray) -> np.ndarray:
        """int64 grids (B, H/4, W/4), (B, H/16, W/16) -> x_hat (B, 1, H, W) float32."""
        hi = indices_hi.astype(np.int64, copy=False)
        lo = indices_lo.astype(np.int64, copy=False)
        if not self.split:
            return self.receiver.run(None, {"indices_hi": hi, "indices_lo": lo})[0]
        if self.reach is None:
            x_hi, x_lo = self.receiver.run(None, {"indices_hi": hi, "indices_lo": lo})
            return x_hi + x_lo
        starts, height = _cuts(hi, self.reach)
        cuts = np.stack([grid[a : a + height] for grid, a in zip(hi, starts)])  # (B, h, w)
        x_hi, x_lo = self.receiver.run(None, {"indices_hi": cuts, "indices_lo": lo})
        x_hat = np.repeat(self.background[None], len(hi), axis=0)  # (B, 1, H, W)
        f, n, r = self.shape[0] // self.fine_rows, self.fine_rows, self.reach
        for k in np.flatnonzero((hi != 0).any(axis=(1, 2))):
            a = int(starts[k])
            v0 = a + r if a > 0 else 0  # latent rows the cut decodes exactly: [v0, v1)
            v1 = a + height - r if a + height < n else n
            x_hat[k, :, f * v0 : f * v1] = x_hi[k, :, f * (v0 - a) : f * (v1 - a)]
        x_hat += x_lo
        return x_hat


def _rows_in_use(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last row of each grid (B, n, w) with a code other than 0: (B,) each; a grid
    of zeros only gives first 0, last -1."""
    used = (indices != 0).any(axis=2)  # (B, n)
    anywhere = used.any(axis=1)
    first = np.where(anywhere, used.argmax(axis=1), 0)
    last = np.where(anywhere, indices.shape[1] - 1 - used[:, ::-1].argmax(axis=1), -1)
    return first, last


def _cuts(indices: np.ndarray, reach: int) -> tuple[np.ndarray, int]:
    """Where to cut each fine grid (B, n, w) so that decoding the cut gives every map row that
    differs from the all-zero grid's: (starts (B,), height h), one h for the batch.

    A cut [a, a + h) decodes exactly the latent rows [a + reach, a + h - reach) (to the grid's
    edge where it touches one: zero padding is then the same); those must cover the rows in
    use plus ``reach`` either side, so h is the widest band plus ``4 * reach`` (at most n) and
    each cut is centred on its band, moved inside the grid if it sticks out."""
    n = indices.shape[1]
    first, last = _rows_in_use(indices)
    span = last - first + 1  # (B,) 0 where no code is used
    if not span.any():
        return np.zeros(len(indices), np.int64), 1  # nothing to decode: any one row will do
    height = min(n, int(span.max()) + 4 * reach)
    starts = first - 2 * reach - (height - span - 4 * reach) // 2
    return np.clip(starts, 0, n - height), height


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


__all__ = ["BATCH_SIZE", "CODEC_FILE", "CODEC_FORMAT", "Batches", "OnnxGraphs"]
