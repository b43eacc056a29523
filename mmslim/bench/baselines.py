"""Classical lossy codecs for the rate-distortion benchmark, all through ``imagecodecs``.

Each codec has one small interface (:class:`Codec`): a ``name``, the ``settings`` of its quality
knob to sweep (coarse to fine), ``encode(maps01, setting) -> list[bytes]`` (one string per frame)
and ``decode(strings, shape, setting) -> maps01``. Maps are the per-frame normalised ``[0, 1]``
maps the model sees too, ``(N, H, W)`` float32:

====================  =======================================================================
``jpegxl``            JPEG XL (libjxl), lossy, knob: Butteraugli ``distance`` (0 = lossless)
``jpeg2k``            JPEG 2000 (OpenJPEG) raw J2K codestream, knob: target PSNR ``level`` (dB)
``sz3``               SZ3 on float32, knob: absolute error bound (error-bounded)
``zfp``               ZFP on float32, fixed-accuracy mode, knob: absolute tolerance
``zfp-rate``          ZFP on float32, fixed-rate mode, knob: bits per value (reaches low rates
                      where fixed-accuracy ZFP cannot: its floor is about 1 bit per value)
``quant-zstd``        uniform quantisation to ``bits`` (8 = the plain 8-bit baseline) + zstd -19
====================  =======================================================================

JPEG XL and JPEG 2000 take 16-bit integer images: maps are quantised to ``round(65535 x)``
(step 1.5e-5, far below any error they make), not 8-bit, so that quantisation does not cap
their quality at high rates.

What is counted. Every codec is charged the container mmSlim's files use
(:func:`mmslim.codec.container.file_bytes`): the 44-byte header and 4-byte CRC per file, and
per frame a 2-byte sequence number, the side info (min, max) in float32 (64 bits) and a 4-byte
length, byte for byte the overhead mmSlim pays. The strings themselves include whatever each codec
writes into its own stream (JPEG XL and J2K codestream headers, SZ3's and ZFP's headers).
Frames are coded independently, as mmSlim's are, so a sensor can send each frame on its own.
The rate is ``8 len(file)`` over the number of map values.

Decoders clamp to [0, 1] before de-normalising, as mmSlim's does: every map is known to lie there.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import imagecodecs
import numpy as np

from mmslim.codec.container import file_bytes
from mmslim.data.dataset import denormalize, normalize

U16 = 65535.0  # full scale of the 16-bit images given to JPEG XL and JPEG 2000


@dataclass(frozen=True)
class Codec:
    """One classical codec. ``settings``: knob values to sweep, coarse (low rate) to fine."""

    name: str
    knob: str  # what the setting means, for tables and legends
    settings: tuple[float, ...]

    def encode(self, maps01: np.ndarray, setting: float, side=None) -> list[bytes]:
        """(N, H, W) float32 in [0, 1] -> N frame strings. ``side``: (N, 2) per-frame (min,
        max) in physical units, which the receiver also has (image codecs ignore it)."""
        return [self._encode_frame(np.ascontiguousarray(m), setting) for m in maps01]

    def decode(self, strings: Sequence[bytes], shape: tuple[int, int], setting: float, side=None):
        """N frame strings -> (N, H, W) float32 in [0, 1]."""
        out = np.zeros((len(strings), *shape), np.float32)
        for i, s in enumerate(strings):
            out[i] = self._decode_frame(bytes(s), tuple(shape), setting)
        return np.clip(out, 0.0, 1.0)

    def _encode_frame(self, m: np.ndarray, setting: float) -> bytes:
        raise NotImplementedError

    def _decode_frame(self, s: bytes, shape: tuple[int, int], setting: float) -> np.ndarray:
        raise NotImplementedError


def _to_u16(m: np.ndarray) -> np.ndarray:
    return np.round(np.clip(m, 0.0, 1.0) * U16).astype(np.uint16)


class JpegXL(Codec):
    def _encode_frame(self, m, setting):
        return bytes(imagecodecs.jpegxl_encode(_to_u16(m), distance=setting))

    def _decode_frame(self, s, shape, setting):
        return imagecodecs.jpegxl_decode(s).reshape(shape) / U16


class Jpeg2K(Codec):
    def _encode_frame(self, m, setting):
        return bytes(imagecodecs.jpeg2k_encode(_to_u16(m), level=setting, codecformat="J2K"))

    def _decode_frame(self, s, shape, setting):
        return imagecodecs.jpeg2k_decode(s).reshape(shape) / U16


class SZ3(Codec):
    def _encode_frame(self, m, setting):
        return bytes(imagecodecs.sz3_encode(m.astype(np.float32), abs=setting))

    def _decode_frame(self, s, shape, setting):
        return imagecodecs.sz3_decode(s, shape, np.float32)


class ZFP(Codec):
    mode = "a"  # fixed accuracy: ``setting`` is the absolute tolerance

    def _encode_frame(self, m, setting):
        # ZFP's own 8-byte header (mode, shape) is kept: it makes the stream self-describing.
        return bytes(imagecodecs.zfp_encode(m.astype(np.float32), level=setting, mode=self.mode))

    def _decode_frame(self, s, shape, setting):
        return imagecodecs.zfp_decode(s).reshape(shape)


class ZFPRate(ZFP):
    mode = "r"  # fixed rate: ``setting`` is bits per value


class QuantZstd(Codec):
    def _encode_frame(self, m, setting):
        q = np.round(np.clip(m, 0.0, 1.0) * (2 ** int(setting) - 1)).astype(np.uint8)
        return bytes(imagecodecs.zstd_encode(q, level=19))

    def _decode_frame(self, s, shape, setting):
        q = np.frombuffer(imagecodecs.zstd_decode(s), np.uint8).reshape(shape)
        return q / (2 ** int(setting) - 1)


class SparseList(Codec):
    """A detection-list coder, close to what radar sensors send today: the cells within
    ``setting`` dB of the frame's peak (their positions as a bitmap, their values in 2 dB steps),
    and the noise floor as one level per range bin (its mean power, in 0.5 dB steps: a median
    would sit ~2.5 dB under the mean power of Rayleigh noise and lower every CFAR threshold);
    the receiver fills every other cell with its range bin's level. Packed and compressed with
    zstd (level 19), so the rate is real bytes. It needs each frame's dB span (side info)."""

    step_db, floor_step_db = 2.0, 0.5

    def encode(self, maps01, setting, side=None):
        out = []
        for m, (vmin, vmax) in zip(maps01, _require_side(side, len(maps01))):
            rel = (m.astype(np.float64) - 1.0) * (vmax - vmin)  # (H, W) dB below the peak
            keep = rel >= -setting  # (H, W)
            values = np.round((rel[keep] + setting) / self.step_db).astype(np.uint8)  # (M,)
            power = np.where(keep, np.nan, 10.0 ** (rel / 10.0))  # (H, W) floor cells only
            with warnings.catch_warnings():  # a column of kept cells only: no floor there
                warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of an all-NaN column
                floor = 10.0 * np.log10(np.nanmean(power, axis=0))  # (W,) per range bin
            floor = np.nan_to_num(floor, nan=-setting)
            floor_q = np.clip(np.round(-floor / self.floor_step_db), 0, 255).astype(np.uint8)
            payload = np.packbits(keep).tobytes() + values.tobytes() + floor_q.tobytes()
            out.append(bytes(imagecodecs.zstd_encode(payload, level=19)))
        return out

    def decode(self, strings, shape, setting, side=None):
        h, w = shape
        maps = np.zeros((len(strings), h, w), np.float32)
        for i, (s, (vmin, vmax)) in enumerate(zip(strings, _require_side(side, len(strings)))):
            raw = np.frombuffer(imagecodecs.zstd_decode(bytes(s)), np.uint8)
            n_bitmap = (h * w + 7) // 8
            keep = np.unpackbits(raw[:n_bitmap])[: h * w].astype(bool).reshape(h, w)
            values = raw[n_bitmap : n_bitmap + keep.sum()].astype(np.float64)
            floor = -raw[n_bitmap + keep.sum() :].astype(np.float64) * self.floor_step_db  # (W,)
            rel = np.broadcast_to(floor, (h, w)).copy()
            rel[keep] = values * self.step_db - setting
            maps[i] = 1.0 + rel / (vmax - vmin)
        return np.clip(maps, 0.0, 1.0)


