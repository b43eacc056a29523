"""The methods :mod:`mmslim.bench.rd` measures: one codec at one setting, as compress and
decompress calls on maps in physical units.

- :func:`model_method`: mmSlim (or an ablation) through the real file path (ANS with
  :func:`~mmslim.codec.maps.compress_maps`, then :func:`~mmslim.codec.maps.decompress_maps`);
- :func:`detail_method`: the same with a detail layer beside the file (:mod:`mmslim.codec.detail`),
  its bytes counted;
- :func:`layered_method`: amplitude with any of a detail layer, a floor layer
  (:mod:`mmslim.codec.floor_layer`: the floor's level, or level and texture) and a repair list
  (:mod:`mmslim.codec.repairs`), all bytes counted;
- :func:`classical_methods`: every codec of :data:`mmslim.bench.baselines.CODECS` at every setting
  of its sweep.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mmslim.bench import baselines
from mmslim.codec.maps import compress_maps, decompress_maps
from mmslim.codec.repairs import BENCH_ONLY, DETECTORS
from mmslim.data.dataset import FRAME_SHAPE

# Bits per cell of the detail layers, one operating point each.
DETAIL_BITS = {"amplitude": (2, 3, 4), "phase": (3, 4, 5)}
# Layers beside the main amplitude model's file, one operating point each: (detail bits, floor
# layer's texture step in dB (0: level only; None: no floor layer), the detectors of a repair
# list (None: no list), whether the list keeps exactly the original's detections). The phase
# detail layers are also drawn with their cells chosen on the amplitude with PHASE_ON_LAYERS.
LAYERS = (
    (3, 0.0, None, False),
    (3, 16.0, None, False),
    (3, 13.0, None, False),
    (0, None, DETECTORS, False),
    (0, None, DETECTORS, True),
    (3, 0.0, DETECTORS, False),
    (3, 0.0, BENCH_ONLY, False),
    (3, 0.0, DETECTORS, True),
    (3, 13.0, DETECTORS, False),
)
PHASE_ON_LAYERS = (3, 0.0, DETECTORS, False)


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
    repairs: bytes = b""  # a repair list (amplitude only)

    def __len__(self) -> int:
        return len(self.file) + len(self.detail) + len(self.floor) + len(self.repairs)


def detail_method(
    name: str,
    model,
    amplitude_model,
    bits: int,
    within_db: float = 43.0,
    frame_shape=FRAME_SHAPE,
    kind: str = "phase",
    amplitude_layers: tuple | None = None,
) -> Method:
    """mmSlim's ``kind`` codec with a detail layer (:mod:`mmslim.codec.detail`): the sender also
    decodes the amplitude file, as the receiver will, to choose the cells (for amplitude,
    ``amplitude_model`` is ``model`` and the file is the one it sends). Phase only:
    ``amplitude_layers``, the arguments of :func:`layered_method` after the model, sends the
    amplitude with those layers and chooses the cells on the amplitude they give (its bytes are
    counted with the amplitude)."""
    from mmslim.codec.detail import encode_detail, refine_amplitude, refine_phase

    base = model_method(name, "mmslim", model, kind, frame_shape)
    shape = tuple(frame_shape)
    amplitude = model_method(name, "mmslim", amplitude_model, "amplitude", frame_shape)
    plain = amplitude.setting
    if amplitude_layers is not None:
        if kind != "phase":
            raise ValueError("amplitude_layers choose a phase detail layer's cells")
        amplitude = layered_method(name, amplitude_model, *amplitude_layers, frame_shape=shape)

    def enc(maps, amp):
        amp_file = amplitude.compress(amp, amp)
        amp_hat = amplitude.decompress(amp_file)
        detail = encode_detail(maps, amp_hat, bits, within_db, kind=kind)
        sent = amp_file if kind == "amplitude" else base.compress(maps, amp)
        return WithDetail(sent, detail, amp_hat)

    def dec(sent: WithDetail):
        if kind == "amplitude":
            return refine_amplitude(base.decompress(sent.file), sent.detail)
        return refine_phase(base.decompress(sent.file), sent.detail, sent.amplitude_hat)

    setting = f"{base.setting} detail={bits}b@{within_db:g}dB"
    if amplitude_layers is not None:  # the amplitude's layers, as its own setting names them
        setting += f" cells on amplitude +{amplitude.setting.removeprefix(plain)}"
    return Method(name, "mmslim", setting, enc, dec)


def layered_method(
    name: str,
    model,
    detail_bits: int = 3,
    floor_step: float | None = None,
    repairs: tuple[dict, ...] | None = None,
    exact_repairs: bool = False,
    frame_shape=FRAME_SHAPE,
) -> Method:
    """mmSlim's amplitude codec with layers beside its file, each optional, applied in this order
    at the receiver: an amplitude detail layer of ``detail_bits`` bits (0: none), a floor layer
    (:mod:`mmslim.codec.floor_layer`) of ``floor_step`` dB (0: level only; None: none), a repair
    list (:mod:`mmslim.codec.repairs`) made against what the others leave, for the CA-CFAR
    settings ``repairs`` (None: no list), keeping exactly the original's detections with
    ``exact_repairs``."""
    from mmslim.codec.detail import encode_detail
    from mmslim.codec.floor_layer import encode_floor
    from mmslim.codec.layers import apply_amplitude_layers
    from mmslim.codec.repairs import encode_repairs

    base = model_method(name, "mmslim", model, "amplitude", frame_shape)

    def enc(maps, amp):
        file = base.compress(maps, amp)
        amp_hat = base.decompress(file)  # what the receiver decodes, floor="none"
        sent = WithDetail(file, b"", amp_hat)
        if detail_bits:
            sent.detail = encode_detail(maps, amp_hat, detail_bits, kind="amplitude")
        if floor_step is not None:
            sent.floor = encode_floor(maps, amp_hat, floor_step)
        if repairs is not None:  # made against what the receiver has before it
            shown = apply_amplitude_layers(amp_hat, sent.detail, sent.floor)
            sent.repairs = encode_repairs(maps, shown, detectors=repairs, exact=exact_repairs)
        return sent

    def dec(sent: WithDetail):
        amp_hat = base.decompress(sent.file)
        return apply_amplitude_layers(amp_hat, sent.detail, sent.floor, sent.repairs)

    setting = base.setting
    if detail_bits:
        setting += f" detail={detail_bits}b@43dB"
    if floor_step is not None:
        setting += f" floor-layer={f'texture {floor_step:g} dB' if floor_step else 'level'}"
    if repairs is not None:
        setting += " repairs" if repairs == DETECTORS else " repairs(bench detector only)"
        setting += " exact" if exact_repairs else ""
    return Method(name, "mmslim", setting, enc, dec)


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
    "LAYERS",
    "PHASE_ON_LAYERS",
    "Method",
    "WithDetail",
    "classical_methods",
    "detail_method",
    "layered_method",
    "model_method",
]
