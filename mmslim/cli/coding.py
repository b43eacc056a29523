"""The ``mmslim`` commands that read and write files: compress, decompress (with the detail
layers, floor layer and repair list beside a file), export and inspect. Each is a thin wrapper over
:mod:`mmslim.codec` and :mod:`mmslim.export`; :mod:`mmslim.cli.main` adds them to its parser."""

from __future__ import annotations

from pathlib import Path

from mmslim.cli.files import load_stage_model, read_file, read_key, read_maps, write_file
from mmslim.config import BACKENDS, CODING_MODES, FLOOR_MODES
from mmslim.data.dataset import FRAME_SHAPE

KEY_HELP = (
    "file holding the HMAC key (>= 16 secret bytes, same at both ends) that authenticates the "
    "file against deliberate edits; make one with `head -c 32 /dev/urandom > link.key`"
)


def add_parsers(sub) -> None:
    """Add compress, decompress, export and inspect to the sub-parsers ``sub``."""
    s = sub.add_parser("compress", help="compress maps into an .mmsl file")
    s.add_argument("input", type=Path, help=".npy map(s), a data folder, or an .npz bundle")
    s.add_argument("output", type=Path, help="the .mmsl file to write")
    s.add_argument("--checkpoint", required=True, type=Path, help="amplitude.pt or phase.pt")
    s.add_argument("--mode", default="ans", choices=CODING_MODES)
    s.add_argument("--amplitude", type=Path, help="amplitude .npy for a phase .npy input")
    s.add_argument("--key-file", type=Path, help=KEY_HELP)
    s.add_argument("--first-sequence", type=int, default=0, help="number of the first frame")
    s.add_argument("--backend", default="torch", choices=BACKENDS, help="runs the sender")
    _detail_arguments(s, "with --detail-bits, the amplitude file these frames go with")
    s.add_argument(
        "--detail-bits", type=int, default=0, metavar="B",
        help="also write OUTPUT.detail, the detail layer of the strongest cells at B bits each "
             "(mmslim.codec.detail): their amplitude's error, or their phase (a phase model "
             "needs --amplitude-file and --amplitude-checkpoint)",
    )  # fmt: skip
    s.add_argument(
        "--floor-layer", type=float, metavar="DB",
        help="amplitude only: also write OUTPUT.floor, the floor layer (mmslim.codec.floor_layer): "
             "the noise floor's level per block, and with DB > 0 its texture in steps of DB dB "
             "(0: the level only, a few bytes a frame)",
    )  # fmt: skip
    s.add_argument(
        "--repairs", action="store_true",
        help="amplitude only: also write OUTPUT.repairs, the repair list (mmslim.codec.repairs): "
             "cells the receiver's map (with the layers above) misses or on which CA-CFAR "
             "decides otherwise than on the original, by position",
    )  # fmt: skip
    s.add_argument(
        "--exact-repairs", action="store_true",
        help="with --repairs: list enough cells that CA-CFAR finds exactly the original's "
             "detections (not only within a cell), so the walker estimates made from them are "
             "the original's; 1.4 to 2.5 times the bytes on the benchmark's frames",
    )  # fmt: skip
    s.set_defaults(func=_compress)

    s = sub.add_parser("decompress", help="decode an .mmsl file to an .npy (N, H, W)")
    s.add_argument("input", type=Path)
    s.add_argument("output", type=Path)
    s.add_argument("--checkpoint", required=True, type=Path, help="the model that wrote it")
    s.add_argument("--key-file", type=Path, help=KEY_HELP)
    s.add_argument(
        "--frame-shape",
        nargs=2,
        type=int,
        default=list(FRAME_SHAPE),
        metavar=("H", "W"),
        help="frame size to expect (default %(default)s); other files are refused",
    )
    s.add_argument(
        "--first-sequence",
        type=int,
        help="refuse a file that does not start at this frame number (the previous file's "
        "first sequence + its frames): reveals frames lost between files",
    )
    s.add_argument(
        "--floor",
        default="none",
        choices=FLOOR_MODES,
        help="amplitude maps' noise floor: as decoded (default), its local median (smooth), "
        "or that plus seeded noise texture (noise)",
    )
    s.add_argument("--backend", default="torch", choices=BACKENDS, help="runs the receiver")
    _detail_arguments(s, "with --detail, the amplitude file of the same frames")
    s.add_argument(
        "--detail", type=Path, metavar="FILE",
        help="the detail layer written beside the file (compress --detail-bits); a phase "
             "file's needs --amplitude-file and --amplitude-checkpoint",
    )  # fmt: skip
    s.add_argument(
        "--floor-layer", type=Path, metavar="FILE",
        help="the floor layer written beside an amplitude file (compress --floor-layer); it "
             "draws the floor, so --floor stays none",
    )  # fmt: skip
    s.add_argument(
        "--repairs", type=Path, metavar="FILE",
        help="the repair list written beside an amplitude file (compress --repairs), applied "
             "last; pass the same layers it was made with, and no --floor",
    )  # fmt: skip
    s.set_defaults(func=_decompress)

    s = sub.add_parser("export", help="sender.onnx, receiver.onnx and codec.json of a checkpoint")
    s.add_argument("--checkpoint", required=True, type=Path, help="amplitude.pt or phase.pt")
    s.add_argument("--out", required=True, type=Path, help="folder for the exported codec")
    s.set_defaults(func=_export)

    s = sub.add_parser(
        "inspect", help="header, frame count, bits per element, ratios (of a file or a layer)"
    )
    s.add_argument("input", type=Path)
    s.set_defaults(func=_inspect)


