"""Codec benchmarks: the entropy coders alone on synthetic indices, and the real codec path
(maps -> file -> maps) of the shipped models, with rates and speeds.

Benchmarks print numbers; they never pass or fail.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from mmslim.bench.speed import _timeit
from mmslim.codec.frames import FrameCoder
from mmslim.codec.prior import IndexPrior
from mmslim.config import CODING_MODES, KINDS


def zipf_probs(rng: np.random.Generator, num_codes: int, exponent: float = 1.1) -> np.ndarray:
    """(K,) float64 Zipf-like code probabilities, as trained VQ codebooks show (tests, benches).

    p(k) ∝ 1 / (rank(k) + 1) ** exponent, with the ranks a random permutation of the codes.
    Draw indices with ``rng.choice(num_codes, size=shape, p=probs)``.
    """
    ranks = rng.permutation(num_codes)
    probs = 1.0 / (ranks + 1.0) ** exponent
    return probs / probs.sum()


def benchmark_entropy(
    n_frames: int = 200, num_codes: int = 512, shape_hi=(56, 16), shape_lo=(14, 4), seed: int = 0
) -> dict:
    """Frames/s of each coder alone (``FrameCoder``) on Zipf-skewed random indices.

    Indices follow ``zipf_probs`` (exponent 1.1) per branch; the prior is fitted on 1000 other
    frames from the same distribution. Returns {"ans" | "huffman" | "fixed":
    {"encode_fps", "decode_fps", "bits_per_index"}, "ideal_bits_per_index": prior cross-entropy}.
    """
    rng = np.random.default_rng(seed)
    p_hi, p_lo = zipf_probs(rng, num_codes), zipf_probs(rng, num_codes)
    hi = rng.choice(num_codes, size=(1000 + n_frames, *shape_hi), p=p_hi)  # (1000+N, h1, w1)
    lo = rng.choice(num_codes, size=(1000 + n_frames, *shape_lo), p=p_lo)  # (1000+N, h2, w2)
    prior = IndexPrior(num_codes).update(hi[:1000], lo[:1000])
    hi, lo = hi[1000:], lo[1000:]
    n_indices = hi.size + lo.size
    ideal = prior.cross_entropy_bits(hi, "hi") + prior.cross_entropy_bits(lo, "lo")
    result: dict = {"ideal_bits_per_index": ideal / n_indices}
    for mode in CODING_MODES:
        coder = FrameCoder(mode, prior)
        start = time.perf_counter()
        strings = [coder.encode(h, l) for h, l in zip(hi, lo, strict=True)]
        middle = time.perf_counter()
        decoded = [coder.decode(s, shape_hi, shape_lo) for s in strings]
        end = time.perf_counter()
        if not all(
            np.array_equal(d[0], h) and np.array_equal(d[1], l)
            for d, h, l in zip(decoded, hi, lo, strict=True)
        ):
            raise RuntimeError(f"{mode} round trip failed in the benchmark")
        result[mode] = {
            "encode_fps": n_frames / (middle - start),
            "decode_fps": n_frames / (end - middle),
            "bits_per_index": 8 * sum(map(len, strings)) / n_indices,
        }
    return result


def bench_codec(data=None, checkpoint_dir=None) -> list[dict]:
    """Rates and speeds of the real codec on the validation split, for amplitude and phase.

    For each map kind and coding mode: bits per element of the real file (everything counted)
    and its ratios, the ideal rate (cross-entropy of the indices under the prior) and the
    fixed-length rate, then encode/decode frames/s of the whole path (network + entropy coder)
    and of the entropy coder alone.
    """
    from pathlib import Path

    from mmslim.codec import decode_file, encode_file, rate_report
    from mmslim.codec.maps import compress_maps, decompress_maps, encode_maps
    from mmslim.data.dataset import load_frames, normalize
    from mmslim.data.samples import samples_dir
    from mmslim.training.checkpoint import load_model

    root = samples_dir()
    data = Path(data) if data else root / "sample.npz"
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else root / "pretrained"
    frames = load_frames(data, expected_shape=None)
    rows = []
    for kind in KINDS:
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
                return encode_file(hi, lo, side, prior, fp, kind, m, num_codes=prior.num_codes)

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


__all__ = ["bench_codec", "benchmark_entropy", "zipf_probs"]
