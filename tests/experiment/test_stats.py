"""Welch's readout and the sample size against statsmodels, the textbook and simulation."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.power import TTestIndPower
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from efimero.experiment import ExperimentInputError, required_sample_size, welch


def test_welch_matches_statsmodels_unequal_variance_test() -> None:
    rng = np.random.default_rng(1)
    control, treatment = rng.normal(100, 10, 80), rng.normal(108, 30, 30)
    readout = welch(control, treatment, planned_n=110, alpha=0.1)
    compare = CompareMeans(DescrStatsW(treatment), DescrStatsW(control))
    _, p_value, _ = compare.ttest_ind(usevar="unequal")
    low, high = compare.tconfint_diff(alpha=0.1, usevar="unequal")
    assert readout.p_value == pytest.approx(p_value, rel=1e-9)
    assert (readout.ci_low, readout.ci_high) == pytest.approx((low, high), rel=1e-9)
    assert readout.difference == pytest.approx(treatment.mean() - control.mean())
    assert readout.relative_lift == pytest.approx((treatment.mean() - control.mean()) / control.mean())
    assert (readout.n_control, readout.n_treatment, readout.n) == (80, 30, 110)


def test_welch_interval_covers_the_true_difference_at_its_level() -> None:
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(400):
        readout = welch(rng.normal(50, 5, 40), rng.normal(52, 15, 25), planned_n=65)
        covered += readout.ci_low <= 2.0 <= readout.ci_high
    assert 0.92 <= covered / 400 <= 0.98


def test_relative_lift_is_none_when_the_control_mean_is_zero() -> None:
    assert welch([-1.0, 1.0], [1.0, 2.0], planned_n=4).relative_lift is None


@pytest.mark.parametrize(
    ("control", "treatment", "message"),
    [
        ([], [1.0, 2.0], "control must hold at least 2 values. Got 0"),
        ([1.0, 2.0], [3.0], "treatment must hold at least 2 values. Got 1"),
        ([1.0, np.nan, 3.0], [1.0, 2.0], r"control must hold only finite numbers. Got nan at position\(s\) 1"),
        ([[1.0, 2.0]], [1.0, 2.0], r"control must be a 1-D array.*Got shape \(1, 2\)"),
        (["a", "b"], [1.0, 2.0], "control must be an array of numbers"),
        ([3.0, 3.0], [4.0, 4.0], "both constant"),
    ],
)
def test_welch_refuses_data_it_cannot_read(control: list, treatment: list, message: str) -> None:
    with pytest.raises(ExperimentInputError, match=message):
        welch(control, treatment, planned_n=10)


def test_welch_refuses_settings_out_of_range() -> None:
    with pytest.raises(ExperimentInputError, match=r"alpha must lie strictly between 0 and 1\. Got 1\.5"):
        welch([1.0, 2.0], [2.0, 3.0], planned_n=4, alpha=1.5)
    with pytest.raises(ExperimentInputError, match=r"planned_n must be a finite number above 0\. Got 0"):
        welch([1.0, 2.0], [2.0, 3.0], planned_n=0)


def test_sample_size_matches_the_textbook_and_statsmodels() -> None:
    # Cohen (1988), Statistical Power Analysis, ch. 2: 64 per group for d = 0.5, 393 for d = 0.2 (α = .05, power .8)
    assert required_sample_size(5.0, 10.0).control == 64
    assert required_sample_size(-2.0, 10.0).control == 394     # 393.4, rounded up; the sign is irrelevant
    canary = required_sample_size(1.0, 4.0, alpha=0.01, power=0.9, ratio=1 / 9)
    nobs1 = TTestIndPower().solve_power(effect_size=0.25, alpha=0.01, power=0.9, ratio=1 / 9)
    assert (canary.control, canary.treatment) == (np.ceil(nobs1), np.ceil(nobs1 / 9))
    assert canary.to_dict()["total"] == canary.control + canary.treatment


def test_sample_size_gives_the_planned_power_to_welch() -> None:
    rng = np.random.default_rng(5)
    plan = required_sample_size(5.0, 20.0, power=0.8)
    detected = sum(
        welch(rng.normal(0, 20, plan.control), rng.normal(5, 20, plan.treatment), planned_n=plan.total).significant
        for _ in range(400)
    )
    assert 0.75 <= detected / 400 <= 0.85


def test_sample_size_refuses_a_zero_effect() -> None:
    with pytest.raises(ExperimentInputError, match=r"effect \(its absolute value\) must be a finite number above 0"):
        required_sample_size(0.0, 1.0)
