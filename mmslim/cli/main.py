"""The ``mmslim`` command line. Each sub-command is a thin wrapper over the package.

mmslim info                      versions and the device that "auto" picks
mmslim simulate --out DIR ...    simulated frames in the original folder layout (or .npz)
mmslim train --stage ...         train the amplitude or the phase stage
mmslim prior --checkpoint ...    refit a checkpoint's entropy prior
mmslim compress|decompress|inspect   maps <-> .mmsl files (--backend torch or onnx)
mmslim export --checkpoint ...   sender.onnx, receiver.onnx, codec.json: a codec without PyTorch
mmslim bench TARGET              figures: simulate, train, codec, rd, quantizers (mmslim.cli.bench)
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from mmslim.cli import bench
from mmslim.cli.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    describe_error,
    what_was_saved,
)
from mmslim.cli.files import (
    load_stage_model,
    read_file,
    read_key,
    read_maps,
    write_file,
)
from mmslim.config import (
    BACKENDS,
    CODING_MODES,
    FLOOR_MODES,
    MASK_HEADS,
    MASK_MODES,
    OBJECTIVES,
    PRESETS,
    SCENARIO_NAMES,
    STAGES,
)
from mmslim.data.dataset import FRAME_SHAPE

KEY_HELP = (
    "file holding the HMAC key (>= 16 secret bytes, same at both ends) that authenticates the "
    "file against deliberate edits; make one with `head -c 32 /dev/urandom > link.key`"
)


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code. Every failure becomes one line on stderr naming
    the problem and the fix (exit 1; 2 for usage errors; 130 for Ctrl-C); ``--debug``, anywhere
    on the line, adds the traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: usage errors exit 2 (its message is printed), --help 0
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    if not hasattr(args, "func"):
        parser.print_usage(sys.stderr)
        print("mmslim: error: choose a command; `mmslim --help` lists them", file=sys.stderr)
        return EXIT_USAGE
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        try:
            saved = what_was_saved(args)
        except Exception as err:  # e.g. a second Ctrl-C is not caught: the user insists
            saved = f"could not tell what was saved ({describe_error(err)})"
        print(f"mmslim {args.command}: interrupted; {saved}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        if debug:
            traceback.print_exc()
        print(f"mmslim {args.command}: error: {describe_error(err, debug)}", file=sys.stderr)
        return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmslim", description=__doc__.split("\n\n")[0])
    p.add_argument("--debug", action="store_true", help="show tracebacks (anywhere on the line)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("info", help="versions and the device found")
    s.set_defaults(func=_info)

    s = sub.add_parser("simulate", help="simulate walkers into the original folder layout")
    s.add_argument("--out", required=True, type=Path, help="folder, or a file ending in .npz")
    s.add_argument("--subjects", type=int, default=4, help="walkers (default 4)")
    s.add_argument("--sequences", type=int, default=2, help="sequences per walker (default 2)")
    s.add_argument("--frames", type=int, default=20, help="frames per sequence (default 20)")
    s.add_argument("--seed", type=int, default=0, help="seed (same seed, same frames)")
    s.add_argument(
        "--scenario", default="default", choices=SCENARIO_NAMES,
        help="radar and scene set-up (default: the original captures'; lab77: a second one)",
    )  # fmt: skip
    s.set_defaults(func=_simulate)

    s = sub.add_parser(
        "train",
        help="train the amplitude or the phase stage",
        description="Train one stage. The same command runs on several processes under torchrun "
        "(one per GPU, or CPU processes with Gloo), on one machine or several: "
        "torchrun --nproc_per_node=N --no-python mmslim train ... (--batch-size is the global "
        "batch; rank 0 writes the files).",
    )
    s.add_argument("--stage", required=True, choices=STAGES)
    s.add_argument("--data", required=True, type=Path, help="data folder or .npz bundle")
    s.add_argument("--out", required=True, type=Path, help="folder for checkpoint and history")
    s.add_argument("--preset", default="cpu-small", choices=PRESETS)
    s.add_argument("--epochs", type=int, help="override the preset's epochs")
    s.add_argument("--batch-size", type=int, help="override the preset's (global) batch size")
    s.add_argument("--lr", type=float, help="one learning rate for every part")
    s.add_argument("--seed", type=int, help="override the seed")
    s.add_argument("--objective", choices=OBJECTIVES, help="override the preset's objective")
    s.add_argument("--rate-weight", type=float, help="lambda of the rate term (bits/element)")
    s.add_argument("--mask-head", choices=MASK_HEADS, help="MaskNet head (reference: the paper's)")
    s.add_argument("--mask", choices=MASK_MODES, help="learned, hard (thresholded), or ablations")
    s.add_argument(
        "--fine-gate", type=float, metavar="LEVEL",
        help="send fine latents only near mask values >= LEVEL, the rest as code 0 (0: all)",
    )  # fmt: skip
    s.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, ...")
    s.add_argument("--resume", action="store_true", help="continue OUT/<stage>.pt")
    s.add_argument("--overwrite", action="store_true", help="start over if OUT/<stage>.pt exists")
    s.add_argument("--amplitude-checkpoint", type=Path, help="amplitude.pt (phase stage)")
    s.add_argument("--tensorboard", action="store_true", help="also log to OUT/tensorboard")
    s.add_argument(
        "--init", type=Path, help="fine-tune: start from this checkpoint's weights (same preset)"
    )
    s.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="FIELD=VALUE",
        help="override any TrainConfig field, e.g. --set floor_weight=1 spread_weight=0",
    )
    s.set_defaults(func=_train)

    s = sub.add_parser("prior", help="refit a checkpoint's entropy prior on its training split")
    s.add_argument("--checkpoint", required=True, type=Path)
    s.add_argument("--data", required=True, type=Path, help="the data it was trained on")
    s.add_argument(
        "--fine-gate", type=float, metavar="LEVEL",
        help="first set the sender's fine gate (ModelConfig.fine_gate): a lower rate, same weights",
    )  # fmt: skip
    s.add_argument(
        "--gate-detections", action=argparse.BooleanOptionalAction, default=None,
        help="with the gate, also send the fine latents near CA-CFAR detections "
             "(ModelConfig.gate_detections; default: as the checkpoint)",
    )  # fmt: skip
    s.add_argument(
        "--coarse-codes", type=int, metavar="N",
        help="first let the sender choose among N coarse codes only, chosen on the training "
             "frames (ModelConfig.coarse_codes, mmslim.codec.coarse; 0: all codes)",
    )  # fmt: skip
    s.add_argument("--out", type=Path, help="write here instead of over --checkpoint")
    s.set_defaults(func=_prior)

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
    s.set_defaults(func=_decompress)

    s = sub.add_parser("export", help="sender.onnx, receiver.onnx and codec.json of a checkpoint")
    s.add_argument("--checkpoint", required=True, type=Path, help="amplitude.pt or phase.pt")
    s.add_argument("--out", required=True, type=Path, help="folder for the exported codec")
    s.set_defaults(func=_export)

    s = sub.add_parser("inspect", help="header, frame count, bits per element, ratios")
    s.add_argument("input", type=Path)
    s.set_defaults(func=_inspect)

    bench.add_parser(sub)
    return p


def _info(args) -> None:
    import platform

    import torch

    from mmslim import __version__
    from mmslim.training.device import describe_device, resolve_device

    print(f"mmslim   {__version__}")
    print(f"python   {platform.python_version()}")
    print(f"torch    {torch.__version__}")
    print(f"device   {describe_device(resolve_device('auto'))}  (what device='auto' picks)")


def _simulate(args) -> None:
    from mmslim.data.simulator import simulate_dataset, write_dataset

    if args.out.suffix == ".npz":
        from mmslim.data.dataset import save_bundle

        frames = simulate_dataset(
            args.subjects, args.sequences, args.frames, args.seed, scenario=args.scenario
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save_bundle(frames, args.out)
        print(f"wrote {len(frames)} frames to {args.out}")
    else:
        n = write_dataset(
            args.out, args.subjects, args.sequences, args.frames, args.seed, scenario=args.scenario
        )
        print(f"wrote {n} frames to {args.out}/amplitude and {args.out}/phase")


def _field_values(config_class, pairs: list[str]) -> dict:
    """``["name=value", ...]`` -> ``{name: value}`` typed as the dataclass field's default."""
    import dataclasses

    defaults = {f.name: f.default for f in dataclasses.fields(config_class)}
    out = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or name not in defaults:
            raise ValueError(
                f"--set {pair!r}: expected FIELD=VALUE with FIELD one of {', '.join(defaults)}"
            )
        kind = type(defaults[name])
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"--set {pair!r}: {name} takes true or false")
            out[name] = text.lower() in ("true", "1")
        else:
            try:
                out[name] = kind(text)
            except ValueError:
                raise ValueError(f"--set {pair!r}: {name} takes a {kind.__name__}") from None
    return out


