"""Speed figures for this machine, printed by ``mmslim bench ...``.

Benchmarks print numbers; they never pass or fail. Each returns a list of rows (dicts) so a
notebook can tabulate them too.

``mmslim bench speed`` (:func:`bench_speed`) compares the whole codec path (maps in physical
units -> bytes -> maps) of mmSlim under each backend with JPEG XL and JPEG 2000 on the same
held-out frames, in one run: methods are timed round robin and the best of ``repeat`` rounds is
kept, so that a shared, noisy machine slows all of them alike; the ratio to JPEG XL is printed.
It adds the time of each part of the model, single-frame latency (median and 95th percentile of
warm calls) and the peak memory of one call against the number of frames in it
(:mod:`mmslim.bench.memory`).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch


def _timeit(fn, repeat: int, warmup: int = 1) -> float:
    """Seconds per call of ``fn`` (median of ``repeat`` after ``warmup`` calls)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def bench_simulate(n_frames: int = 200) -> list[dict]:
    """Frames/s of the radar simulator (scene, beat signal and range-Doppler processing)."""
    from mmslim.data.simulator import benchmark

    result = benchmark(n_frames)
    return [{"what": "simulate", "frames": n_frames, "threads": torch.get_num_threads(), **result}]


def bench_train(batch_size: int = 16, shape: tuple[int, int] = (224, 64)) -> list[dict]:
    """Seconds per training step and inference frames/s (encode, decode) for both presets."""
    torch.manual_seed(0)
    x = torch.rand(batch_size, 1, *shape)
    return [_bench_preset(preset, x) for preset in ("cpu-small", "paper")]


def _bench_preset(preset: str, x: torch.Tensor) -> dict:
    from mmslim.config import ModelConfig
    from mmslim.nn import MMSlim
    from mmslim.nn.losses import stage_loss

    model = MMSlim(ModelConfig.preset(preset))
    opt = torch.optim.Adam(model.parameters(), 1e-4, amsgrad=True)

    def step():
        loss = stage_loss(x, model(x))
        opt.zero_grad()
        loss.backward()
        opt.step()

    model.train()
    t_step = _timeit(step, repeat=5)
    model.eval()
    with torch.no_grad():
        enc = model.encode(x)
        t_enc = _timeit(lambda: model.encode(x), repeat=5)
        t_dec = _timeit(lambda: model.decode_indices(enc["indices_hi"], enc["indices_lo"]), 5)
    b = len(x)
    return {
        "preset": preset,
        "params": model.num_parameters(),
        "batch": b,
        "s_per_step": t_step,
        "train_frames_per_s": b / t_step,
        "encode_frames_per_s": b / t_enc,
        "decode_frames_per_s": b / t_dec,
    }


# --------------------------------------------------------------------- mmslim bench speed


@dataclass(frozen=True)
class SpeedSettings:
    """What ``mmslim bench speed`` measures."""

    frames: int = 128  # held-out frames per throughput measurement (repeated if fewer)
    repeat: int = 5  # rounds; each figure is the best round
    threads: tuple[int, ...] = (1, 2)  # torch and ONNX Runtime intra-op threads
    backends: tuple[str, ...] = ("torch", "onnx")  # mmSlim backends (mmslim.config.BACKENDS)
    jpegxl_distance: float = 4.0  # JPEG XL Butteraugli distance
    jpeg2k_level: float = 30.0  # JPEG 2000 knob of mmslim.bench.baselines (target PSNR, dB)
    latency_calls: int = 30  # warm single-frame calls for the latency percentiles
    memory_frames: tuple[int, ...] = (1, 64, 256, 1024)  # frames per call for peak memory
    int8: bool = False  # also the ONNX sender with int8 weights


def _held_out(data, checkpoint, n: int):
    """The model of ``checkpoint`` and ``n`` validation frames (amplitude, in dB) of ``data``,
    cycled when the split has fewer."""
    from mmslim.data.dataset import load_frames
    from mmslim.data.samples import sample_path
    from mmslim.training.checkpoint import load_model

    model, state = load_model(checkpoint or sample_path("pretrained", "amplitude.pt"))
    frames = load_frames(data or sample_path("sample.npz"), expected_shape=None)
    val = frames.of_subjects(state["split"]["val"])
    kind = state["stage"]
    take = np.arange(n) % len(val.amplitude)  # (n,)
    maps, amp = getattr(val, kind)[take], val.amplitude[take]  # (n, H, W) each
    return model, kind, np.ascontiguousarray(maps), np.ascontiguousarray(amp)


