"""The mSPRT: its closed form against the mixture integral, its tuning, and validity under peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize, stats

from efimero.experiment import ExperimentInputError, Readout, mixing_ratio, msprt, welch

LOOKS = 10
PER_ARM = 500          # at the last look
REPETITIONS = 300


def _first_rejection(control: np.ndarray, treatment: np.ndarray, *, sequential: bool) -> bool:
    """Read the experiment at LOOKS equally spaced looks; whether any look rejects."""
    previous: Readout | None = None
    for look in range(1, LOOKS + 1):
        n = PER_ARM * look // LOOKS
        if sequential:
            previous = msprt(control[:n], treatment[:n], planned_n=2 * PER_ARM, previous=previous)
            readout = previous
        else:
            readout = welch(control[:n], treatment[:n], planned_n=2 * n)
        if readout.significant:
            return True
    return False


def test_peeking_keeps_the_sequential_false_positive_rate_while_the_t_test_inflates() -> None:
    rng = np.random.default_rng(11)
    sequential = naive = 0
    for _ in range(REPETITIONS):
        control, treatment = rng.lognormal(4.0, 0.8, PER_ARM), rng.lognormal(4.0, 0.8, PER_ARM)  # skewed, like sessions
        sequential += _first_rejection(control, treatment, sequential=True)
        naive += _first_rejection(control, treatment, sequential=False)
    assert sequential / REPETITIONS <= 0.05
    assert naive / REPETITIONS > 0.10        # about 0.19 for 10 looks at 1.96


def test_a_real_effect_is_detected_under_the_same_peeking() -> None:
    rng = np.random.default_rng(12)
    detected = sum(
        _first_rejection(rng.normal(0, 1, PER_ARM), rng.normal(0.3, 1, PER_ARM), sequential=True)
        for _ in range(100)
    )
    assert detected >= 85


def test_p_value_matches_the_normal_mixture_integral() -> None:
    rng = np.random.default_rng(13)
    control, treatment = rng.normal(10, 3, 120), rng.normal(11, 4, 90)
    readout = msprt(control, treatment, planned_n=600)
    variance = control.var(ddof=1) / 120 + treatment.var(ddof=1) / 90
    tau2 = mixing_ratio(0.05) * variance * 210 / 600
    estimate, sd = readout.difference, math.sqrt(variance)

    def integrand(theta: float) -> float:
        return float(stats.norm.pdf(estimate, theta, sd) * stats.norm.pdf(theta, 0, math.sqrt(tau2)))

    ratio = integrate.quad(integrand, -50, 50, points=[0.0, estimate])[0] / stats.norm.pdf(estimate, 0, sd)
    assert readout.p_value == pytest.approx(min(1.0, 1 / ratio), rel=1e-6)


def test_interval_is_where_the_mixture_ratio_stays_below_one_over_alpha() -> None:
    rng = np.random.default_rng(14)
    control, treatment = rng.normal(0, 1, 200), rng.normal(0.1, 1, 200)
    readout = msprt(control, treatment, planned_n=400, alpha=0.1)
    for bound in (readout.ci_low, readout.ci_high):
        # Testing Δ = bound is testing Δ = 0 on the treatment shifted by -bound: p is alpha exactly there.
        assert msprt(control, treatment - bound, planned_n=400, alpha=0.1).p_value == pytest.approx(0.1, rel=1e-9)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.2])
def test_mixing_ratio_makes_the_interval_narrowest_at_the_planned_size(alpha: float) -> None:
    def half_width(r: float) -> float:       # in standard errors, at the planned size
        return math.sqrt((1 + 1 / r) * (2 * math.log(1 / alpha) + math.log1p(r)))

    best = optimize.minimize_scalar(half_width, bounds=(0.01, 1000), method="bounded", options={"xatol": 1e-8})
    assert mixing_ratio(alpha) == pytest.approx(best.x, rel=1e-4)


def test_running_p_value_never_rises_and_intervals_nest_although_single_looks_do() -> None:
    rng = np.random.default_rng(17)
    control, treatment = rng.normal(0, 1, 2000), rng.normal(0.1, 1, 2000)
    previous, single = None, []
    for n in range(100, 2001, 100):
        current = msprt(control[:n], treatment[:n], planned_n=4000, previous=previous)
        single.append(msprt(control[:n], treatment[:n], planned_n=4000).p_value)
        if previous is not None:
            assert current.p_value <= previous.p_value
            assert previous.ci_low <= current.ci_low <= current.ci_high <= previous.ci_high
        previous = current
    assert np.any(np.diff(single) > 0)        # without the running minimum the p-value does go up


def test_always_valid_interval_covers_the_true_difference_at_every_look() -> None:
    rng = np.random.default_rng(16)
    covered = 0
    for _ in range(200):
        control, treatment = rng.normal(5, 2, 400), rng.normal(5.5, 3, 400)
        previous = None
        for n in range(40, 401, 40):
            previous = msprt(control[:n], treatment[:n], planned_n=800, previous=previous)
        covered += previous.ci_low <= 0.5 <= previous.ci_high   # the intersection over all looks
    assert covered / 200 >= 0.95


def test_previous_must_be_an_earlier_sequential_look() -> None:
    rng = np.random.default_rng(17)
    control, treatment = rng.normal(0, 1, 300), rng.normal(0, 1, 300)
    late = msprt(control, treatment, planned_n=600)
    with pytest.raises(ExperimentInputError, match=r"no more sessions \(200\). Got a msprt .* and 600 sessions"):
        msprt(control[:100], treatment[:100], planned_n=600, previous=late)
    with pytest.raises(ExperimentInputError, match="same alpha"):
        msprt(control, treatment, planned_n=600, alpha=0.1, previous=late)
    with pytest.raises(ExperimentInputError, match="Got a welch readout"):
        msprt(control, treatment, planned_n=600, previous=welch(control, treatment, planned_n=600))
