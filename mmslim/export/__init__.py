"""The sender and receiver as inference graphs, their ONNX export and what runs them, read in
this order: :mod:`~mmslim.export.graphs` (the two graphs, BatchNorm folded),
:mod:`~mmslim.export.onnx` (``torch.onnx.export``, optional int8, the exported folder),
:mod:`~mmslim.export.runtime` (the graphs under ONNX Runtime, numpy only),
:mod:`~mmslim.export.backends` (PyTorch or ONNX Runtime behind ``compress_maps(...,
backend=...)``) and :mod:`~mmslim.export.sensor` (an exported folder as a codec, without
PyTorch).

Names are imported on first use: ``from mmslim.export import ExportedCodec`` does not import
PyTorch.
"""

from mmslim.lazy import lazy_names

_HOMES = {  # public name -> the module that defines it
    "ExportedCodec": "mmslim.export.sensor",
    "OnnxGraphs": "mmslim.export.runtime",
    "OnnxBackend": "mmslim.export.backends",
    "TorchBackend": "mmslim.export.backends",
    "backend_for": "mmslim.export.backends",
    "Receiver": "mmslim.export.graphs",
    "Sender": "mmslim.export.graphs",
    "export_onnx": "mmslim.export.onnx",
    "export_receiver": "mmslim.export.onnx",
    "export_sender": "mmslim.export.onnx",
    "quantize_int8": "mmslim.export.onnx",
}
__getattr__, __dir__ = lazy_names(__name__, _HOMES)

__all__ = sorted(_HOMES)
