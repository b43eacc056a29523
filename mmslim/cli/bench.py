"""``mmslim bench <target>``: one subcommand per benchmark, each with only its own flags.

Benchmarks print figures; they never pass or fail (speed depends on the machine and its load).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mmslim.config import BACKENDS, KINDS, PRESETS, QUANTIZER_BENCH_RECIPES, QUANTIZER_BRANCHES


def add_parser(sub) -> None:
    """Add ``bench`` and its targets to the top-level subparsers ``sub``."""
    bench = sub.add_parser("bench", help="print speed, rate and distortion figures")
    targets = bench.add_subparsers(dest="target", metavar="TARGET", required=True)

    s = targets.add_parser("simulate", help="simulator frames/s")
    s.add_argument("--frames", type=int, default=200, help="frames to simulate (default 200)")
    s.set_defaults(func=_simulate)

    s = targets.add_parser("train", help="s/step and encode/decode frames/s of both presets")
    s.set_defaults(func=_train)

    s = targets.add_parser("speed", help="mmSlim against JPEG XL / JPEG 2000: frames/s, latency")
    s.add_argument("--data", type=Path, help="data (default: the shipped sample)")
    s.add_argument("--checkpoint", type=Path, help="mmSlim checkpoint (default: amplitude.pt)")
    s.add_argument("--frames", type=int, default=128, help="held-out frames (default 128)")
    s.add_argument("--repeat", type=int, default=5, help="rounds, best kept (default 5)")
    s.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="default: 1 2")
    s.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    s.add_argument("--latency-calls", type=int, default=30, help="single-frame calls (30)")
    s.add_argument("--memory-frames", type=int, nargs="*", default=[1, 64, 256, 1024],
                   help="frames per call for peak memory (none: skip)")  # fmt: skip
    s.add_argument("--int8", action="store_true", help="also the int8 ONNX sender")
    s.set_defaults(func=_speed)

    s = targets.add_parser("ddp", help="training samples/s under torchrun with 1, 2... processes")
    s.add_argument("--nproc", type=int, nargs="+", default=[1, 2], help="process counts (1 2)")
    s.add_argument("--preset", default="cpu-small", choices=PRESETS)
    s.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    s.add_argument("--device", default="cpu", help="cpu (Gloo) or cuda (NCCL, a GPU each)")
    s.add_argument("--threads", type=int, default=1, help="CPU threads per process (default 1)")
    s.add_argument("--batch-size", type=int, help="global batch (default: the preset's)")
    s.add_argument("--data", type=Path, help="data (default: the shipped sample)")
    s.add_argument("--frames-per-sequence", type=int, help="use only the first frames")
    s.add_argument("--out", type=Path, default=Path("runs/bench_ddp"), help="output folder")
    s.set_defaults(func=_ddp)

    s = targets.add_parser("codec", help="bits/element and speeds of the real codec")
    s.add_argument("--data", type=Path, help="data (default: the shipped sample)")
    s.add_argument("--checkpoint-dir", type=Path, help="folder of amplitude.pt and phase.pt")
    s.set_defaults(func=_codec)

    s = targets.add_parser("rd", help="rate-distortion against ablations and classical codecs")
    s.add_argument("--data", type=Path, help="data (default: the shipped sample)")
    s.add_argument("--checkpoint", type=Path, help="mmSlim amplitude.pt or phase.pt")
    s.add_argument("--ablations", type=Path, help="folder of NAME/{amplitude,phase}.pt")
    s.add_argument("--train-ablations", action="store_true", help="train the ablations first")
    s.add_argument("--epochs", type=int, help="epochs for --train-ablations")
    s.add_argument("--frames", type=int, help="use at most this many validation frames")
    s.add_argument("--kind", choices=[*KINDS, "both"], default="both")
    s.add_argument(
        "--scenario", choices=["held-out", "lab77", "both"], default="both",
        help="held-out walkers of --data, frames of another simulated set-up, or both",
    )  # fmt: skip
    s.add_argument("--operating-points", type=Path, help="folder of NAME/{amplitude,phase}.pt")
    s.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    s.add_argument("--out", type=Path, default=Path("runs/rd"), help="output folder")
    s.set_defaults(func=_rd)

    s = targets.add_parser("link", help="previews and lost fine indices: what a lossy link does")
    s.add_argument("--data", type=Path, help="data (default: the shipped sample)")
    s.add_argument("--checkpoint", type=Path, help="mmSlim amplitude.pt (default: shipped)")
    s.add_argument("--frames", type=int, default=40, help="validation frames (default 40)")
    s.set_defaults(func=_link)

    s = targets.add_parser("rate", help="the loss's rate estimate against the real file size")
    s.add_argument("--data", type=Path, help="data (default: the shipped sample)")
    s.add_argument("--checkpoint", type=Path, nargs="+", help="checkpoints (default: shipped)")
    s.add_argument("--frames", type=int, default=60, help="validation frames (default 60)")
    s.set_defaults(func=_rate)

    s = targets.add_parser("explorer", help="redraw times of notebook 08's mask explorer")
    s.add_argument("--data", type=Path, help="data (default: the shipped sample)")
    s.add_argument("--checkpoint-dir", type=Path, help="folder of amplitude.pt and phase.pt")
    s.add_argument("--repeats", type=int, default=5, help="redraws per kind of change (5)")
    s.set_defaults(func=_explorer)

    s = targets.add_parser("quantizers", help="every quantizer variant, one budget, compared")
    s.add_argument("--data", type=Path, help="data (default: the shipped sample)")
    s.add_argument("--variants", nargs="+", help="variant names (default: all)")
    s.add_argument("--branches", choices=QUANTIZER_BRANCHES, default="both")
    s.add_argument("--epochs", type=int, default=5, help="epochs per variant (default 5)")
    s.add_argument("--frames-per-sequence", type=int, help="use only the first frames")
    s.add_argument("--seed", type=int, default=0, help="training seed")
    s.add_argument("--recipe", choices=QUANTIZER_BENCH_RECIPES, default="cpu-small",
                   help="cpu-small (today's) or ssim-v1 (that of the shipped results)")  # fmt: skip
    s.add_argument("--resume", action="store_true", help="keep finished variants")
    s.add_argument("--out", type=Path, default=Path("runs/quantizers"), help="output folder")
    s.set_defaults(func=_quantizers)


def _simulate(args: argparse.Namespace) -> None:
    from mmslim.bench.speed import bench_simulate
    from mmslim.files import print_table

    print_table(bench_simulate(args.frames))


def _train(args: argparse.Namespace) -> None:
    from mmslim.bench.speed import bench_train
    from mmslim.files import print_table

    print_table(bench_train())


def _speed(args: argparse.Namespace) -> None:
    from mmslim.bench.speed import SpeedSettings, bench_speed, print_speed

    settings = SpeedSettings(
        frames=args.frames,
        repeat=args.repeat,
        threads=tuple(args.threads),
        backends=tuple(args.backends),
        latency_calls=args.latency_calls,
        memory_frames=tuple(args.memory_frames),
        int8=args.int8,
    )
    print_speed(bench_speed(args.checkpoint, args.data, settings))


def _ddp(args: argparse.Namespace) -> None:
    from mmslim.bench.ddp import bench_ddp
    from mmslim.files import print_table

    rows, epochs = bench_ddp(
        tuple(args.nproc), args.preset, args.epochs, args.device, args.threads,
        args.batch_size, args.data, args.frames_per_sequence, args.out,
    )  # fmt: skip
    print_table(rows)
    print("\nper epoch")
    print_table(epochs)


def _codec(args: argparse.Namespace) -> None:
    from mmslim.bench.codec import bench_codec
    from mmslim.files import print_table

    print_table(bench_codec(args.data, args.checkpoint_dir))


def _link(args: argparse.Namespace) -> None:
    from mmslim.bench.link import link_bench
    from mmslim.bench.rd import validation_frames
    from mmslim.data.dataset import load_frames
    from mmslim.data.samples import sample_path
    from mmslim.files import print_table
    from mmslim.training.checkpoint import load_model

    checkpoint = args.checkpoint or sample_path("pretrained", "amplitude.pt")
    model, _ = load_model(checkpoint, "amplitude")
    frames = load_frames(args.data or sample_path("sample.npz"))
    print_table(link_bench(model, validation_frames(frames, checkpoint, args.frames)))


def _rate(args: argparse.Namespace) -> None:
    from mmslim.bench.rate import rate_check
    from mmslim.bench.rd import validation_frames
    from mmslim.data.dataset import load_frames
    from mmslim.data.samples import sample_path
    from mmslim.files import print_table
    from mmslim.training.checkpoint import load_model

    frames = load_frames(args.data or sample_path("sample.npz"))
    rows = []
    for checkpoint in args.checkpoint or [sample_path("pretrained", f"{k}.pt") for k in KINDS]:
        model, state = load_model(checkpoint)
        val = validation_frames(frames, checkpoint, args.frames)
        rows.append({"checkpoint": str(checkpoint), **rate_check(model, val, state["stage"])})
    print_table(rows)


def _explorer(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from mmslim.bench.explorer import bench_explorer
    from mmslim.files import print_table

    print_table(bench_explorer(args.data, args.checkpoint_dir, args.repeats))


def _quantizers(args: argparse.Namespace) -> None:
    from mmslim.bench.quantizers import COLUMNS, run_quantizer_bench
    from mmslim.files import print_table

    rows = run_quantizer_bench(
        args.data,
        args.out,
        args.variants,
        epochs=args.epochs,
        frames_per_sequence=args.frames_per_sequence,
        branches=args.branches,
        seed=args.seed,
        resume=args.resume,
        recipe=args.recipe,
    )
    print_table([{k: r[k] for k in COLUMNS} for r in rows])
    print(f"\nwrote {args.out}/quantizers.csv and quantizers.png")


def _rd(args: argparse.Namespace) -> None:
    from mmslim.bench import rd
    from mmslim.bench.ablations import train_ablations
    from mmslim.data.samples import sample_path
    from mmslim.files import print_table

    data = args.data or sample_path("sample.npz")
    checkpoint = args.checkpoint or sample_path("pretrained", "amplitude.pt")
    ablations = args.ablations or sample_path("ablations")
    if args.train_ablations:
        train_ablations(data, ablations, checkpoint, args.epochs, KINDS)
    kinds = KINDS if args.kind == "both" else (args.kind,)
    scenarios = ("held-out", "lab77") if args.scenario == "both" else (args.scenario,)
    # the shipped operating points belong to the shipped model: default only without --checkpoint
    points = args.operating_points or (
        sample_path("operating_points") if args.checkpoint is None else None
    )
    rows = rd.run_rd(
        data, checkpoint, args.out, args.frames, ablations, kinds, progress=True,
        threads=args.threads, scenarios=scenarios, operating_points=points,
    )  # fmt: skip
    columns = ("codec", "setting", "bits_per_element", "ratio_f32", "enc_fps", "dec_fps")
    summary = rd.at_rate(rows)
    for scenario in scenarios:
        for kind in kinds:
            group = [r for r in rows if (r["scenario"], r["kind"]) == (scenario, kind)]
            print(f"\n{kind}, {scenario}: every method and setting")
            print_table([{k: r.get(k, "") for k in (*columns, *rd.METRICS[kind])} for r in group])
            print(f"\n{kind}, {scenario}: at mmSlim's rates (classical curves interpolated; "
                  "'' = not reached)")  # fmt: skip
            keys = ("codec", "setting", "bits_per_element", *rd.METRICS[kind])
            at = [r for r in summary if (r["scenario"], r["kind"]) == (scenario, kind)]
            print_table([{k: r.get(k, "") for k in keys} for r in at])
    written = "rd.csv, rd_at_rate.csv and rd_<scenario>_<kind>.png"
    if "amplitude" in kinds:
        from mmslim.bench.references import reference_rows
        from mmslim.files import write_csv

        reference = reference_rows(data, checkpoint, args.frames, scenarios)
        print(
            "\nnot codecs: the texture-free reference is the original's target cells and its "
            "floor's local mean (9 x 9, dB), the best a decoder that draws no floor texture "
            "could do; the 1 dB noise reference is the original plus 1 dB of white noise, how "
            "far each metric moves for an error that small"
        )
        keys = ("scenario", "codec", "psnr_over_constant", "cfar_f1", "cfar_f1_other",
                "amp_mae_db_target", "walker_velocity_err_mps",
                "walker_extent_err_mps")  # fmt: skip
        print_table([{k: r[k] for k in keys} for r in reference])
        if args.out is not None:
            write_csv(reference, Path(args.out) / "reference.csv")
            written += ", reference.csv"
    print(f"\nwrote {args.out}/{written}")
