"""The ``mmslim`` command line. Each sub-command is a thin wrapper over the package.

mmslim info                      versions and the device that "auto" picks
mmslim simulate --out DIR ...    simulated frames in the original folder layout (or .npz)
mmslim train --stage ...         train the amplitude or the phase stage
mmslim prior --checkpoint ...    refit a checkpoint's entropy prior
mmslim compress|decompress|inspect   maps <-> .mmsl files (--backend torch or onnx)
mmslim export --checkpoint ...   sender.onnx and receiver.onnx for ONNX Runtime
mmslim bench TARGET              figures: simulate, train, codec, rd, quantizers (mmslim.cli.bench)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmslim.cli import bench
from mmslim.config import BACKENDS, CODING_MODES, PRESETS, STAGES


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        # Our documented errors (DataError, CheckpointError, BitstreamError) are ValueErrors
        # whose message already says what to do; no traceback for those.
        print(f"mmslim {args.command}: error: {err}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mmslim", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("info", help="versions and the device found")
    s.set_defaults(func=_info)

    s = sub.add_parser("simulate", help="simulate walkers into the original folder layout")
    s.add_argument("--out", required=True, type=Path, help="folder, or a file ending in .npz")
    s.add_argument("--subjects", type=int, default=4, help="walkers (default 4)")
    s.add_argument("--sequences", type=int, default=2, help="sequences per walker (default 2)")
    s.add_argument("--frames", type=int, default=20, help="frames per sequence (default 20)")
    s.add_argument("--seed", type=int, default=0, help="seed (same seed, same frames)")
    s.set_defaults(func=_simulate)

    s = sub.add_parser("train", help="train the amplitude or the phase stage")
    s.add_argument("--stage", required=True, choices=STAGES)
    s.add_argument("--data", required=True, type=Path, help="data folder or .npz bundle")
    s.add_argument("--out", required=True, type=Path, help="folder for checkpoint and history")
    s.add_argument("--preset", default="cpu-small", choices=PRESETS)
    s.add_argument("--epochs", type=int, help="override the preset's epochs")
    s.add_argument("--batch-size", type=int, help="override the preset's batch size")
    s.add_argument("--lr", type=float, help="one learning rate for every part")
    s.add_argument("--seed", type=int, help="override the seed")
    s.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, ...")
    s.add_argument("--resume", action="store_true", help="continue OUT/<stage>.pt")
    s.add_argument("--overwrite", action="store_true", help="start over if OUT/<stage>.pt exists")
    s.add_argument("--amplitude-checkpoint", type=Path, help="amplitude.pt (phase stage)")
    s.add_argument("--tensorboard", action="store_true", help="also log to OUT/tensorboard")
    s.set_defaults(func=_train)

    s = sub.add_parser("prior", help="refit a checkpoint's entropy prior on its training split")
    s.add_argument("--checkpoint", required=True, type=Path)
    s.add_argument("--data", required=True, type=Path, help="the data it was trained on")
    s.set_defaults(func=_prior)

    s = sub.add_parser("compress", help="compress maps into an .mmsl file")
    s.add_argument("input", type=Path, help=".npy map(s), a data folder, or an .npz bundle")
    s.add_argument("output", type=Path, help="the .mmsl file to write")
    s.add_argument("--checkpoint", required=True, type=Path, help="amplitude.pt or phase.pt")
    s.add_argument("--mode", default="ans", choices=CODING_MODES)
    s.add_argument("--amplitude", type=Path, help="amplitude .npy for a phase .npy input")
    s.add_argument("--backend", default="torch", choices=BACKENDS, help="runs the sender")
    s.set_defaults(func=_compress)

    s = sub.add_parser("decompress", help="decode an .mmsl file to an .npy (N, H, W)")
    s.add_argument("input", type=Path)
    s.add_argument("output", type=Path)
    s.add_argument("--checkpoint", required=True, type=Path, help="the model that wrote it")
    s.add_argument("--backend", default="torch", choices=BACKENDS, help="runs the receiver")
    s.set_defaults(func=_decompress)

    s = sub.add_parser("export", help="write sender.onnx and receiver.onnx of a checkpoint")
    s.add_argument("--checkpoint", required=True, type=Path, help="amplitude.pt or phase.pt")
    s.add_argument("--out", required=True, type=Path, help="folder for the two .onnx files")
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

        frames = simulate_dataset(args.subjects, args.sequences, args.frames, args.seed)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save_bundle(frames, args.out)
        print(f"wrote {len(frames)} frames to {args.out}")
    else:
        n = write_dataset(args.out, args.subjects, args.sequences, args.frames, args.seed)
        print(f"wrote {n} frames to {args.out}/amplitude and {args.out}/phase")


def _train(args) -> None:
    from mmslim.config import ModelConfig, TrainConfig
    from mmslim.training.fit import train

    overrides = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "tensorboard": args.tensorboard or None,
    }
    if args.lr is not None:
        overrides.update(lr_hi=args.lr, lr_lo=args.lr, lr_mask=args.lr)
    tcfg = TrainConfig.preset(args.preset, **{k: v for k, v in overrides.items() if v is not None})
    mcfg = ModelConfig.preset(args.preset)
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
    )
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
    frames = load_frames(args.data, expected_shape=None)
    fit_prior(model, RadarFrames(frames, state["split"]["train"]), state["stage"])
    state = {k: v for k, v in state.items() if k not in ("prior", "format", "version")}
    save_checkpoint({**state, "model": model.state_dict()}, args.checkpoint)
    print(f"prior of {len(state['split']['train'])} training subjects stored in {args.checkpoint}")


def _read_maps(path: Path, kind: str, amplitude: Path | None):
    """(maps (N, H, W), amplitude (N, H, W) or None) from .npy, a folder or a bundle."""
    import numpy as np

    from mmslim.data.dataset import load_frames

    if path.suffix == ".npy":
        maps = np.load(path, allow_pickle=False)
        amp = np.load(amplitude, allow_pickle=False) if amplitude else None
        if kind == "phase" and amp is None:
            raise ValueError("a phase .npy needs --amplitude FILE: the mask looks at amplitude")
        return _as_frames(maps), None if amp is None else _as_frames(amp)
    frames = load_frames(path, expected_shape=None)
    return getattr(frames, kind), frames.amplitude


def _as_frames(a):
    """One (H, W) map becomes (1, H, W); (N, H, W) stays."""
    return a[None] if a.ndim == 2 else a


def _compress(args) -> None:
    from mmslim.codec.maps import compress_maps
    from mmslim.codec.rate import rate_report
    from mmslim.training.checkpoint import load_model

    model, state = load_model(args.checkpoint)
    kind = state["stage"]
    maps, amp = _read_maps(args.input, kind, args.amplitude)
    data = compress_maps(model, maps, kind, args.mode, amp, progress=True, backend=args.backend)
    args.output.write_bytes(data)
    r = rate_report(data, maps.size)
    print(
        f"{len(maps)} {kind} frame(s) -> {args.output} ({len(data)} bytes): "
        f"{r.bits_per_element:.4f} bits/element, {r.ratio_vs_float32:.1f}x vs float32"
    )


def _decompress(args) -> None:
    import numpy as np

    from mmslim.codec.maps import decompress_maps
    from mmslim.training.checkpoint import load_model

    model, _ = load_model(args.checkpoint)
    maps, decoded = decompress_maps(
        model, args.input.read_bytes(), progress=True, backend=args.backend
    )
    np.save(args.output, maps)
    print(f"{len(maps)} {decoded.kind} frame(s) {maps.shape[1:]} -> {args.output}")


def _export(args) -> None:
    from mmslim.export.onnx import export_onnx
    from mmslim.training.checkpoint import load_model

    model, state = load_model(args.checkpoint)
    for path in export_onnx(model, args.out):
        print(f"{state['stage']} {path.stem}: {path} ({path.stat().st_size} bytes)")


def _inspect(args) -> None:
    from mmslim.codec import rate_report, read_header

    data = args.input.read_bytes()
    h = read_header(data)
    height, width = 4 * h.shape_hi[0], 4 * h.shape_hi[1]
    r = rate_report(data, h.num_frames * height * width)
    print(f"file          {args.input} ({len(data)} bytes, format v{h.version})")
    print(f"kind, mode    {h.kind}, {h.mode}")
    print(f"model         {h.fingerprint.hex()}")
    print(f"frames        {h.num_frames} of {height} x {width}")
    print(f"index grids   hi {h.shape_hi}, lo {h.shape_lo}, K = {h.num_codes}")
    print(f"bits/element  {r.bits_per_element:.4f}  (fixed-length: {r.fixed_bits_per_element:.4f})")
    print(f"ratio         {r.ratio_vs_float32:.1f}x vs float32, {r.ratio_vs_int16:.1f}x vs int16")
    print(
        f"bytes         header+crc {r.header_bytes}, side info {r.side_bytes}, "
        f"framing {r.framing_bytes}, payload {r.payload_bytes}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