def _methods(model, kind, settings: SpeedSettings) -> dict:
    """name -> (compress(maps, amp) -> coded, decompress(coded) -> maps, size(coded) -> bytes);
    maps and amp (n, H, W) in physical units (amp: the amplitude a phase model's mask needs)."""
    from mmslim.bench import baselines
    from mmslim.codec.maps import compress_maps, decompress_maps
    from mmslim.export.backends import TorchBackend

    methods = {}
    runners = {f"mmslim-{name}": name for name in settings.backends}
    if "torch" in settings.backends:  # the PyTorch path with rounding-changing speed-ups
        runners["mmslim-torch fold+cl"] = TorchBackend(model, fold=True, channels_last=True)
    for label, backend in runners.items():
        methods[label] = (
            lambda m, a, b=backend: compress_maps(model, m, kind, mask_source=a, backend=b),
            lambda data, b=backend: decompress_maps(model, data, backend=b)[0],
            len,
        )
    for name, setting in (("jpegxl", settings.jpegxl_distance), ("jpeg2k", settings.jpeg2k_level)):
        codec = baselines.CODECS[name]
        methods[f"{name} {setting:g}"] = (
            lambda m, a, c=codec, s=setting: baselines.compress(c, s, m),
            baselines.decompress,
            len,
        )
    return methods


def _round_robin(tasks: dict, repeat: int, cpu: dict | None = None) -> dict[str, float]:
    """Best seconds of each task over ``repeat`` rounds, every task once per round in turn.
    ``cpu``, if given, receives each task's least CPU time (all threads of the process)."""
    best = {name: float("inf") for name in tasks}
    least_cpu = {name: float("inf") for name in tasks}
    for fn in tasks.values():  # warm-up: builds backends, loads libraries
        fn()
    for _ in range(repeat):
        for name, fn in tasks.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
            least_cpu[name] = min(least_cpu[name], time.process_time() - c0)
    if cpu is not None:
        cpu.update(least_cpu)
    return best


def bench_whole_path(model, kind, maps, amp, settings: SpeedSettings) -> list[dict]:
    """Compress and decompress frames/s of every method, same frames, round robin, per thread
    count; with bits per element and the ratio to JPEG XL's frames/s."""
    rows = []
    for threads in settings.threads:
        torch.set_num_threads(threads)
        methods = _methods(model, kind, settings)
        coded = {name: comp(maps, amp) for name, (comp, _, _) in methods.items()}
        tasks = {}
        for name, (comp, decomp, _) in methods.items():
            tasks[(name, "compress")] = lambda c=comp: c(maps, amp)
            tasks[(name, "decompress")] = lambda d=decomp, x=coded[name]: d(x)
        cpu: dict = {}
        best = _round_robin(tasks, settings.repeat, cpu)
        jxl = next(name for name in methods if name.startswith("jpegxl"))
        for name, (_, _, size) in methods.items():
            enc, dec = len(maps) / best[(name, "compress")], len(maps) / best[(name, "decompress")]
            rows.append({
                "method": name, "threads": threads, "frames": len(maps),
                "bits_per_element": 8 * size(coded[name]) / maps.size,
                "compress_fps": enc, "decompress_fps": dec,
                "compress_vs_jpegxl": enc * best[(jxl, "compress")] / len(maps),
                "decompress_vs_jpegxl": dec * best[(jxl, "decompress")] / len(maps),
                "compress_cpu_ms": 1e3 * cpu[(name, "compress")] / len(maps),
                "decompress_cpu_ms": 1e3 * cpu[(name, "decompress")] / len(maps),
            })  # fmt: skip
    return rows


def _parts(model, x01: np.ndarray, fold: bool) -> dict:
    """Each part of the sender and receiver as (module, inputs), on normalised frames."""
    from mmslim.export.graphs import Receiver, Sender

    sender, receiver = Sender(model, fold), Receiver(model, fold)
    x = torch.from_numpy(x01)
    with torch.inference_mode():
        mask = sender.mask(x)
        z_hi, z_lo = sender.encoder_hi(mask * x), sender.encoder_lo((1 - mask) * x)
        hi, lo = sender.search_hi(z_hi), sender.search_lo(z_lo)
        c_hi, c_lo = receiver.codes_hi(hi), receiver.codes_lo(lo)
    return {
        "masknet": (sender.mask_net, (x,)),
        "encoder_hi": (sender.encoder_hi, (x,)),
        "search_hi": (sender.search_hi, (z_hi,)),
        "encoder_lo": (sender.encoder_lo, (x,)),
        "search_lo": (sender.search_lo, (z_lo,)),
        "decoder_hi": (receiver.decoder_hi, (c_hi,)),
        "decoder_lo": (receiver.decoder_lo, (c_lo,)),
        "sender (all)": (sender, (x, x, torch.zeros(len(x), *hi.shape[1:], dtype=torch.bool))),
        "receiver (all)": (receiver, (hi, lo)),
    }


