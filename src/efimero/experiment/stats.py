"""Fixed-horizon statistics of an A/B experiment: Welch's t-test and the sample size it needs.

The retraining guidelines (A/B testing section) read an experiment with ``scipy.stats.ttest_ind``
once, at the end of a planned test; :func:`welch` is that readout with Welch's unequal variances,
the confidence interval of the difference and the relative lift. :func:`required_sample_size`
plans that end: how many sessions detect an effect (``statsmodels.stats.power.TTestIndPower``).

Looking at a fixed-horizon test before its planned size inflates false positives; the readout
that may be looked at every window is :func:`efimero.experiment.msprt`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from statsmodels.stats.power import TTestIndPower

from efimero.errors import ExperimentInputError
from efimero.experiment._base import JsonResult, level, positive, sample


@dataclass(frozen=True)
class Readout(JsonResult):
    """The comparison of one metric between control and treatment at one look.

    ``difference`` is treatment minus control; ``relative_lift`` is the difference over the
    control mean (``None`` when that mean is 0). ``ci_low``/``ci_high`` bound the difference at
    confidence ``1 - alpha``. ``planned_n`` is the total number of sessions the experiment was
    planned for: a fixed-horizon readout may only be judged there.
    """

    method: Literal["welch", "msprt"]
    n_control: int
    n_treatment: int
    mean_control: float
    mean_treatment: float
    difference: float
    relative_lift: float | None
    ci_low: float
    ci_high: float
    p_value: float
    alpha: float
    planned_n: int
    derived: ClassVar[tuple[str, ...]] = ("significant",)

    @property
    def n(self) -> int:
        """Sessions in both arms together."""
        return self.n_control + self.n_treatment

    @property
    def significant(self) -> bool:
        """Whether the p-value is below ``alpha``."""
        return self.p_value < self.alpha


def summarise(control: np.ndarray, treatment: np.ndarray, **result: Any) -> Readout:
    """A :class:`Readout` of two checked arms: sizes, means, difference and lift, plus ``result``."""
    mean_c, mean_t = float(control.mean()), float(treatment.mean())
    return Readout(
        n_control=control.size, n_treatment=treatment.size, mean_control=mean_c, mean_treatment=mean_t,
        difference=mean_t - mean_c, relative_lift=(mean_t - mean_c) / mean_c if mean_c else None, **result,
    )


def standard_error(control: np.ndarray, treatment: np.ndarray) -> float:
    """The unpooled standard error of the difference of means, refused when both arms are constant."""
    variance = float(control.var(ddof=1) / control.size + treatment.var(ddof=1) / treatment.size)
    if variance == 0:
        raise ExperimentInputError(
            "control and treatment are both constant, so their difference has no standard error. "
            "Check that the metric is logged, or compare the values directly."
        )
    return math.sqrt(variance)


def welch(control: ArrayLike, treatment: ArrayLike, *, planned_n: int, alpha: float = 0.05) -> Readout:
    """Welch's two-sample t-test of treatment against control, read once at the planned size.

    ``scipy.stats.ttest_ind(..., equal_var=False)`` gives the p-value and the confidence
    interval with the Welch–Satterthwaite degrees of freedom, so unequal arm sizes (a 10 %
    canary) and unequal variances are both handled.

    Args:
        control: the metric, one value per session, of the control arm.
        treatment: the same for the treatment arm.
        planned_n: sessions (both arms) the test was planned for; kept for :func:`verdict`.
        alpha: significance level; the interval has confidence ``1 - alpha``.

    Raises:
        ExperimentInputError: an arm is empty, holds fewer than 2 values or non-finite values,
            both arms are constant, or a setting is out of range.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> readout = welch(rng.normal(100, 20, 500), rng.normal(110, 20, 500), planned_n=1000)
        >>> readout.significant, readout.ci_low > 0
        (True, True)
    """
    c, t = sample(control, "control"), sample(treatment, "treatment")
    alpha = level(alpha, "alpha")
    standard_error(c, t)
    test = stats.ttest_ind(t, c, equal_var=False)
    interval = test.confidence_interval(confidence_level=1 - alpha)
    return summarise(
        c, t, method="welch", ci_low=float(interval.low), ci_high=float(interval.high),
        p_value=float(test.pvalue), alpha=alpha, planned_n=int(positive(planned_n, "planned_n")),
    )


@dataclass(frozen=True)
class SampleSize(JsonResult):
    """Sessions per arm a two-sided Welch test needs to detect ``effect`` with ``power``."""

    control: int
    treatment: int
    effect: float
    sd: float
    alpha: float
    power: float
    derived: ClassVar[tuple[str, ...]] = ("total",)

    @property
    def total(self) -> int:
        """Sessions in both arms together: the ``planned_n`` of the readouts."""
        return self.control + self.treatment


def required_sample_size(
    effect: float, sd: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> SampleSize:
    """Sessions needed to detect a difference of ``effect`` in a metric of standard deviation ``sd``.

    Solved by ``statsmodels.stats.power.TTestIndPower`` on the standardised effect
    ``|effect| / sd`` (Cohen's d), two-sided, each arm rounded up. With CUPED, pass the adjusted
    metric's standard deviation (``sd * sqrt(1 - variance_reduction)``).

    Args:
        effect: the smallest difference of means worth detecting, in the metric's unit.
        sd: the metric's standard deviation per session (from a pilot or the pre-period).
        alpha: significance level.
        power: probability of detecting ``effect`` when it is real.
        ratio: treatment sessions per control session (``0.1 / 0.9`` for a 10 % canary).

    Raises:
        ExperimentInputError: ``effect`` is 0 or not finite, or a setting is out of range.

    Example:
        >>> required_sample_size(0.5, 1.0).control   # Cohen's textbook value for d = 0.5
        64
    """
    d = positive(abs(effect), "effect (its absolute value)") / positive(sd, "sd")
    nobs = float(TTestIndPower().solve_power(
        effect_size=d, alpha=level(alpha, "alpha"), power=level(power, "power"), ratio=positive(ratio, "ratio"),
        alternative="two-sided",
    ))
    return SampleSize(math.ceil(nobs), math.ceil(nobs * ratio), float(effect), float(sd), alpha, power)
