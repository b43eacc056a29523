"""The entropy prior: per-branch index frequencies shared by encoder and decoder.

Each frame yields two grids of codebook indices, ``hi`` (e.g. 56×16) and ``lo`` (e.g. 14×4), values
in ``[0, K)``. They are coded as i.i.d. symbols against one index histogram per branch, measured
on the training set and stored with the model, so both sides hold the same table without sending
it.

The prior is kept as **integer counts** (add-one smoothing, so that a code never seen in training
keeps a nonzero probability and stays codable). Both sides turn counts into probabilities with the
same arithmetic (``counts / counts.sum()`` in float64), and the ANS coder quantises those
deterministically, so the encoder's and the decoder's models agree bit for bit.

As in CompressAI's entropy models, the tables are **buffers of an ``nn.Module``**: they travel in
the model's ``state_dict`` (and so in its fingerprint), :meth:`IndexPrior.update` refreshes them
from training indices, and ``compress`` works right after ``load_state_dict``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mmslim.codec.tables import PriorTables, check_indices, probabilities
from mmslim.config import BRANCHES


class IndexPrior(nn.Module):
    """Per-branch index counts, as buffers.

    Buffers: ``counts_hi`` (K,) int64 and ``counts_lo`` (K,) int64, every entry > 0;
    ``fitted`` () bool, False until :meth:`update` has seen training indices (a uniform prior
    codes every index in log2 K bits, so ANS coding refuses it rather than silently wasting rate).

    Args:
        num_codes: K, the codebook size of both branches.
    """

    def __init__(self, num_codes: int):
        super().__init__()
        if num_codes < 2:
            raise ValueError(f"num_codes must be >= 2, got {num_codes}")
        self.register_buffer("counts_hi", torch.ones(num_codes, dtype=torch.int64))
        self.register_buffer("counts_lo", torch.ones(num_codes, dtype=torch.int64))
        self.register_buffer("fitted", torch.tensor(False))

    @property
    def num_codes(self) -> int:
        """K, the codebook size."""
        return int(self.counts_hi.numel())

    @property
    def is_fitted(self) -> bool:
        return bool(self.fitted)

    @torch.no_grad()
    def update(self, indices_hi, indices_lo, smoothing: int = 1) -> IndexPrior:
        """Refit the counts on training indices (any shape, ints in [0, K)); returns self.

        smoothing: added to every count (add-one by default); must be ≥ 1 so that codes never
        seen in training stay codable.
        """
        if smoothing < 1:
            raise ValueError("smoothing must be >= 1 so that every code stays codable")
        for branch, indices in (("hi", indices_hi), ("lo", indices_lo)):
            flat = check_indices(_numpy(indices), self.num_codes, f"indices_{branch}").reshape(-1)
            counts = np.bincount(flat, minlength=self.num_codes) + smoothing  # (K,)
            self.counts(branch).copy_(torch.from_numpy(counts))
        self.fitted.fill_(True)
        return self

    def set_counts(self, counts_hi, counts_lo) -> IndexPrior:
        """Set both (K,) count tables directly (every count a positive integer); returns self."""
        for branch, counts in (("hi", counts_hi), ("lo", counts_lo)):
            c = np.asarray(_numpy(counts))
            if c.shape != (self.num_codes,) or not np.issubdtype(c.dtype, np.integer):
                raise ValueError(f"counts_{branch} must be ({self.num_codes},) integers")
            if (c <= 0).any():
                raise ValueError(f"counts_{branch} has zero counts; every code must stay codable")
            self.counts(branch).copy_(torch.from_numpy(c.astype(np.int64)))
        self.fitted.fill_(True)
        return self

    def counts(self, branch: str) -> torch.Tensor:
        """(K,) int64 counts of ``branch`` (``"hi"`` or ``"lo"``)."""
        if branch not in BRANCHES:
            raise ValueError(f"branch must be one of {BRANCHES}, got {branch!r}")
        return self.counts_hi if branch == "hi" else self.counts_lo

    def probs(self, branch: str) -> np.ndarray:
        """(K,) float64 probabilities of ``branch`` (:func:`~mmslim.codec.tables.probabilities`)."""
        return probabilities(self.counts(branch).cpu().numpy())

    def tables(self) -> PriorTables:
        """The counts as numpy arrays, for coding without PyTorch (:mod:`mmslim.export.sensor`)."""
        return PriorTables(self.counts_hi.cpu().numpy().copy(),
                           self.counts_lo.cpu().numpy().copy(), self.is_fitted)  # fmt: skip

    def cross_entropy_bits(self, indices, branch: str) -> float:
        """Ideal code length of ``indices`` (any shape) under this prior: Σ −log2 p(index)."""
        flat = check_indices(_numpy(indices), self.num_codes, "indices").reshape(-1)  # (n,)
        return float(-np.log2(self.probs(branch)[flat]).sum())

    def extra_repr(self) -> str:
        return f"num_codes={self.num_codes}, fitted={self.is_fitted}"


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


__all__ = ["IndexPrior", "check_indices"]
