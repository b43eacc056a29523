"""Entropy model and ANS coder for codebook indices (pure numpy + ``constriction``).

What is coded
-------------
Each frame yields two grids of codebook indices, ``hi`` (e.g. 56×16) and ``lo`` (e.g. 14×4),
values in ``[0, K)``. Indices are coded as i.i.d. symbols against a *prior*: one index histogram
per branch, measured on the training set and stored with the model, so encoder and decoder hold
the same table without sending it.

The prior is kept as **integer counts** (with add-one smoothing, so that a code never seen in
training still has a nonzero probability and stays codable). Both sides turn the counts into
probabilities with the same arithmetic (``counts / counts.sum()`` in float64), and
``constriction`` quantises those probabilities deterministically, so the encoder's and the
decoder's models agree bit for bit.

ANS byte layout
---------------
``constriction``'s ANS coder produces a sequence of 32-bit words; we store them little-endian, so
an ANS payload is ``4 × num_words`` bytes. Several segments (e.g. the ``hi`` grid then the ``lo``
grid of one frame, each with its own model) share one ANS stack: this costs one termination
(flushing the coder's 64-bit state: about 31 bits over the ideal per stream on average, 64 at
most) instead of one per segment. Malformed data raises ``ValueError``; ``mmslim.codec`` turns it
into ``BitstreamError``.

``FrameCoder`` codes one frame's (hi, lo) pair in any of the three modes ("ans", "huffman",
"fixed"); ``benchmark_entropy`` times it. The file container around frames is ``mmslim.codec``.

The quantised model depends on ``constriction``'s quantiser, so encoder and decoder should run
the same ``constriction`` version (pinned via the environment).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import constriction
import numpy as np

from mmslim import huffman

BRANCHES = ("hi", "lo")
MODES = ("fixed", "huffman", "ans")  # the order gives each mode's code in the file header
MAX_INDICES_PER_FRAME = 1 << 20  # bounds memory when a hostile header claims huge grids


@dataclass(frozen=True)
class IndexPrior:
    """Per-branch index frequencies shared by encoder and decoder.

    counts_hi: (K,) int64, every entry > 0 — smoothed histogram of the ``hi`` indices.
    counts_lo: (K,) int64, every entry > 0 — smoothed histogram of the ``lo`` indices.
    """

    counts_hi: np.ndarray
    counts_lo: np.ndarray

    def __post_init__(self) -> None:
        for name in ("counts_hi", "counts_lo"):
            counts = np.asarray(getattr(self, name))
            if counts.ndim != 1 or counts.size < 2:
                raise ValueError(f"{name} must be 1-D with at least 2 codes, got {counts.shape}")
            if not np.issubdtype(counts.dtype, np.integer):
                raise ValueError(f"{name} must hold integer counts, got dtype {counts.dtype}")
            if (counts <= 0).any():
                raise ValueError(f"{name} has zero counts; every code must stay codable")
            counts = counts.astype(np.int64)  # (K,)
            counts.setflags(write=False)
            object.__setattr__(self, name, counts)
        if self.counts_hi.size != self.counts_lo.size:
            raise ValueError(
                f"branches disagree on K: {self.counts_hi.size} vs {self.counts_lo.size}"
            )

    @property
    def num_codes(self) -> int:
        """K, the codebook size."""
        return int(self.counts_hi.size)

    @classmethod
    def fit(
        cls, indices_hi: np.ndarray, indices_lo: np.ndarray, num_codes: int, smoothing: int = 1
    ) -> IndexPrior:
        """Count index frequencies on training data.

        indices_hi: any shape, e.g. (N, 56, 16) int, values in [0, num_codes).
        indices_lo: any shape, e.g. (N, 14, 4) int, values in [0, num_codes).
        smoothing: added to every count (add-one / Laplace smoothing by default); must be ≥ 1
            so that codes never seen in training can still be coded.
        """
        if smoothing < 1:
            raise ValueError("smoothing must be >= 1 so that every code stays codable")
        counts = []
        for name, indices in (("indices_hi", indices_hi), ("indices_lo", indices_lo)):
            flat = check_indices(indices, num_codes, name).reshape(-1)  # (n,)
            counts.append(np.bincount(flat, minlength=num_codes) + smoothing)
        return cls(counts_hi=counts[0], counts_lo=counts[1])

    def counts(self, branch: str) -> np.ndarray:
        """(K,) int64 counts of ``branch`` ("hi" or "lo")."""
        if branch not in BRANCHES:
            raise ValueError(f"branch must be one of {BRANCHES}, got {branch!r}")
        return self.counts_hi if branch == "hi" else self.counts_lo

    def probs(self, branch: str) -> np.ndarray:
        """(K,) float64 probabilities of ``branch``; the single place counts become floats."""
        counts = self.counts(branch)
        return counts / counts.sum()

    def cross_entropy_bits(self, indices: np.ndarray, branch: str) -> float:
        """Ideal code length of ``indices`` (any shape) under this prior: Σ −log2 p(index)."""
        flat = check_indices(indices, self.num_codes, "indices").reshape(-1)  # (n,)
        return float(-np.log2(self.probs(branch)[flat]).sum())

    def fingerprint(self) -> bytes:
        """8 bytes of sha256 over K and both count tables; equal priors give equal bytes."""
        digest = hashlib.sha256(b"mmslim-index-prior-v1")
        digest.update(np.int64(self.num_codes).astype("<i8").tobytes())
        for counts in (self.counts_hi, self.counts_lo):
            digest.update(counts.astype("<i8").tobytes())
        return digest.digest()[:8]

    def to_tensors(self) -> dict:
        """{"counts_hi": (K,) int64 tensor, "counts_lo": (K,) int64 tensor}.

        Plain int64 tensors, so a checkpoint holding them loads with ``weights_only=True``.
        """
        import torch  # local import: the rest of this module is pure numpy

        return {
            "counts_hi": torch.from_numpy(self.counts_hi.copy()),
            "counts_lo": torch.from_numpy(self.counts_lo.copy()),
        }

    @classmethod
    def from_tensors(cls, tensors: dict) -> IndexPrior:
        """Inverse of ``to_tensors``; accepts CPU tensors or numpy arrays."""
        return cls(
            counts_hi=np.asarray(tensors["counts_hi"]), counts_lo=np.asarray(tensors["counts_lo"])
        )


def check_indices(indices: np.ndarray, num_codes: int, name: str = "indices") -> np.ndarray:
    """Return ``indices`` as int64 after checking they are integers in [0, num_codes)."""
    array = np.asarray(indices)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be integers, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= num_codes):
        raise ValueError(
            f"{name} must lie in [0, {num_codes}), got range [{array.min()}, {array.max()}]"
        )
    return array


def categorical_model(probs: np.ndarray):
    """A ``constriction`` categorical model over [0, K) built from (K,) float probabilities.

    ``perfect=False`` is the fast, recommended quantisation; encoder and decoder must (and do)
    use the same setting. Build the model once and reuse it across frames.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1 or not np.isfinite(probs).all() or (probs < 0).any() or probs.sum() <= 0:
        raise ValueError("probs must be a 1-D array of finite, nonnegative, not-all-zero values")
    return constriction.stream.model.Categorical(probs, perfect=False)


