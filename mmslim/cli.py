"""The ``mmslim`` command line. Each sub-command is a thin wrapper over the package.

mmslim info                      versions and the device that "auto" picks
mmslim simulate --out DIR ...    simulated frames in the original folder layout (or .npz)
mmslim train --stage ...         train the amplitude or the phase stage
mmslim bench simulate|train      print speed figures for this machine
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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
    s.add_argument("--stage", required=True, choices=["amplitude", "phase"])
    s.add_argument("--data", required=True, type=Path, help="data folder or .npz bundle")
    s.add_argument("--out", required=True, type=Path, help="folder for checkpoint and history")
    s.add_argument("--preset", default="cpu-small", choices=["paper", "cpu-small"])
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

    s = sub.add_parser("bench", help="speed figures for this machine")
    s.add_argument("what", choices=["simulate", "train"])
    s.add_argument("--frames", type=int, default=200, help="frames to time (simulate)")
    s.set_defaults(func=_bench)
    return p


def _info(args) -> None:
    import platform

    import torch

    from mmslim import __version__
    from mmslim.device import describe_device, resolve_device

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
    from mmslim.train import train

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


def _bench(args) -> None:
    from mmslim import bench

    if args.what == "simulate":
        bench.print_table(bench.bench_simulate(args.frames))
    elif args.what == "train":
        bench.print_table(bench.bench_train())


if __name__ == "__main__":
    raise SystemExit(main())