def _detail_arguments(s, file_help: str) -> None:
    s.add_argument("--amplitude-file", type=Path, help=f"{file_help} (.mmsl)")
    s.add_argument(
        "--amplitude-checkpoint", type=Path, help="the amplitude model that wrote --amplitude-file"
    )
    s.add_argument(
        "--amplitude-layers", action="store_true",
        help="choose the phase detail layer's cells on the amplitude with the layers written "
             "beside --amplitude-file (its .detail, .floor and .repairs, those present), as a "
             "receiver of them all has it: the same flag at both ends",
    )  # fmt: skip


def _check_amplitude_layers_flag(args, kind: str, detail) -> None:
    """``--amplitude-layers`` only means something for a phase file's detail layer."""
    if args.amplitude_layers and not (kind == "phase" and detail):
        raise ValueError(
            "--amplitude-layers chooses a phase detail layer's cells: use it with a phase model "
            "and --detail-bits (compress) or --detail (decompress)"
        )


def _decoded_amplitude(args, frames: int, frame_shape, key):
    """The amplitude a receiver decodes from ``--amplitude-file``: what the phase detail layer's
    cells are chosen on, at both ends (``floor="none"``; with ``--amplitude-layers``, the layers
    beside the file applied)."""
    from mmslim.codec.maps import decompress_maps

    if args.amplitude_file is None or args.amplitude_checkpoint is None:
        raise ValueError(
            "the phase detail layer chooses its cells on the decoded amplitude: pass "
            "--amplitude-file (the .mmsl of the same frames) and --amplitude-checkpoint"
        )
    model, kind = load_stage_model(args.amplitude_checkpoint)
    if kind != "amplitude":
        raise ValueError(f"--amplitude-checkpoint {args.amplitude_checkpoint} is a {kind} model")
    data = read_file(args.amplitude_file, ".mmsl file")
    amp_hat, _ = decompress_maps(model, data, kind="amplitude", frame_shape=tuple(frame_shape),
                                 key=key)  # fmt: skip
    if len(amp_hat) != frames:
        raise ValueError(
            f"--amplitude-file holds {len(amp_hat)} frames, the phase {frames}: pass the "
            "amplitude file of the same frames"
        )
    if args.amplitude_layers:
        from mmslim.codec.layers import apply_amplitude_layers

        beside = {k: Path(f"{args.amplitude_file}.{k}") for k in ("detail", "floor", "repairs")}
        found = {k: read_file(p, f"amplitude {k} layer") for k, p in beside.items() if p.is_file()}
        if not found:
            raise ValueError(f"--amplitude-layers: no .detail, .floor or .repairs beside "
                             f"{args.amplitude_file}")  # fmt: skip
        amp_hat = apply_amplitude_layers(amp_hat, **found)
    return amp_hat


