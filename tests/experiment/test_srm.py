"""The sample-ratio-mismatch check: which counts it flags at p < 0.001, which it refuses."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from efimero.experiment import ExperimentInputError, sample_ratio_mismatch


@pytest.mark.parametrize(
    ("counts", "shares", "mismatch"),
    [
        ([5200, 4800], [0.5, 0.5], True),    # χ² = 16, p ≈ 6e-5
        ([5150, 4850], [0.5, 0.5], False),   # χ² = 9, p ≈ 0.0027: unusual, not a mismatch
        ([5100, 4900], [0.5, 0.5], False),   # χ² = 4, p ≈ 0.046
        ([5000, 5000], [1, 1], False),       # shares are normalised
        ([9000, 1000], [0.9, 0.1], False),   # a 10 % canary as planned
        ([9000, 1000], [0.5, 0.5], True),
        ([3400, 3300, 3300], [1, 1, 1], False),
        ([3600, 3200, 3200], [1, 1, 1], True),
    ],
)
def test_srm_flags_only_counts_too_unlikely_under_the_plan(counts: list, shares: list, mismatch: bool) -> None:
    result = sample_ratio_mismatch(counts, shares)
    expected = stats.chisquare(counts, np.asarray(shares) / np.sum(shares) * np.sum(counts))
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.mismatch is mismatch
    assert result.to_dict()["mismatch"] is mismatch


@pytest.mark.parametrize(
    ("counts", "shares", "message"),
    [
        ([10, 10], [0.5, 0.3, 0.2], r"one share per arm of counts \(2\). Got 3"),
        ([10, -1], [0.5, 0.5], r"counts must be whole numbers.*Got \[10.0, -1.0\]"),
        ([10.5, 3], [0.5, 0.5], "counts must be whole numbers"),
        ([0, 0], [0.5, 0.5], "not all 0"),
        ([10, 10], [1.0, 0.0], "expected_shares must all be above 0"),
        ([10], [1.0], "counts must hold at least 2 values"),
    ],
)
def test_srm_refuses_counts_it_cannot_test(counts: list, shares: list, message: str) -> None:
    with pytest.raises(ExperimentInputError, match=message):
        sample_ratio_mismatch(counts, shares)