def bench_parts(model, maps, settings: SpeedSettings, batch_size: int) -> list[dict]:
    """Frames/s of each part alone in batches of ``batch_size``: under PyTorch in inference mode
    as the model computes it (``torch``), with BatchNorm folded and channels-last layout
    (``torch fold+cl``), and under ONNX Runtime (``onnx``: the folded part exported alone)."""
    from mmslim.data.dataset import normalize
    from mmslim.export.onnx import _export
    from mmslim.export.runtime import _session

    x01 = normalize(torch.from_numpy(maps))[0][:, None].numpy()  # (N, 1, H, W)
    exact, folded = _parts(model, x01, fold=False), _parts(model, x01, fold=True)
    rows = []
    for threads in settings.threads:
        torch.set_num_threads(threads)
        tasks = {}
        for name, (module, args) in exact.items():
            n, fast = len(args[0]), folded[name][0]
            batches = [tuple(a[i : i + batch_size] for a in args) for i in range(0, n, batch_size)]
            cl = copy.deepcopy(fast).to(memory_format=torch.channels_last)
            tasks[(name, "torch")] = lambda m=module, bs=batches: _run_torch(m, bs, False)
            tasks[(name, "torch fold+cl")] = lambda m=cl, bs=batches: _run_torch(m, bs, True)
            names = (tuple(f"in{i}" for i in range(len(args))), ("out",))
            session = _session(_export(fast, tuple(a[:2] for a in args), names), threads)
            taken = {i.name for i in session.get_inputs()}  # an unused input is not exported
            feeds = [{f"in{i}": a.numpy() for i, a in enumerate(b) if f"in{i}" in taken}
                     for b in batches]  # fmt: skip
            tasks[(name, "onnx")] = lambda s=session, f=feeds: [s.run(None, d) for d in f]
        best = _round_robin(tasks, settings.repeat)
        for (name, runtime), seconds in best.items():
            rows.append({"part": name, "runtime": runtime, "threads": threads,
                         "batch": batch_size, "fps": len(x01) / seconds})  # fmt: skip
    return rows


@torch.inference_mode()
def _run_torch(module, batches, channels_last: bool) -> None:
    for args in batches:
        if channels_last:
            args = [a.contiguous(memory_format=torch.channels_last) if a.dim() == 4 else a
                    for a in args]  # fmt: skip
        module(*args)


def bench_latency(model, kind, maps, amp, settings: SpeedSettings) -> list[dict]:
    """One frame per call, warm: milliseconds to compress, to decompress, and both (median and
    95th percentile of ``latency_calls`` calls each, frames taken in turn)."""
    rows = []
    for threads in settings.threads:
        torch.set_num_threads(threads)
        for name, (comp, decomp, _) in _methods(model, kind, settings).items():
            enc, dec = [], []
            for call in range(settings.latency_calls + 1):  # the first call warms up
                i = call % len(maps)
                t0 = time.perf_counter()
                coded = comp(maps[i : i + 1], amp[i : i + 1])
                t1 = time.perf_counter()
                decomp(coded)
                t2 = time.perf_counter()
                if call:
                    enc.append(t1 - t0)
                    dec.append(t2 - t1)
            both = np.add(enc, dec)
            row = {"method": name, "threads": threads, "calls": len(enc)}
            rows.append(
                {**row, **_ms("compress", enc), **_ms("decompress", dec), **_ms("both", both)}
            )
    return rows


def _ms(name: str, seconds) -> dict:
    ms = 1e3 * np.asarray(seconds)
    return {
        f"{name}_ms_median": float(np.median(ms)),
        f"{name}_ms_p95": float(np.percentile(ms, 95)),
    }


