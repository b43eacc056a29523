"""ANS coding of codebook indices with ``constriction`` (the maintained coder we rely on).

``constriction``'s ANS coder produces a sequence of 32-bit words; we store them little-endian, so
an ANS payload is ``4 × num_words`` bytes. Several segments (e.g. the ``hi`` grid then the ``lo``
grid of one frame, each with its own model) share one ANS stack: this costs one termination
(flushing the coder's 64-bit state: about 31 bits over the ideal per stream on average, 64 at
most) instead of one per segment.

Strict decoding, and what it cannot see. ``constriction``'s decoder never fails: past the end of
its data it keeps returning symbols. A payload is accepted only if it is a whole number of words,
no longer than its indices can need, and leaves the coder exactly empty after the last index
(data left over, or a made-up payload that does not end where an encoder would, is refused).
What no check on the bytes can see: the coder starts from state 0, so index 0 pushed onto an
empty coder costs nothing, and an empty coder decodes to index 0 for ever. A payload for n
indices ending in zeros is therefore byte-for-byte the payload for n + k indices ending in more
zeros (and ``b""`` is the payload of an all-zero frame). The number of indices must come from
the decoder's side: :mod:`mmslim.codec.container` checks the header's grid sizes against what
the model makes for its frame shape before decoding.

Size bounds: the quantised models below give every symbol a probability of at least 2**-24, so
an index costs at most 24 bits and a payload of n indices is at most ``4 ceil((24 n + 64) / 32)``
bytes (:func:`max_payload_bytes`); the shortest is empty (all zeros, see above).

The quantised model depends on ``constriction``'s quantiser, so encoder and decoder must run the
same ``constriction`` version (pinned in ``pyproject.toml``; golden files under
``tests/codec/golden`` catch a change).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import constriction
import numpy as np

from mmslim.codec.tables import check_indices

PRECISION_BITS = 24  # constriction's default quantiser: every probability is a multiple of 2**-24
TERMINATION_BITS = 64  # the coder's state, flushed at the end


def categorical_model(probs: np.ndarray):
    """A ``constriction`` categorical model over [0, K) built from (K,) float probabilities.

    ``perfect=False`` is the fast, recommended quantisation; encoder and decoder must (and do)
    use the same setting. Build the model once and reuse it across frames.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1 or not np.isfinite(probs).all() or (probs < 0).any() or probs.sum() <= 0:
        raise ValueError("probs must be a 1-D array of finite, nonnegative, not-all-zero values")
    return constriction.stream.model.Categorical(probs, perfect=False)


def max_payload_bytes(num_indices: int) -> int:
    """Largest ANS payload that ``num_indices`` indices can need (24 bits each + termination)."""
    return 4 * math.ceil((PRECISION_BITS * num_indices + TERMINATION_BITS) / 32)


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
    """Inverse of ``ans_encode_segments``; accepts only the exact encoding of what it decodes.

    segments: [(model_i, n_i), ...] — the models and lengths used when encoding.
    Returns [(n_i,) int64, ...]. Raises ValueError if the bytes are not a whole number of words,
    are longer than n indices can need, end in a zero word, or leave data in the coder (see the
    module doc for the one thing they cannot reveal: how many trailing zeros were meant).
    """
    total = sum(int(n) for _, n in segments)
    if len(data) % 4:
        raise ValueError(f"ANS payload of {len(data)} bytes is not a whole number of 32-bit words")
    if len(data) > max_payload_bytes(total):
        raise ValueError(
            f"ANS payload of {len(data)} bytes is longer than {total} indices can need "
            f"({max_payload_bytes(total)} bytes)"
        )
    words = np.frombuffer(data, dtype="<u4").astype(np.uint32)  # (num_words,)
    coder = constriction.stream.stack.AnsCoder(words)  # ValueError on a trailing zero word
    decoded = [coder.decode(model, int(n)).astype(np.int64) for model, n in segments]
    if not coder.is_empty():
        raise ValueError("ANS payload holds more data than the expected number of indices")
    again = ans_encode_segments(
        [(x, model) for x, (model, _) in zip(decoded, segments, strict=True)]
    )
    if again != data:
        raise ValueError(
            "ANS payload is not the encoding of the indices it decodes to (it ends too early, "
            "or was altered)"
        )
    return decoded


def ans_encode(indices: np.ndarray, probs: np.ndarray) -> bytes:
    """ANS-code a flat index array. indices: (n,) int in [0, K); probs: (K,) float."""
    indices = check_indices(indices, len(probs)).reshape(-1)  # (n,)
    return ans_encode_segments([(indices, categorical_model(probs))])


def ans_decode(data: bytes, probs: np.ndarray, n: int) -> np.ndarray:
    """Inverse of ``ans_encode``: returns (n,) int64 indices in [0, K)."""
    return ans_decode_segments(data, [(categorical_model(probs), n)])[0]


__all__ = [
    "ans_decode",
    "ans_decode_segments",
    "ans_encode",
    "ans_encode_segments",
    "categorical_model",
    "max_payload_bytes",
]
