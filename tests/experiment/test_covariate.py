"""CUPED: the variance it removes, the effect it keeps, the covariates it refuses or ignores."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from efimero.experiment import ExperimentInputError, cuped


def test_cuped_removes_the_explained_variance_and_keeps_the_effect_unbiased() -> None:
    rng = np.random.default_rng(3)
    raw, adjusted, reductions = [], [], []
    for _ in range(300):
        pre = rng.normal(120, 40, 400)                      # the visitor's earlier sessions
        y = 0.8 * pre + rng.normal(0, 30, 400)              # corr² = 0.8²·40² / (0.8²·40² + 30²) ≈ 0.53
        treated = rng.random(400) < 0.5
        y[treated] += 5.0                                   # the true effect
        result = cuped(y, pre)
        raw.append(y[treated].mean() - y[~treated].mean())
        adjusted.append(result.adjusted[treated].mean() - result.adjusted[~treated].mean())
        reductions.append(result.variance_reduction)
    assert np.mean(reductions) == pytest.approx(0.53, abs=0.03)
    assert np.mean(adjusted) == pytest.approx(5.0, abs=3 * np.std(adjusted) / np.sqrt(300))
    assert np.var(adjusted) < 0.6 * np.var(raw)


def test_cuped_theta_is_the_pooled_regression_slope_and_keeps_the_mean() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1, 500)
    y = 2.0 * x + rng.normal(0, 1, 500)
    result = cuped(y, x)
    assert result.theta == pytest.approx(stats.linregress(x, y).slope)
    assert result.adjusted.mean() == pytest.approx(y.mean())
    assert result.to_dict() == {"theta": result.theta, "variance_reduction": result.variance_reduction, "note": ""}


def test_cuped_with_a_constant_covariate_adjusts_nothing_and_says_so() -> None:
    y = np.array([1.0, 5.0, 3.0])
    result = cuped(y, [7.0, 7.0, 7.0])
    assert (result.theta, result.variance_reduction) == (0.0, 0.0)
    assert "constant" in result.note
    np.testing.assert_array_equal(result.adjusted, y)


def test_cuped_refuses_mismatched_lengths() -> None:
    with pytest.raises(ExperimentInputError, match=r"x must hold one covariate value per value of y \(3\). Got 2"):
        cuped([1.0, 2.0, 3.0], [1.0, 2.0])
