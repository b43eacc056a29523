"""The ``mmslim`` command line. Each sub-command is a thin wrapper over the package.

mmslim info                      versions and the device that "auto" picks
mmslim simulate --out DIR ...    simulated frames in the original folder layout (or .npz)
mmslim train --stage ...         train the amplitude or the phase stage
mmslim prior --checkpoint ...    refit a checkpoint's entropy prior
mmslim compress|decompress|inspect   maps <-> .mmsl files, detail layers (mmslim.cli.coding)
mmslim export --checkpoint ...   sender.onnx, receiver.onnx, codec.json: a codec without PyTorch
mmslim bench TARGET              figures: simulate, train, codec, rd, quantizers (mmslim.cli.bench)
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from mmslim.cli import bench, coding
from mmslim.cli.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    describe_error,
    what_was_saved,
)
from mmslim.config import (
    MASK_HEADS,
    MASK_MODES,
    OBJECTIVES,
    PRESETS,
    SCENARIO_NAMES,
    STAGES,
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

    coding.add_parsers(sub)
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


if __name__ == "__main__":
    raise SystemExit(main())