def _compress(args) -> None:
    from mmslim.codec.maps import compress_maps
    from mmslim.codec.rate import rate_report

    if args.detail_bits and not 1 <= args.detail_bits <= 8:  # before anything is written
        raise ValueError(f"--detail-bits {args.detail_bits}: give 1 to 8 bits per cell")
    step = args.floor_layer
    if step is not None and not (step == 0 or 0.5 <= step < 1e6):
        raise ValueError(f"--floor-layer {step:g}: give 0 (the level only) or a texture step of "
                         "at least 0.5 dB")  # fmt: skip
    key = read_key(args)
    model, kind = load_stage_model(args.checkpoint)
    if step is not None and kind != "amplitude":
        raise ValueError(f"--floor-layer codes an amplitude map's floor; {args.checkpoint} is a "
                         f"{kind} model")  # fmt: skip
    if args.repairs and kind != "amplitude":
        raise ValueError(f"--repairs lists amplitude cells; {args.checkpoint} is a {kind} model")
    if args.exact_repairs and not args.repairs:
        raise ValueError("--exact-repairs is a rule of the repair list: give --repairs too")
    _check_amplitude_layers_flag(args, kind, args.detail_bits)
    maps, amp = read_maps(args.input, kind, args.amplitude)
    amp_hat = None
    if args.detail_bits and kind == "phase":  # before anything is written: a missing amplitude
        amp_hat = _decoded_amplitude(args, len(maps), maps.shape[1:], key)  # file stops here
    data = compress_maps(
        model,
        maps,
        kind,
        args.mode,
        amp,
        progress=True,
        key=key,
        first_sequence=args.first_sequence,
        backend=args.backend,
    )
    write_file(args.output, data)
    r = rate_report(data, maps.size)
    print(
        f"{len(maps)} {kind} frame(s) -> {args.output} ({len(data)} bytes): "
        f"{r.bits_per_element:.4f} bits/element, {r.ratio_vs_float32:.1f}x vs float32"
    )
    detail = None
    if kind == "amplitude" and (args.detail_bits or step is not None or args.repairs):
        from mmslim.codec.maps import decompress_maps

        # every amplitude layer is made against what the receiver will decode
        amp_hat = decompress_maps(model, data, kind=kind, frame_shape=maps.shape[1:], key=key)[0]
    if args.detail_bits:
        from mmslim.codec.detail import encode_detail

        detail = encode_detail(maps, amp_hat, args.detail_bits, kind=kind)
        path = Path(f"{args.output}.detail")
        write_file(path, detail)
        both = 8 * (len(data) + len(detail)) / maps.size
        print(f"detail layer -> {path} ({len(detail)} bytes): {both:.4f} bits/element with it")
    if step is not None or args.repairs:
        _amplitude_layers(args, maps, amp_hat, detail)


def _amplitude_layers(args, maps, amp_hat, detail: bytes | None) -> None:
    """Write the floor layer and the repair list of amplitude ``maps`` beside the file, given
    what the receiver decodes from it (``amp_hat``) and its detail layer, if one was written."""
    from mmslim.codec.detail import refine_amplitude

    shown = refine_amplitude(amp_hat, detail) if detail is not None else amp_hat
    if args.floor_layer is not None:
        from mmslim.codec.floor_layer import encode_floor, refine_floor

        layer = encode_floor(maps, amp_hat, args.floor_layer)
        shown = refine_floor(shown, layer, amp_hat)
        _write_layer(Path(f"{args.output}.floor"), layer, "floor layer", maps.size)
    if args.repairs:
        from mmslim.codec.repairs import encode_repairs

        repairs = encode_repairs(maps, shown, exact=args.exact_repairs)
        _write_layer(Path(f"{args.output}.repairs"), repairs, "repair list", maps.size)


def _write_layer(path: Path, data: bytes, what: str, values: int) -> None:
    write_file(path, data)
    print(f"{what} -> {path} ({len(data)} bytes): {8 * len(data) / values:.4f} bits/element "
          "of its own")  # fmt: skip


def _decompress(args) -> None:
    import io

    import numpy as np

    from mmslim.codec.maps import decompress_maps

    key = read_key(args)
    data = read_file(args.input, ".mmsl file")
    if args.output.is_dir():
        raise ValueError(f"{args.output} is a folder; pass the name of the .npy file to write")
    model, kind = load_stage_model(args.checkpoint)
    detail = None
    if args.detail is not None:  # a layer of the other kind is refused before decoding
        from mmslim.codec.detail import detail_kind

        detail = read_file(args.detail, "detail layer")
        if detail_kind(detail) != kind:
            raise ValueError(
                f"{args.detail} is a {detail_kind(detail)} detail layer and {args.input} a "
                f"{kind} file: pass the layer written beside this file"
            )
    _check_amplitude_layers_flag(args, kind, args.detail)
    layers = _amplitude_layer_files(args, kind)  # checked before decoding
    # the layers' cells are chosen on the decoded map as it is
    floor = "none" if detail is not None or layers else args.floor
    maps, decoded = decompress_maps(
        model,
        data,
        progress=True,
        kind=kind,
        frame_shape=tuple(args.frame_shape),
        key=key,
        first_sequence=args.first_sequence,
        floor=floor,
        backend=args.backend,
    )
    if detail is not None and kind == "phase":
        from mmslim.codec.detail import refine_phase

        amp_hat = _decoded_amplitude(args, len(maps), maps.shape[1:], key)
        maps = refine_phase(maps, detail, amp_hat)
    elif detail is not None or layers:
        from mmslim.codec.floor import restore_floor, seed_of
        from mmslim.codec.layers import apply_amplitude_layers

        maps = apply_amplitude_layers(maps, detail, layers.get("floor"), layers.get("repairs"))
        if args.floor != "none":  # drawn after the detail layer, on the refined map
            maps = restore_floor(maps, args.floor, seed_of(data))
    output = args.output if args.output.suffix == ".npy" else Path(f"{args.output}.npy")
    buffer = io.BytesIO()
    np.save(buffer, maps)
    write_file(output, buffer.getvalue())
    first, n = decoded.header.first_sequence, len(maps)
    numbers = f"numbered {first} to {first + n - 1}" if n else "none"
    print(f"{n} {decoded.kind} frame(s) of {maps.shape[1:]} ({numbers}) -> {output}")


