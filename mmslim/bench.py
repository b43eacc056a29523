"""Speed figures for this machine, printed by ``mmslim bench ...``.

Benchmarks print numbers; they never pass or fail. Each returns a list of rows (dicts) so a
notebook can tabulate them too.
"""

from __future__ import annotations

import time

import torch


def print_table(rows: list[dict]) -> None:
    """Print rows of dicts as an aligned text table."""
    if not rows:
        return
    keys = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_fmt(r.get(k, "")) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    print("  ".join(k.ljust(w) for k, w in zip(keys, widths)))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


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
    from mmslim.train import stage_loss

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


def bench_codec(data=None, checkpoint_dir=None) -> list[dict]:
    """Rates and speeds of the real codec on the validation split, for amplitude and phase.

    For each map kind and coding mode: bits per element of the real file (everything counted)
    and its ratios, the ideal rate (cross-entropy of the indices under the prior) and the
    fixed-length rate, then encode/decode frames/s of the whole path (network + entropy coder)
    and of the entropy coder alone.
    """
    from pathlib import Path

    from mmslim.checkpoint import load_model
    from mmslim.codec import decode_file, encode_file, rate_report
    from mmslim.data.dataset import load_frames, normalize
    from mmslim.pipeline import compress_maps, decompress_maps, encode_maps

    root = Path(__file__).parents[1] / "data_samples"
    data = Path(data) if data else root / "sample.npz"
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else root / "pretrained"
    frames = load_frames(data, expected_shape=None)
    rows = []
    for kind in ("amplitude", "phase"):
        model, state = load_model(checkpoint_dir / f"{kind}.pt", stage=kind)
        val = frames.of_subjects(state["split"]["val"])
        maps, amp = getattr(val, kind), val.amplitude
        x01 = normalize(torch.from_numpy(maps))[0][:, None]  # (N, 1, H, W)
        src = normalize(torch.from_numpy(amp))[0][:, None]
        hi, lo = encode_maps(model, x01, src)
        side = torch.zeros(len(maps), 2).numpy()
        for mode in ("ans", "huffman", "fixed"):
            blob = compress_maps(model, maps, kind, mode, amp)
            t_enc = _timeit(lambda m=mode: compress_maps(model, maps, kind, m, amp), repeat=3)
            t_dec = _timeit(lambda b=blob: decompress_maps(model, b), repeat=3)
            fp, prior = model.fingerprint(), model.prior

            def coder_enc(m=mode):
                return encode_file(hi, lo, side, prior, fp, kind, m, num_codes=len(prior.counts_hi))

            coded = coder_enc()
            t_cenc = _timeit(coder_enc, repeat=3)
            t_cdec = _timeit(lambda c=coded: decode_file(c, prior, fp), repeat=3)
            r = rate_report(blob, maps.size, prior, fp)
            n = len(maps)
            rows.append(
                {
                    "kind": kind,
                    "mode": mode,
                    "frames": n,
                    "bits_per_element": r.bits_per_element,
                    "ratio_f32": r.ratio_vs_float32,
                    "ratio_i16": r.ratio_vs_int16,
                    "ideal_bpe": r.ideal_bits_per_element,
                    "fixed_bpe": r.fixed_bits_per_element,
                    "enc_fps": n / t_enc,
                    "dec_fps": n / t_dec,
                    "coder_enc_fps": n / t_cenc,
                    "coder_dec_fps": n / t_cdec,
                }
            )
    return rows
