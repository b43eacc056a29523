"""The methods :mod:`mmslim.bench.rd` measures: one codec at one setting, as compress and
decompress calls on maps in physical units.

- :func:`model_method`: mmSlim (or an ablation) through the real file path (ANS with
  :func:`~mmslim.codec.maps.compress_maps`, then :func:`~mmslim.codec.maps.decompress_maps`);
- :func:`detail_method`: the same with a detail layer beside the file (:mod:`mmslim.codec.detail`),
  its bytes counted;
- :func:`floor_method`: amplitude with a detail layer and a floor layer
  (:mod:`mmslim.codec.floor_layer`: the floor's level, or level and texture), all bytes counted;
- :func:`classical_methods`: every codec of :data:`mmslim.bench.baselines.CODECS` at every setting
  of its sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mmslim.bench import baselines
from mmslim.codec.maps import compress_maps, decompress_maps
from mmslim.data.dataset import FRAME_SHAPE

# Bits per cell of the detail layers, one operating point each.
DETAIL_BITS = {"amplitude": (2, 3, 4), "phase": (3, 4, 5)}
# Texture steps (dB) of the floor layers drawn beside a 3-bit amplitude detail layer; 0: the
# floor's level only.
FLOOR_STEPS = (0.0, 16.0, 13.0)


@dataclass
class Method:
    """One codec at one setting; maps (N, H, W) in physical units. ``compress`` returns what is
    sent: bytes of an ``.mmsl`` file, or a classical codec's ``Encoded`` frames; ``len()`` of
    either is the size of the file in bytes."""

    codec: str
    family: str  # "mmslim", "ablation" or "classical"
    setting: str
    compress: Callable[[np.ndarray, np.ndarray], bytes | baselines.Encoded]
    decompress: Callable[[bytes | baselines.Encoded], np.ndarray]


def model_method(
    name: str, family: str, model, kind: str, frame_shape=FRAME_SHAPE, floor: str = "none"
) -> Method:
    """mmSlim (or an ablation) through the real file path; ``frame_shape`` (H, W) is what the
    receiver expects (another scenario's radar makes other maps); ``floor``: what the receiver
    draws for the amplitude floor (:mod:`mmslim.codec.floor`)."""

    def enc(maps, amp):
        return compress_maps(model, maps, kind, "ans", amp if kind == "phase" else None)

    def dec(data):
        shape = tuple(frame_shape)
        return decompress_maps(model, data, kind=kind, frame_shape=shape, floor=floor)[0]

    setting = f"K={model.config.num_codes} mask={model.config.mask}"
    if model.config.fine_gate:
        setting += f" gate={model.config.fine_gate:g}"
        if model.config.gate_detections:
            setting += "+cfar"
    if model.config.coarse_codes:
        setting += f" coarse={len(model.config.coarse_codes)}"
    if kind == "amplitude":
        setting += f" floor={floor}"
    return Method(name, family, setting, enc, dec)


@dataclass
class WithDetail:
    """What a method with a detail layer sends: its file and the layer (their bytes are its
    rate), and the amplitude the receiver decoded, which selects the layer's cells (for phase,
    decoded from the amplitude's own file, sent and counted as that file)."""

    file: bytes
    detail: bytes
    amplitude_hat: np.ndarray  # (N, H, W) dB, floor="none"
    floor: bytes = b""  # a floor layer (amplitude only)

    def __len__(self) -> int:
        return len(self.file) + len(self.detail) + len(self.floor)


def detail_method(
    name: str,
    model,
    amplitude_model,
    bits: int,
    within_db: float = 43.0,
    frame_shape=FRAME_SHAPE,
    kind: str = "phase",
) -> Method:
    """mmSlim's ``kind`` codec with a detail layer (:mod:`mmslim.codec.detail`): the sender also
    decodes the amplitude file, as the receiver will, to choose the cells (for amplitude,
    ``amplitude_model`` is ``model`` and the file is the one it sends)."""
    from mmslim.codec.detail import encode_detail, refine_amplitude, refine_phase

    base = model_method(name, "mmslim", model, kind, frame_shape)
    shape = tuple(frame_shape)

    def enc(maps, amp):
        amp_file = compress_maps(amplitude_model, amp, "amplitude", "ans")
        amp_hat = decompress_maps(amplitude_model, amp_file, frame_shape=shape)[0]
        detail = encode_detail(maps, amp_hat, bits, within_db, kind=kind)
        sent = amp_file if kind == "amplitude" else base.compress(maps, amp)
        return WithDetail(sent, detail, amp_hat)

    def dec(sent: WithDetail):
        if kind == "amplitude":
            return refine_amplitude(base.decompress(sent.file), sent.detail)
        return refine_phase(base.decompress(sent.file), sent.detail, sent.amplitude_hat)

    setting = f"{base.setting} detail={bits}b@{within_db:g}dB"
    return Method(name, "mmslim", setting, enc, dec)


def floor_method(
    name: str, model, texture_step: float, detail_bits: int = 3, frame_shape=FRAME_SHAPE
) -> Method:
    """mmSlim's amplitude codec with an amplitude detail layer of ``detail_bits`` bits and a floor
    layer (:mod:`mmslim.codec.floor_layer`) of ``texture_step`` dB (0: level only)."""
    from mmslim.codec.floor_layer import encode_floor, refine_floor

    detail = detail_method(name, model, model, detail_bits, frame_shape=frame_shape,
                           kind="amplitude")  # fmt: skip

    def enc(maps, amp):
        sent = detail.compress(maps, amp)
        sent.floor = encode_floor(maps, sent.amplitude_hat, texture_step)
        return sent

    def dec(sent: WithDetail):
        return refine_floor(detail.decompress(sent), sent.floor, sent.amplitude_hat)

    floor = f"texture {texture_step:g} dB" if texture_step else "level"
    return Method(name, "mmslim", f"{detail.setting} floor-layer={floor}", enc, dec)


def classical_methods(codecs=None) -> list[Method]:
    out = []
    for codec in codecs or baselines.CODECS.values():
        for s in codec.settings:
            enc = lambda maps, amp, c=codec, s=s: baselines.compress(c, s, maps)  # noqa: E731
            out.append(
                Method(codec.name, "classical", f"{codec.knob}={s:g}", enc, baselines.decompress)
            )
    return out


__all__ = [
    "DETAIL_BITS",
    "FLOOR_STEPS",
    "Method",
    "WithDetail",
    "classical_methods",
    "detail_method",
    "floor_method",
    "model_method",
]