def ans_encode_segments(segments: Sequence[tuple[np.ndarray, object]]) -> bytes:
    """ANS-code several index arrays, each with its own model, into one byte string.

    segments: [(indices (n_i,) int in [0, K_i), model_i), ...] where model_i comes from
        ``categorical_model``. Indices must already be checked to lie in range.
    Returns 4 × num_words bytes (little-endian uint32 words).
    """
    coder = constriction.stream.stack.AnsCoder()
    # ANS is a stack: push the last segment first so that decoding pops them in order.
    for indices, model in reversed(segments):
        coder.encode_reverse(np.ascontiguousarray(indices, dtype=np.int32), model)
    return coder.get_compressed().astype("<u4").tobytes()


def ans_decode_segments(data: bytes, segments: Sequence[tuple[object, int]]) -> list[np.ndarray]:
    """Inverse of ``ans_encode_segments``.

    segments: [(model_i, n_i), ...] — the models and lengths used when encoding.
    Returns [(n_i,) int64, ...]. Raises ValueError if the bytes are not a whole number of words,
    end in a zero word, or hold data beyond the last symbol.
    """
    if len(data) % 4:
        raise ValueError(f"ANS payload of {len(data)} bytes is not a whole number of 32-bit words")
    if not data and any(n for _, n in segments):  # would decode to all zeros without complaint
        raise ValueError("empty ANS payload, but indices were expected")
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)  # (num_words,)
    coder = constriction.stream.stack.AnsCoder(words)  # ValueError on a trailing zero word
    decoded = [coder.decode(model, int(n)).astype(np.int64) for model, n in segments]
    if not coder.is_empty():
        raise ValueError("ANS payload holds more data than the expected number of indices")
    return decoded


