"""The entropy prior's tables as plain numpy, for code that runs without PyTorch.

:class:`mmslim.codec.prior.IndexPrior` keeps the counts as buffers of an ``nn.Module`` (they
travel in the model's ``state_dict``); the coders only read them. :class:`PriorTables` holds the
same counts as arrays, for the exported codec (:mod:`mmslim.export.sensor`), and both turn
counts into probabilities with :func:`probabilities`, so they code bit for bit alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmslim.config import BRANCHES


def check_indices(indices, num_codes: int, name: str = "indices") -> np.ndarray:
    """Return ``indices`` (any shape) as int64 numpy after checking they are integers in
    [0, num_codes); raises ``ValueError`` otherwise."""
    array = np.asarray(indices)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be integers, got dtype {array.dtype}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= num_codes):
        raise ValueError(
            f"{name} must lie in [0, {num_codes}), got range [{array.min()}, {array.max()}]"
        )
    return array


def probabilities(counts: np.ndarray) -> np.ndarray:
    """(K,) integer counts -> (K,) float64 probabilities: the single place counts become floats
    (``counts / counts.sum()``), on both sides of the link."""
    return counts / counts.sum()


@dataclass(frozen=True)
class PriorTables:
    """A prior's counts as arrays: ``counts_hi`` and ``counts_lo``, (K,) positive integers, and
    whether they were fitted on training indices (ANS refuses an unfitted prior). Read by the
    coders exactly as an :class:`~mmslim.codec.prior.IndexPrior`."""

    counts_hi: np.ndarray
    counts_lo: np.ndarray
    fitted: bool = True

    def __post_init__(self):
        for branch in BRANCHES:
            c = getattr(self, f"counts_{branch}")
            integers = np.issubdtype(c.dtype, np.integer)
            if not integers or c.ndim != 1 or c.shape != self.counts_hi.shape or (c <= 0).any():
                raise ValueError(f"counts_{branch} must be (K,) positive integers like counts_hi")

    @property
    def num_codes(self) -> int:
        """K, the codebook size."""
        return len(self.counts_hi)

    @property
    def is_fitted(self) -> bool:
        return self.fitted

    def probs(self, branch: str) -> np.ndarray:
        """(K,) float64 probabilities of ``branch`` (``"hi"`` or ``"lo"``)."""
        if branch not in BRANCHES:
            raise ValueError(f"branch must be one of {BRANCHES}, got {branch!r}")
        return probabilities(self.counts_hi if branch == "hi" else self.counts_lo)


__all__ = ["PriorTables", "check_indices", "probabilities"]