def _train(args) -> None:
    from mmslim.config import ModelConfig, TrainConfig
    from mmslim.training.distributed import launch_env
    from mmslim.training.fit import train

    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "tensorboard": args.tensorboard or None,
        "objective": args.objective,
        "rate_weight": args.rate_weight,
    }
    if args.lr is not None:
        overrides.update(lr_hi=args.lr, lr_lo=args.lr, lr_mask=args.lr)
    overrides.update(_field_values(TrainConfig, args.set))
    tcfg = TrainConfig.preset(args.preset, **{k: v for k, v in overrides.items() if v is not None})
    model_overrides = {"mask_head": args.mask_head, "mask": args.mask, "fine_gate": args.fine_gate}
    mcfg = ModelConfig.preset(
        args.preset, **{k: v for k, v in model_overrides.items() if v is not None}
    )
    args.started = time.time()  # on Ctrl-C, tells this run's checkpoint from an older one
    result = train(
        args.stage,
        args.data,
        args.out,
        model_config=mcfg,
        train_config=tcfg,
        amplitude_checkpoint=args.amplitude_checkpoint,
        resume=args.resume,
        overwrite=args.overwrite,
        device=args.device,
        init=args.init,
    )
    if launch_env()[0] != 0:  # under torchrun, rank 0 alone reports
        return
    last = result.history[-1] if result.history else {}
    if "val_ssim" in last:
        ssim, psnr = last["val_ssim"], last["val_psnr"]
        print(f"epoch {last['epoch']}: validation SSIM {ssim:.4f}, PSNR {psnr:.2f} dB")
    print(f"checkpoint: {result.checkpoint}")


