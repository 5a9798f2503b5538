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


def test_a_loss_of_logs_in_one_arm_is_seen_from_served_and_logged_counts() -> None:
    from efimero.experiment import logging_mismatch

    # 10 % of the treatment's logs lost: the session counts alone (900 vs 1000) would not block yet.
    assert not sample_ratio_mismatch([1000, 900], [0.5, 0.5]).mismatch
    lost = logging_mismatch([1000, 1000], [1000 * 0.7, 900 * 0.7])
    assert lost.mismatch and lost.p_value < 1e-3
    assert not logging_mismatch([1000, 1000], [700, 690]).mismatch
    assert logging_mismatch([50, 50], [50, 50]).p_value == 1.0  # nothing lost anywhere: nothing differs


@pytest.mark.parametrize(("served", "logged", "message"), [
    ([10, 10], [11, 5], "logged at most served"),
    ([10, 0], [5, 0], "every arm serving some"),
    ([10, 10, 10], [5, 5], "one count per arm"),
])
def test_logging_mismatch_refuses_impossible_counts(served, logged, message) -> None:
    from efimero.experiment import logging_mismatch

    with pytest.raises(ExperimentInputError, match=message):
        logging_mismatch(served, logged)


def test_a_verdict_is_blocked_by_a_loss_of_logs() -> None:
    from efimero.experiment import logging_mismatch, verdict, welch

    rng = np.random.default_rng(3)
    readout = welch(rng.normal(100, 10, 500), rng.normal(110, 10, 500), planned_n=1000)
    srm = sample_ratio_mismatch([500, 500], [0.5, 0.5])
    blocked = verdict(readout, srm, loss=logging_mismatch([700, 700], [500, 400]))
    assert blocked.decision == "blocked_srm" and "logged different shares" in blocked.reason
    assert verdict(readout, srm, loss=logging_mismatch([700, 700], [500, 500])).decision == "treatment_better"
