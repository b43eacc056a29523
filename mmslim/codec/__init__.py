"""Where bytes are made: the entropy prior, the coders, frames, the file container, rates.

Read in this order: :mod:`~mmslim.codec.prior` (the per-branch index counts the model carries;
:mod:`~mmslim.codec.tables` holds them as plain arrays for code without PyTorch),
:mod:`~mmslim.codec.ans` and :mod:`~mmslim.codec.prefix` (ANS, Huffman and fixed-length coders),
:mod:`~mmslim.codec.frames` (one frame's two index grids <-> a byte string),
:mod:`~mmslim.codec.header` and :mod:`~mmslim.codec.container` (the ``.mmsl`` file: header,
frame records, checksum, every field checked before use), :mod:`~mmslim.codec.auth` (the
optional HMAC tag), :mod:`~mmslim.codec.inputs` (what maps may be coded),
:mod:`~mmslim.codec.rate` (every byte accounted for) and :mod:`~mmslim.codec.maps` (maps in
physical units <-> a file, through a model). The model never writes bytes itself. Beside a
file, optionally: :mod:`~mmslim.codec.detail` (the strongest cells' phase or amplitude error) and
:mod:`~mmslim.codec.floor_layer` (the amplitude floor's level, and its texture at a step),
:mod:`~mmslim.codec.repairs` (cells set by position), and :mod:`~mmslim.codec.layers` (all of
them applied, in order, at the receiver).

Nothing here imports PyTorch until a torch model is used (``IndexPrior`` is imported on first
use), so that the exported codec (:mod:`mmslim.export.sensor`) runs without it.
"""

from mmslim.codec.auth import read_key_file
from mmslim.codec.container import DecodedFile, decode_file, encode_file, read_header
from mmslim.codec.frames import BitstreamError, FrameCoder, decode_frames, encode_frames
from mmslim.codec.header import Expected, Header
from mmslim.codec.inputs import check_maps
from mmslim.codec.maps import (
    compress_maps,
    decompress_maps,
    encode_maps,
    expected_of,
    fit_prior,
)
from mmslim.codec.rate import RateReport, rate_report
from mmslim.codec.tables import PriorTables
from mmslim.lazy import lazy_names

__getattr__, _ = lazy_names(__name__, {"IndexPrior": "mmslim.codec.prior"})  # an nn.Module


__all__ = [
    "BitstreamError",
    "DecodedFile",
    "Expected",
    "FrameCoder",
    "Header",
    "IndexPrior",
    "PriorTables",
    "RateReport",
    "check_maps",
    "compress_maps",
    "decode_file",
    "decode_frames",
    "decompress_maps",
    "encode_file",
    "encode_frames",
    "encode_maps",
    "expected_of",
    "fit_prior",
    "rate_report",
    "read_header",
    "read_key_file",
]
