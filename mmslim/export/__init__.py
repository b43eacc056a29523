"""The sender and receiver as inference graphs, their ONNX export and the backends that run
them, read in this order: :mod:`~mmslim.export.graphs` (the two graphs, BatchNorm folded),
:mod:`~mmslim.export.onnx` (``torch.onnx.export``, optional int8) and
:mod:`~mmslim.export.backends` (PyTorch or ONNX Runtime behind ``compress_maps(...,
backend=...)``)."""

from mmslim.export.backends import OnnxBackend, TorchBackend, backend_for
from mmslim.export.graphs import Receiver, Sender
from mmslim.export.onnx import export_onnx, export_receiver, export_sender, quantize_int8

__all__ = [
    "OnnxBackend",
    "Receiver",
    "Sender",
    "TorchBackend",
    "backend_for",
    "export_onnx",
    "export_receiver",
    "export_sender",
    "quantize_int8",
]