def ans_encode(indices: np.ndarray, probs: np.ndarray) -> bytes:
    """ANS-code a flat index array. indices: (n,) int in [0, K); probs: (K,) float."""
    indices = check_indices(indices, len(probs)).reshape(-1)  # (n,)
    return ans_encode_segments([(indices, categorical_model(probs))])


def ans_decode(data: bytes, probs: np.ndarray, n: int) -> np.ndarray:
    """Inverse of ``ans_encode``: returns (n,) int64 indices in [0, K)."""
    return ans_decode_segments(data, [(categorical_model(probs), n)])[0]


class FrameCoder:
    """Codes one frame's (hi, lo) index grids to a byte string ("frame string") and back.

    mode: "ans" (against ``prior``), "huffman" (tables sent in the string) or "fixed"
        (ceil(log2 K) bits per index). Byte layouts: see ``mmslim.codec``.
    prior: needed for "ans", optional otherwise; num_codes: K when no prior is given.
    Build one per stream: the ANS models are quantised once here, identically on both sides.
    """

    def __init__(self, mode: str, prior: IndexPrior | None = None, num_codes: int | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if prior is not None:
            if num_codes is not None and num_codes != prior.num_codes:
                raise ValueError(f"num_codes={num_codes} but the prior has K={prior.num_codes}")
            num_codes = prior.num_codes
        if num_codes is None or not 2 <= num_codes <= huffman.MAX_CODES:
            raise ValueError(f"need K in [2, {huffman.MAX_CODES}] from a prior or num_codes")
        if mode == "ans" and prior is None:
            raise ValueError("mode 'ans' needs the IndexPrior the model was trained with")
        self.mode, self.num_codes = mode, num_codes
        self.fixed = huffman.fixed_lengths(num_codes)  # (K,) all ceil(log2 K)
        if mode == "ans":
            self.models = [categorical_model(prior.probs(branch)) for branch in BRANCHES]

    def encode(self, hi: np.ndarray, lo: np.ndarray) -> bytes:
        """hi: (h1, w1), lo: (h2, w2) int in [0, K) -> frame string."""
        hi = check_indices(hi, self.num_codes, "indices_hi").reshape(-1)  # (h1*w1,)
        lo = check_indices(lo, self.num_codes, "indices_lo").reshape(-1)  # (h2*w2,)
        if self.mode == "ans":
            return ans_encode_segments([(hi, self.models[0]), (lo, self.models[1])])
        if self.mode == "fixed":
            return huffman.encode_segments([(hi, self.fixed), (lo, self.fixed)])
        return huffman.encode_with_tables([hi, lo], self.num_codes)

    def decode(self, data: bytes, shape_hi, shape_lo) -> tuple[np.ndarray, np.ndarray]:
        """Frame string -> (hi (h1, w1) int64, lo (h2, w2) int64) in [0, K).

        Raises ValueError on malformed data (``mmslim.codec`` reports it as BitstreamError).
        """
        n_hi, n_lo = math.prod(shape_hi), math.prod(shape_lo)
        if n_hi + n_lo > MAX_INDICES_PER_FRAME:
            raise ValueError(f"a frame of {n_hi + n_lo} indices exceeds the sanity limit")
        if self.mode == "ans":
            hi, lo = ans_decode_segments(data, [(self.models[0], n_hi), (self.models[1], n_lo)])
        elif self.mode == "fixed":
            hi, lo = huffman.decode_segments(data, [(self.fixed, n_hi), (self.fixed, n_lo)])
        else:
            hi, lo = huffman.decode_with_tables(data, [n_hi, n_lo], self.num_codes)
        for x in (hi, lo):
            if x.size and (x.min() < 0 or x.max() >= self.num_codes):
                raise ValueError(f"decoded index out of range [0, {self.num_codes})")
        return hi.reshape(shape_hi), lo.reshape(shape_lo)  # (h1, w1), (h2, w2)


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
    prior = IndexPrior.fit(hi[:1000], lo[:1000], num_codes)
    hi, lo = hi[1000:], lo[1000:]
    n_indices = hi.size + lo.size
    ideal = prior.cross_entropy_bits(hi, "hi") + prior.cross_entropy_bits(lo, "lo")
    result: dict = {"ideal_bits_per_index": ideal / n_indices}
    for mode in MODES:
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