def _amplitude_layer_files(args, kind: str) -> dict[str, bytes]:
    """The floor layer and repair list given to decompress (``{"floor": ..., "repairs": ...}``,
    those given), checked: an amplitude file, no ``--floor`` beside them, the right magic."""
    from mmslim.codec.floor_layer import is_floor_layer
    from mmslim.codec.repairs import is_repair_list

    layers = {}
    for name, path, is_kind, flag, suffix in (
        ("floor", args.floor_layer, is_floor_layer, "--floor-layer", "floor"),
        ("repairs", args.repairs, is_repair_list, "--repairs", "repairs"),
    ):
        if path is None:
            continue
        if kind != "amplitude":
            raise ValueError(f"{flag} refines amplitude maps; {args.input} is a {kind} file")
        if args.floor != "none":
            raise ValueError(
                f"{flag} was made against the decoded floor: drop --floor {args.floor}"
            )
        layers[name] = read_file(path, f"{flag} file")
        if not is_kind(layers[name]):
            raise ValueError(f"{path} is not what {flag} takes (compress {flag} writes "
                             f"OUTPUT.{suffix})")  # fmt: skip
    return layers


def _export(args) -> None:
    from mmslim.export.onnx import export_onnx

    model, kind = load_stage_model(args.checkpoint)
    for path in export_onnx(model, args.out, kind=kind):
        print(f"{kind} {path.stem}: {path} ({path.stat().st_size} bytes)")


# The layers written beside a file, by magic; each has its version at byte 4 and N (uint32), H, W
# (uint16) at byte 8.
LAYER_MAGICS = {b"MMSD": "detail layer", b"MMSF": "floor layer", b"MMSR": "repair list"}


def _inspect(args) -> None:
    import struct

    from mmslim.codec import rate_report, read_header

    data = read_file(args.input, ".mmsl file or layer")
    if data[:4] in LAYER_MAGICS:  # a layer beside a file: what it is and what it costs
        what = LAYER_MAGICS[data[:4]]
        if len(data) < 16:
            raise ValueError(f"{args.input} is too short for a {what}")
        n, height, width = struct.unpack_from("<IHH", data, 8)
        per = 8 * len(data) / max(1, n * height * width)
        print(f"file          {args.input} ({len(data)} bytes, {what} v{data[4]})")
        print(f"frames        {n} of {height} x {width}")
        print(f"bits/element  {per:.4f} (the layer alone; add the file's)")
        return
    h = read_header(data)
    height, width = h.frame_shape
    elements = h.num_frames * height * width  # 0: no frames, or a frame size not recorded
    r = rate_report(data, max(1, elements))
    tag = "HMAC-SHA256 tag (verified on decode, with --key-file)" if h.tagged else "none"
    size = f"{height} x {width}" if height else "a size not recorded"
    print(f"file          {args.input} ({len(data)} bytes, format v{h.version})")
    print(f"kind, mode    {h.kind}, {h.mode}")
    print(f"model         {h.fingerprint.hex()}")
    print(f"frames        {h.num_frames} of {size}, first sequence {h.first_sequence}")
    print(f"index grids   hi {h.shape_hi}, lo {h.shape_lo}, K = {h.num_codes}")
    if elements:
        fixed = r.fixed_bits_per_element
        print(f"bits/element  {r.bits_per_element:.4f}  (fixed-length: {fixed:.4f})")
        print(
            f"ratio         {r.ratio_vs_float32:.1f}x vs float32, {r.ratio_vs_int16:.1f}x vs int16"
        )
    print(f"bits/index    {r.bits_per_index:.4f}")
    print(f"authenticated {tag}")
    print(
        f"bytes         header+tag+crc {r.header_bytes}, side info {r.side_bytes}, "
        f"framing {r.framing_bytes}, payload {r.payload_bytes}"
    )


__all__ = ["KEY_HELP", "add_parsers"]