def _prior(args) -> None:
    from mmslim.codec.maps import fit_prior
    from mmslim.data.dataset import RadarFrames, load_frames
    from mmslim.training.checkpoint import load_model, save_checkpoint

    model, state = load_model(args.checkpoint)
    if args.fine_gate is not None or args.gate_detections is not None:  # another sender
        level = model.config.fine_gate if args.fine_gate is None else args.fine_gate
        model = model.with_fine_gate(level, args.gate_detections)
        state = {**state, "model_config": model.config.to_dict()}
    frames = load_frames(args.data, expected_shape=None)
    train = RadarFrames(frames, state["split"]["train"])
    if args.coarse_codes is not None:
        from mmslim.codec.coarse import choose_coarse_codes

        codes = ()
        if args.coarse_codes:
            codes = choose_coarse_codes(model, train, state["stage"], args.coarse_codes)
        model = model.with_coarse_codes(codes)
        state = {**state, "model_config": model.config.to_dict()}
    fit_prior(model, train, state["stage"])
    state = {k: v for k, v in state.items() if k not in ("prior", "format", "version")}
    out = args.out or args.checkpoint
    save_checkpoint({**state, "model": model.state_dict()}, out)
    print(f"prior of {len(state['split']['train'])} training subjects stored in {out}")


def _detail_arguments(s, file_help: str) -> None:
    s.add_argument("--amplitude-file", type=Path, help=f"{file_help} (.mmsl)")
    s.add_argument(
        "--amplitude-checkpoint", type=Path, help="the amplitude model that wrote --amplitude-file"
    )


def _decoded_amplitude(args, frames: int, frame_shape, key):
    """The amplitude a receiver decodes from ``--amplitude-file``: what the phase detail layer's
    cells are chosen on, at both ends (``floor="none"``)."""
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
    return amp_hat


def _compress(args) -> None:
    from mmslim.codec.maps import compress_maps
    from mmslim.codec.rate import rate_report

    if args.detail_bits and not 1 <= args.detail_bits <= 8:  # before anything is written
        raise ValueError(f"--detail-bits {args.detail_bits}: give 1 to 8 bits per cell")
    key = read_key(args)
    model, kind = load_stage_model(args.checkpoint)
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
    if args.detail_bits:
        from mmslim.codec.detail import encode_detail
        from mmslim.codec.maps import decompress_maps

        if kind == "amplitude":  # the cells are chosen on what the receiver will decode
            amp_hat = decompress_maps(model, data, kind=kind, frame_shape=maps.shape[1:],
                                      key=key)[0]  # fmt: skip
        detail = encode_detail(maps, amp_hat, args.detail_bits, kind=kind)
        path = Path(f"{args.output}.detail")
        write_file(path, detail)
        both = 8 * (len(data) + len(detail)) / maps.size
        print(f"detail layer -> {path} ({len(detail)} bytes): {both:.4f} bits/element with it")


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
    floor = "none" if detail is not None else args.floor  # the layer's cells are chosen on it
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
    elif detail is not None:
        from mmslim.codec.detail import refine_amplitude
        from mmslim.codec.floor import restore_floor, seed_of

        maps = refine_amplitude(maps, detail)
        if args.floor != "none":  # drawn after the layer, on the refined map
            maps = restore_floor(maps, args.floor, seed_of(data))
    output = args.output if args.output.suffix == ".npy" else Path(f"{args.output}.npy")
    buffer = io.BytesIO()
    np.save(buffer, maps)
    write_file(output, buffer.getvalue())
    first, n = decoded.header.first_sequence, len(maps)
    numbers = f"numbered {first} to {first + n - 1}" if n else "none"
    print(f"{n} {decoded.kind} frame(s) of {maps.shape[1:]} ({numbers}) -> {output}")


def _export(args) -> None:
    from mmslim.export.onnx import export_onnx

    model, kind = load_stage_model(args.checkpoint)
    for path in export_onnx(model, args.out, kind=kind):
        print(f"{kind} {path.stem}: {path} ({path.stat().st_size} bytes)")


def _inspect(args) -> None:
    from mmslim.codec import rate_report, read_header

    data = read_file(args.input, ".mmsl file")
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


if __name__ == "__main__":
    raise SystemExit(main())