def _require_side(side, n: int) -> np.ndarray:
    if side is None or np.shape(side) != (n, 2):
        raise ValueError("the sparse coder needs each frame's (min, max): pass side (N, 2)")
    return np.asarray(side, dtype=np.float64)


CODECS: dict[str, Codec] = {
    c.name: c
    for c in (
        JpegXL("jpegxl", "distance", (25.0, 15.0, 10.0, 6.0, 4.0, 3.0, 2.0, 1.0, 0.5)),  # 25: max
        Jpeg2K(
            "jpeg2k",
            "PSNR dB",
            (10.0, 15.0, 20.0, 24.0, 26.0, 27.0, 28.0, 29.0, 30.0, 32.0, 35.0, 40.0, 50.0),
        ),
        SZ3("sz3", "abs error", (1.0, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01, 0.003)),
        ZFP("zfp", "tolerance", (2.0, 1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01)),
        ZFPRate("zfp-rate", "bits/value", (0.5, 0.75, 1.0, 1.5, 2.0, 4.0)),
        QuantZstd("quant-zstd", "bits", (1.0, 2.0, 3.0, 4.0, 6.0, 8.0)),
        SparseList("sparse", "dB below peak", (25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0)),
    )
}


@dataclass(frozen=True)
class Encoded:
    """Frames coded by a classical codec: ``len(encoded)`` is the size of the ``.mmsl``-style file
    they would travel in (:func:`mmslim.codec.container.file_bytes`: header, side info, framing,
    CRC), so every method in the benchmark pays the same container."""

    codec: Codec
    setting: float
    strings: tuple[bytes, ...]  # one per frame, the codec's own stream
    side: np.ndarray  # (N, 2) float32: per-frame (min, max)
    shape: tuple[int, int]  # (H, W)

    def __len__(self) -> int:
        return file_bytes(sum(map(len, self.strings)), len(self.strings))


def compress(codec: Codec, setting: float, maps: np.ndarray) -> Encoded:
    """Maps in physical units (N, H, W) -> coded frames (normalised per frame, side info kept)."""
    maps01, vmin, vmax = normalize(np.asarray(maps, dtype=np.float32))  # (N, H, W), (N,), (N,)
    side = np.stack([vmin, vmax], axis=1).astype(np.float32)  # (N, 2)
    strings = codec.encode(maps01.astype(np.float32), setting, side)
    return Encoded(codec, setting, tuple(strings), side, tuple(maps.shape[1:]))


def decompress(encoded: Encoded) -> np.ndarray:
    """Coded frames of :func:`compress` -> maps in physical units (N, H, W) float32."""
    maps01 = encoded.codec.decode(
        list(encoded.strings), encoded.shape, encoded.setting, encoded.side
    )
    return denormalize(maps01, encoded.side[:, 0], encoded.side[:, 1]).astype(np.float32)


__all__ = ["CODECS", "Codec", "Encoded", "compress", "decompress"]
