"""ONNX export of the sender and the receiver (https://onnx.ai), for ONNX Runtime on a sensor.

A sensor board runs an exported graph, not PyTorch. This module writes
the two graphs of :mod:`mmslim.export.graphs` with ``torch.onnx.export``:

    sender.onnx     inputs  x, mask_source: (B, 1, H, W) float32 in [0, 1], and with the fine
                            gate also_sent: (B, H/4, W/4) bool, latents sent whatever the
                            gate says (``ModelConfig.gate_detections``)
                    outputs indices_hi (B, H/4, W/4) int64, indices_lo (B, H/16, W/16) int64
    receiver.onnx   inputs  indices_hi (B, h, W/4): any band of h rows of the fine grid,
                            indices_lo (B, H/16, W/16), int64
                    outputs x_hat_hi (B, 1, 4h, W), x_hat_lo (B, 1, H, W) float32: the map is
                            their sum (clamp to [0, 1] before de-normalising)

The batch size B is a dynamic axis, and so is the fine grid's height h in the receiver: the
runtime decodes only the band of rows around the codes that are not 0 and takes the rest of
the fine map from an all-zero grid's (:class:`mmslim.export.runtime.OnnxGraphs`; the reach of
a code, in rows, is ``fine_reach`` in ``codec.json``). H and W are fixed at export time
(224 x 64 by default).
An amplitude model's ``mask_source`` is ``x`` itself; a phase model's is the amplitude map.
The entropy coder and the container stay outside the graphs (:mod:`mmslim.codec`): a sensor
codes the two index grids with the prior's tables. :func:`export_onnx` writes them beside the
graphs (``codec.json``), so that the folder alone is a codec
(:class:`mmslim.export.sensor.ExportedCodec`, no PyTorch needed).

Optionally the sender's convolutions are quantised to int8 with ONNX Runtime's tool, dynamic or
static (:func:`quantize_int8`); the effect on indices and radar metrics is printed by
``mmslim bench speed --int8``.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from mmslim.export.graphs import Receiver, Sender, fine_reach
from mmslim.export.runtime import CODEC_FILE, CODEC_FORMAT

OPSET = 17  # ONNX opset of the exported graphs (ONNX Runtime >= 1.14 runs it)
SENDER_IO = (("x", "mask_source", "also_sent"), ("indices_hi", "indices_lo"))
RECEIVER_IO = (("indices_hi", "indices_lo"), ("x_hat_hi", "x_hat_lo"))


def _export(
    module: torch.nn.Module,
    args: tuple,
    names: tuple[tuple[str, ...], ...],
    rows: dict[str, int] | None = None,
) -> bytes:
    """``torch.onnx.export`` of ``module`` on example ``args`` -> bytes. The batch axis is
    dynamic, and so is the axis ``rows[name]`` of each input or output ``name`` in ``rows``."""
    inputs, outputs = names
    dynamic = {name: {0: "batch"} for name in (*inputs, *outputs)}
    for name, axis in (rows or {}).items():
        dynamic[name][axis] = f"{name}_rows"
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter warns about its future, not us
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            buffer,
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter: no extra dependency, plain ONNX ops
        )
    return buffer.getvalue()


def export_sender(model: torch.nn.Module, shape: tuple[int, int] = (224, 64)) -> bytes:
    """The sender graph of ``model`` (an :class:`~mmslim.nn.MMSlim`) as ONNX bytes, for frames
    of ``shape`` (H, W)."""
    sender = Sender(model).cpu()
    x = torch.rand(2, 1, *shape)  # (2, 1, H, W) example; the batch axis stays dynamic
    also = torch.zeros(2, *model.latent_shapes(*shape)["hi"], dtype=torch.bool)  # (2, H/4, W/4)
    return _export(sender, (x, x, also), SENDER_IO)


def export_receiver(model: torch.nn.Module, shape: tuple[int, int] = (224, 64)) -> bytes:
    """The receiver graph of ``model`` as ONNX bytes, for frames of ``shape`` (H, W): the two
    branches' maps apart, the fine grid's height dynamic (see the module doc)."""
    receiver = Receiver(model, split=True).cpu()
    grids = model.latent_shapes(*shape)
    hi = torch.zeros(2, *grids["hi"], dtype=torch.int64)  # (2, H/4, W/4)
    lo = torch.zeros(2, *grids["lo"], dtype=torch.int64)  # (2, H/16, W/16)
    return _export(receiver, (hi, lo), RECEIVER_IO, rows={"indices_hi": 1, "x_hat_hi": 2})


def quantize_int8(onnx_bytes: bytes, calibration: np.ndarray | None = None) -> bytes:
    """The sender's convolutions in int8, with ONNX Runtime's quantisation tool.

    calibration: None for dynamic quantisation (int8 weights, activation ranges measured on
        every call: ``ConvInteger``); or frames (N, 1, H, W) float32 in [0, 1] (training
        frames, not those to be coded) for static quantisation (QDQ format, per-channel int8
        weights, uint8 activations with ranges calibrated on these frames once).
    The nearest-codeword search stays in float32, so only the encoders' rounding changes.
    """
    import tempfile

    import onnx
    from onnxruntime import quantization as q

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(onnx_bytes)
        if calibration is None:
            q.quantize_dynamic(
                src, dst, op_types_to_quantize=["Conv"], weight_type=q.QuantType.QInt8
            )
        else:
            inputs = {i.name: i for i in onnx.load_from_string(onnx_bytes).graph.input}
            also = None
            if "also_sent" in inputs:  # (B, h, w): the fine grid's shape, from the graph
                dims = inputs["also_sent"].type.tensor_type.shape.dim
                also = tuple(d.dim_value for d in dims[1:])
            reader = _Calibration(calibration, also)
            q.quantize_static(src, dst, reader, quant_format=q.QuantFormat.QDQ,
                              op_types_to_quantize=["Conv"], per_channel=True,
                              activation_type=q.QuantType.QUInt8,
                              weight_type=q.QuantType.QInt8)  # fmt: skip
        onnx.checker.check_model(str(dst))
        return dst.read_bytes()


class _Calibration:
    """ONNX Runtime's ``CalibrationDataReader`` protocol over frames (N, 1, H, W), 8 a batch,
    each its own mask source (amplitude models); ``also_sent``: the fine grid's (h, w) if the
    graph takes that input (all False: the detections do not change the convolutions)."""

    def __init__(self, frames: np.ndarray, also_sent: tuple[int, int] | None = None):
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        batches = []
        for b in np.array_split(frames, max(1, len(frames) // 8)):
            batches.append({"x": b, "mask_source": b})
            if also_sent is not None:
                batches[-1]["also_sent"] = np.zeros((len(b), *also_sent), bool)
        self.batches = iter(batches)

    def get_next(self):
        return next(self.batches, None)


def export_onnx(
    model: torch.nn.Module, out_dir: str | Path, shape=(224, 64), kind: str | None = None
) -> list[Path]:
    """Write ``sender.onnx``, ``receiver.onnx`` and ``codec.json`` of ``model`` into
    ``out_dir``; returns their paths.

    ``codec.json`` holds its format (:data:`~mmslim.export.runtime.CODEC_FORMAT`) and what files
    need besides the graphs: the model's fingerprint, the frame shape and grid shapes, ``kind``
    (the model's stage, ``"amplitude"`` or ``"phase"``, if given), the fine decoder's reach in
    latent rows (:func:`mmslim.export.graphs.fine_reach`), whether the sender takes detections,
    and the prior's counts and whether they were fitted (if not, only the ``"huffman"`` and
    ``"fixed"`` modes code). Each graph is checked with ``onnx.checker`` before it is written.
    """
    import onnx

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in (("sender", export_sender), ("receiver", export_receiver)):
        data = make(model, shape)
        onnx.checker.check_model(onnx.load_from_string(data))
        path = out_dir / f"{name}.onnx"
        path.write_bytes(data)
        paths.append(path)
    prior = model.prior.tables()
    codec = {
        "format": CODEC_FORMAT,
        "kind": kind,
        "frame_shape": list(shape),
        "grids": {b: list(s) for b, s in model.latent_shapes(*shape).items()},
        "fingerprint": model.fingerprint().hex(),
        "fine_reach": fine_reach(model, shape),
        "gate_detections": model.config.gate_detections,
        "prior": {"counts_hi": prior.counts_hi.tolist(), "counts_lo": prior.counts_lo.tolist(),
                  "fitted": prior.fitted},
    }  # fmt: skip
    paths.append(out_dir / CODEC_FILE)
    paths[-1].write_text(json.dumps(codec) + "\n")
    return paths


__all__ = [
    "OPSET",
    "export_onnx",
    "export_receiver",
    "export_sender",
    "quantize_int8",
]
