"""The entropy prior (``mmslim.codec.prior``) value by value: counts, smoothing, probabilities
and every refusal, on tables small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmslim.codec.prior import IndexPrior, check_indices
from mmslim.codec.tables import PriorTables, probabilities


def test_update_counts_each_branch_plus_the_smoothing():
    prior = IndexPrior(4)
    assert not prior.is_fitted and prior.extra_repr() == "num_codes=4, fitted=False"
    hi, lo = torch.tensor([[0, 0, 3]]), np.array([1, 1, 1, 2])
    assert prior.update(hi, lo, smoothing=3) is prior
    assert prior.counts("hi").tolist() == [5, 3, 3, 4]
    assert prior.counts("lo").tolist() == [3, 6, 4, 3]
    assert prior.counts_hi.dtype == torch.int64 and prior.is_fitted
    assert prior.extra_repr() == "num_codes=4, fitted=True"
    assert IndexPrior(4).update(hi, lo).counts("hi").tolist() == [3, 1, 1, 2]  # add-one
    np.testing.assert_array_equal(prior.probs("lo"), np.array([3, 6, 4, 3]) / 16)
    assert prior.probs("lo").dtype == np.float64


def test_update_refuses_indices_by_branch_and_too_little_smoothing():
    prior = IndexPrior(4)
    with pytest.raises(ValueError, match=r"^indices_lo must lie in \[0, 4\), got range \[0, 4\]$"):
        prior.update([0, 1], [0, 4])
    with pytest.raises(ValueError, match="^indices_hi must be integers"):
        prior.update([0.5], [0])
    with pytest.raises(ValueError, match="^smoothing must be >= 1 so that every code stays"):
        prior.update([0], [0], smoothing=0)
    assert not prior.is_fitted
    assert prior.update([0], [0], smoothing=1).counts("hi").tolist() == [2, 1, 1, 1]


def test_set_counts_takes_positive_integer_tables_only():
    prior = IndexPrior(3).set_counts(torch.tensor([1, 2, 3]), np.array([4, 5, 6], np.int32))
    assert prior.is_fitted and prior.counts("lo").tolist() == [4, 5, 6]
    assert prior.counts("hi").tolist() == [1, 2, 3] and prior.counts_lo.dtype == torch.int64
    for hi, lo, message in (
        ([1, 2], [1, 1, 1], r"^counts_hi must be \(3,\) integers$"),
        ([1, 2, 3], [1.0, 1.0, 1.0], r"^counts_lo must be \(3,\) integers$"),
        ([1, 2, 3], [1, 0, 1], "^counts_lo has zero counts; every code must stay codable$"),
        ([-1, 2, 3], [1, 1, 1], "^counts_hi has zero counts"),
    ):
        with pytest.raises(ValueError, match=message):
            IndexPrior(3).set_counts(np.array(hi), np.array(lo))


def test_prior_sizes_and_branch_names_are_checked():
    with pytest.raises(ValueError, match="^num_codes must be >= 2, got 1$"):
        IndexPrior(1)
    assert IndexPrior(2).num_codes == 2
    with pytest.raises(ValueError, match=r"^branch must be one of \('hi', 'lo'\), got 'mid'$"):
        IndexPrior(2).counts("mid")


def test_cross_entropy_bits_per_branch():
    prior = IndexPrior(2).set_counts(np.array([1, 3]), np.array([3, 1]))
    assert prior.cross_entropy_bits([[0, 1]], "hi") == pytest.approx(2 - np.log2(0.75))
    assert prior.cross_entropy_bits(torch.tensor([0, 1]), "lo") == pytest.approx(2 - np.log2(0.75))
    assert prior.cross_entropy_bits([0, 0], "lo") == pytest.approx(2 * -np.log2(0.75))
    with pytest.raises(ValueError, match=r"^indices must lie in \[0, 2\)"):
        prior.cross_entropy_bits([2], "hi")


def test_check_indices():
    out = check_indices(np.array([[3, 0]], np.uint8), 4)
    assert out.dtype == np.int64 and out.tolist() == [[3, 0]]
    empty = check_indices(np.zeros((0, 2)), 4)  # nothing to check, even as floats
    assert empty.shape == (0, 2) and empty.dtype == np.int64
    with pytest.raises(ValueError, match=r"^grid must lie in \[0, 4\), got range \[-1, 2\]$"):
        check_indices([2, -1], 4, "grid")
    with pytest.raises(ValueError, match="^indices must be integers, got dtype bool$"):
        check_indices([True], 4)


def test_check_indices_bounds_are_half_open():
    assert check_indices([0, 3], 4).tolist() == [0, 3]
    with pytest.raises(ValueError, match=r"^indices must lie in \[0, 4\), got range \[0, 4\]$"):
        check_indices([0, 4], 4)
    with pytest.raises(ValueError, match=r"got range \[-1, 0\]$"):
        check_indices([-1, 0], 4)


def test_prior_tables_as_numpy():
    tables = PriorTables(np.array([1, 3]), np.array([2, 2]))
    assert tables.num_codes == 2 and tables.is_fitted is True
    assert PriorTables(np.array([1]), np.array([1]), fitted=False).is_fitted is False
    np.testing.assert_array_equal(tables.probs("hi"), [0.25, 0.75])
    np.testing.assert_array_equal(tables.probs("lo"), [0.5, 0.5])
    np.testing.assert_array_equal(probabilities(np.array([1, 1, 2])), [0.25, 0.25, 0.5])
    with pytest.raises(ValueError, match=r"^branch must be one of \('hi', 'lo'\), got 'mid'$"):
        tables.probs("mid")
    message = "^counts_{} must be \\(K,\\) positive integers like counts_hi$"
    for hi, lo, branch in [
        (np.array([1, 0]), np.array([1, 1]), "hi"),
        (np.array([1, 1]), np.array([1, 0]), "lo"),
        (np.array([1, 1]), np.array([1, 1, 1]), "lo"),
        (np.array([[1, 1]]), np.array([[1, 1]]), "hi"),
        (np.array([1, 1]), np.array([-1, 1]), "lo"),
    ]:
        with pytest.raises(ValueError, match=message.format(branch)):
            PriorTables(hi, lo)