def _training_frames(data, checkpoint, n: int = 64) -> np.ndarray:
    """``n`` frames of the training split, normalised (n, 1, H, W): int8 calibration data."""
    from mmslim.data.dataset import load_frames, normalize
    from mmslim.data.samples import sample_path
    from mmslim.training.checkpoint import load_checkpoint

    state = load_checkpoint(checkpoint or sample_path("pretrained", "amplitude.pt"))
    frames = load_frames(data or sample_path("sample.npz"), expected_shape=None)
    train = frames.of_subjects(state["split"]["train"]).amplitude
    take = np.linspace(0, len(train) - 1, n).astype(int)  # (n,) spread over the split
    return normalize(torch.from_numpy(train[take]))[0][:, None].numpy()


def bench_int8(model, kind, maps, amp, settings: SpeedSettings, calibration) -> list[dict]:
    """The ONNX sender with int8 convolutions (dynamic; static, calibrated on ``calibration``
    training frames) against float32: share of indices equal to float32's, radar metrics of
    the reconstructions (amplitude models), and sender frames/s (one batch of all frames)."""
    from mmslim.data.arrays import denormalize, normalize
    from mmslim.export.backends import OnnxBackend
    from mmslim.metrics.radar import amplitude_metrics

    x01, vmin, vmax = normalize(torch.from_numpy(maps))
    x01 = x01[:, None].numpy()  # (N, 1, H, W)
    src = x01 if kind != "phase" else normalize(torch.from_numpy(amp))[0][:, None].numpy()
    rows = []
    for threads in settings.threads:
        torch.set_num_threads(threads)
        backends = {
            "float32": OnnxBackend(model),
            "int8 dynamic": OnnxBackend(model, int8=True),
            "int8 static": OnnxBackend(model, int8=True, calibration=calibration),
        }
        tasks = {name: (lambda b=b: b.encode(x01, src)) for name, b in backends.items()}
        best = _round_robin(tasks, settings.repeat)
        ref_hi, ref_lo = backends["float32"].encode(x01, src)
        for name, backend in backends.items():
            hi, lo = backend.encode(x01, src)
            x_hat = np.clip(backends["float32"].decode(hi, lo)[:, 0], 0, 1)  # (N, H, W)
            recon = denormalize(torch.from_numpy(x_hat), vmin, vmax).numpy()
            row = {"sender": name, "threads": threads, "sender_fps": len(maps) / best[name],
                   "hi_equal": float((hi == ref_hi).mean()),
                   "lo_equal": float((lo == ref_lo).mean())}  # fmt: skip
            if kind == "amplitude":
                m = amplitude_metrics(maps, recon)
                row.update({k: m[k] for k in ("amp_mae_db", "amp_mae_db_target", "cfar_f1")})
            rows.append(row)
    return rows


def print_speed(tables: dict) -> None:
    """Print the tables of :func:`bench_speed` with a line saying what each one is."""
    from mmslim.files import print_table

    notes = {
        "whole_path": "whole path (maps in dB -> bytes -> maps), frames/s, best round; "
        "ratios to JPEG XL in the same run; CPU ms per frame (all threads, least round)",
        "parts": "each part alone, frames/s, kernels on `threads` threads (inference mode; "
        "ONNX: the part exported alone)",
        "latency": "one frame per call, warm, ms",
        "int8": "ONNX sender in int8: indices equal to float32's, radar metrics of the maps",
        "memory": "peak resident memory of one call, MB (fresh process each)",
    }
    torch_threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {torch_threads} threads by default on this machine")
    for name, rows in tables.items():
        print(f"\n{notes[name]}")
        print_table(rows, digits=3)


def bench_speed(checkpoint=None, data=None, settings: SpeedSettings | None = None) -> dict:
    """Every table of ``mmslim bench speed``: ``whole_path``, ``parts``, ``latency``,
    ``memory`` (lists of rows), and with ``settings.int8`` the int8 sender's ``int8`` rows."""
    settings = settings or SpeedSettings()
    threads_before = torch.get_num_threads()
    model, kind, maps, amp = _held_out(data, checkpoint, settings.frames)
    from mmslim.export.backends import BATCH_SIZE

    try:
        tables = {
            "whole_path": bench_whole_path(model, kind, maps, amp, settings),
            "parts": bench_parts(model, maps, settings, BATCH_SIZE),
            "latency": bench_latency(model, kind, maps, amp, settings),
        }
        if settings.int8:
            calibration = _training_frames(data, checkpoint)
            tables["int8"] = bench_int8(model, kind, maps, amp, settings, calibration)
    finally:
        torch.set_num_threads(threads_before)
    if settings.memory_frames:
        from mmslim.bench.memory import bench_memory

        tables["memory"] = bench_memory(checkpoint, data, settings)
    return tables
