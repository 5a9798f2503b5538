"""The sample-ratio-mismatch (SRM) check: did the arms get the traffic they were planned to get?

A mismatch means broken bucketing, caching or logging, and then no metric can be trusted
(Fabijan et al. 2019, "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments: A
Taxonomy and Rules of Thumb for Practitioners", KDD). A chi-squared goodness-of-fit test flags
it at ``p < 0.001``, the usual cut-off: read at every one of 50 looks, it still fires by chance
in only about 1 % of A/A experiments (``bench/bench_experiments.py``).

It needs traffic to see a loss: an arm of a 50/50 split that loses a share ``L`` of its sessions
gives ``χ² ≈ n L² / 4`` after ``n`` sessions, so about ``43 / L²`` sessions (4,300 for 10 %)
before it fires. A loss that takes the short sessions moves the metric sooner than that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from efimero.errors import ExperimentInputError
from efimero.experiment._base import JsonResult, level, sample

SRM_THRESHOLD = 0.001
"""p-value under which the arms' counts do not match the plan (χ²(1) > 10.83 for two arms)."""


@dataclass(frozen=True)
class SrmResult(JsonResult):
    """Whether the arms' session counts match the planned traffic shares (χ² goodness of fit)."""

    counts: list[int]
    expected_shares: list[float]
    statistic: float
    p_value: float
    threshold: float
    derived: ClassVar[tuple[str, ...]] = ("mismatch",)

    @property
    def mismatch(self) -> bool:
        """A sample ratio mismatch: the counts are too unlikely under the plan to trust any metric."""
        return self.p_value < self.threshold


def sample_ratio_mismatch(
    counts: ArrayLike, expected_shares: ArrayLike, *, threshold: float = SRM_THRESHOLD
) -> SrmResult:
    """Test the arms' session counts against the planned split (``scipy.stats.chisquare``).

    Args:
        counts: sessions per arm, e.g. ``[n_control, n_treatment]``.
        expected_shares: the planned share of each arm, same order; normalised to sum to 1.
        threshold: p-value under which a mismatch is flagged (0.001 by default).

    Raises:
        ExperimentInputError: fewer than two arms, a length mismatch, negative or fractional
            counts, no sessions at all, or a share that is not above 0.

    Example:
        >>> sample_ratio_mismatch([5200, 4800], [0.5, 0.5]).mismatch
        True
        >>> sample_ratio_mismatch([5100, 4900], [0.5, 0.5]).mismatch
        False
    """
    observed = sample(counts, "counts")
    shares = sample(expected_shares, "expected_shares")
    if observed.size != shares.size:
        raise ExperimentInputError(
            f"expected_shares must hold one share per arm of counts ({observed.size}). Got {shares.size} instead."
        )
    if (observed < 0).any() or (observed != np.round(observed)).any() or observed.sum() == 0:
        raise ExperimentInputError(
            f"counts must be whole numbers of sessions, not negative, not all 0. Got {observed.tolist()} instead."
        )
    if (shares <= 0).any():
        raise ExperimentInputError(f"expected_shares must all be above 0. Got {shares.tolist()} instead.")
    shares = shares / shares.sum()
    test = stats.chisquare(observed, f_exp=shares * observed.sum())
    return SrmResult(
        counts=[int(c) for c in observed], expected_shares=shares.tolist(), statistic=float(test.statistic),
        p_value=float(test.pvalue), threshold=level(threshold, "threshold"),
    )


@dataclass(frozen=True)
class LossResult(JsonResult):
    """Whether the arms lose their session logs at the same rate (χ² test of independence)."""

    served: list[int]
    logged: list[int]
    statistic: float
    p_value: float
    threshold: float
    derived: ClassVar[tuple[str, ...]] = ("mismatch",)

    @property
    def mismatch(self) -> bool:
        """The arms keep different shares of their sessions: their metrics compare different visitors."""
        return self.p_value < self.threshold


def logging_mismatch(served: ArrayLike, logged: ArrayLike, *, threshold: float = SRM_THRESHOLD) -> LossResult:
    """Test whether each arm logged the same share of the predictions it served.

    The SRM check on session counts needs thousands of sessions to see an arm lose 10 % of
    its logs (module docstring), and meanwhile the loss, when it takes the short sessions,
    makes a false winner. The service knows what it served: comparing logged with served
    per arm (``scipy.stats.chi2_contingency`` on the arms × {logged, not logged} table, without
    continuity correction) sees the same loss after a few hundred predictions.

    Raises:
        ExperimentInputError: the arms differ in number, a count is negative or fractional, an
            arm logged more sessions than it served, or an arm served nothing.

    Example:
        >>> logging_mismatch([1000, 1000], [700, 630]).mismatch
        True
        >>> logging_mismatch([1000, 1000], [700, 690]).mismatch
        False
    """
    served_, logged_ = sample(served, "served"), sample(logged, "logged")
    if served_.size != logged_.size:
        raise ExperimentInputError(f"logged must hold one count per arm of served ({served_.size}). "
                                   f"Got {logged_.size} instead.")
    counts = np.concatenate([served_, logged_])
    if (counts < 0).any() or (counts != np.round(counts)).any() or (logged_ > served_).any() or (served_ == 0).any():
        raise ExperimentInputError(
            "served and logged must be whole numbers, logged at most served, every arm serving some. "
            f"Got served {served_.tolist()}, logged {logged_.tolist()} instead."
        )
    table = np.column_stack([logged_, served_ - logged_])
    if (table.sum(axis=0) == 0).any():  # every arm logged all, or none: nothing differs
        return LossResult([int(c) for c in served_], [int(c) for c in logged_], 0.0, 1.0, level(threshold, "threshold"))
    test = stats.chi2_contingency(table, correction=False)
    return LossResult([int(c) for c in served_], [int(c) for c in logged_], float(test.statistic),
                      float(test.pvalue), level(threshold, "threshold"))
