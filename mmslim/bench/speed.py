"""Speed figures for this machine, printed by ``mmslim bench ...``.

Benchmarks print numbers; they never pass or fail. Each returns a list of rows (dicts) so a
notebook can tabulate them too.
"""

from __future__ import annotations

import time

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
