"""An exported folder as a codec, without PyTorch: what a sensor board runs.

``mmslim export --checkpoint amplitude.pt --out amplitude_codec/`` writes ``sender.onnx``,
``receiver.onnx`` and ``codec.json`` (:func:`mmslim.export.onnx.export_onnx`). A board with
numpy, ONNX Runtime and constriction (and scipy, whose filters find the CA-CFAR detections of a
sender with ``ModelConfig.gate_detections``), but no PyTorch, codes with that folder alone::

    from mmslim.export.sensor import ExportedCodec

    codec = ExportedCodec("amplitude_codec")
    data = codec.compress(maps_db)          # (N, 224, 64) dB -> bytes of a .mmsl file
    maps = codec.decompress(data)           # and back, on a receiver

It goes through the same :func:`mmslim.codec.maps.compress_maps` and ``decompress_maps`` as a
model does, with the graphs under ONNX Runtime (:class:`mmslim.export.runtime.OnnxGraphs`), so
its files equal, byte for byte, those of ``compress_maps(model, ..., backend="onnx")``, and a
file made with either decodes with the other. Neither this module nor what it imports loads
PyTorch (about 250 MB of a process's memory).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mmslim.codec.maps import compress_maps, decompress_maps
from mmslim.codec.tables import PriorTables
from mmslim.export.runtime import CODEC_FILE, CODEC_FORMAT, OnnxGraphs


class ExportedCodec:
    """The codec of an exported folder (``sender.onnx``, ``receiver.onnx``, ``codec.json``).

    Args:
        folder: what :func:`mmslim.export.onnx.export_onnx` (``mmslim export``) wrote.
        threads: batches of frames coded side by side (one per core; 1 on a single-core board).

    It offers what :mod:`mmslim.codec.maps` reads of a model (``latent_shapes``,
    ``prior_for``, ``prior``, ``fingerprint``), so the one codec path serves both.
    """

    def __init__(self, folder: str | Path, threads: int = 1):
        folder = Path(folder)
        try:
            spec = json.loads((folder / CODEC_FILE).read_text())
            graphs = [(folder / f"{name}.onnx").read_bytes() for name in ("sender", "receiver")]
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"{folder} is not an exported codec ({Path(err.filename).name} is missing); "
                "write one with `mmslim export --checkpoint CKPT --out FOLDER`"
            ) from None
        if spec.get("format", 1) > CODEC_FORMAT:
            raise ValueError(
                f"{folder / CODEC_FILE} has format {spec['format']}, newer than this mmslim reads "
                f"({CODEC_FORMAT}): update mmslim, or export the folder again with this one"
            )
        self.kind: str | None = spec["kind"]
        self.frame_shape = tuple(spec["frame_shape"])
        self.grids = {branch: tuple(shape) for branch, shape in spec["grids"].items()}
        prior = spec["prior"]
        counts = [np.asarray(prior[f"counts_{b}"], np.int64) for b in ("hi", "lo")]
        self.prior = PriorTables(*counts, fitted=prior["fitted"])
        fingerprint = bytes.fromhex(spec["fingerprint"])
        # Both absent from folders exported before they were written: dense decoding, no
        # detections (those models had none).
        self.gate_detections = bool(spec.get("gate_detections", False))
        reach = spec.get("fine_reach")
        self.graphs = OnnxGraphs(*graphs, fingerprint, self.frame_shape, threads, reach)

    # ------------------------------------------------------- what the codec reads of a model

    def fingerprint(self) -> bytes:
        """The 8 bytes of the exported model, written into every file."""
        return self.graphs.fingerprint

    def latent_shapes(self, height: int, width: int) -> dict[str, tuple[int, int]]:
        """The index grids of (H, W) frames: only the exported frame shape has them."""
        if (height, width) != self.frame_shape:
            raise ValueError(
                f"this codec was exported for {self.frame_shape[0]} x {self.frame_shape[1]} "
                f"frames, not {height} x {width}; export it for that size"
            )
        return dict(self.grids)

    def prior_for(self, mode: str) -> PriorTables | None:
        """The prior tables for ``"ans"`` (refused if the model was exported unfitted)."""
        if mode == "ans" and not self.prior.is_fitted:
            raise ValueError(
                "this codec was exported from a model whose prior was not fitted, and ANS needs "
                "it: fit the prior (`mmslim prior`) and export again, or use mode='huffman'"
            )
        return self.prior if mode == "ans" else None

    # ------------------------------------------------------------------------- the codec

    def compress(
        self,
        maps: np.ndarray,
        mask_source: np.ndarray | None = None,
        mode: str = "ans",
        *,
        kind: str | None = None,
        key: bytes | None = None,
        first_sequence: int = 0,
        progress: bool = False,
    ) -> bytes:
        """(N, H, W) maps in dB (amplitude) or rad (phase, with the amplitude as
        ``mask_source``) -> a ``.mmsl`` file, as :func:`mmslim.codec.maps.compress_maps`.
        ``kind``: only for a folder exported without one."""
        kind = self._kind(kind)
        return compress_maps(self, maps, kind, mode, mask_source, progress, key=key,
                             first_sequence=first_sequence, backend=self.graphs)  # fmt: skip

    def decompress(
        self,
        data: bytes,
        *,
        key: bytes | None = None,
        first_sequence: int | None = None,
        floor: str = "none",
        progress: bool = False,
    ) -> np.ndarray:
        """A ``.mmsl`` file -> (N, H, W) maps in physical units, as
        :func:`mmslim.codec.maps.decompress_maps` (which also returns the decoded file)."""
        maps, _ = decompress_maps(self, data, progress, kind=self.kind,
                                  frame_shape=self.frame_shape, key=key,
                                  first_sequence=first_sequence, floor=floor,
                                  backend=self.graphs)  # fmt: skip
        return maps

    def _kind(self, kind: str | None) -> str:
        if kind is not None and self.kind is not None and kind != self.kind:
            raise ValueError(f"this codec codes {self.kind} maps, not {kind}")
        if (kind or self.kind) is None:
            raise ValueError("this folder was exported without a kind: pass kind=...")
        return kind or self.kind


__all__ = ["ExportedCodec"]
