"""CUPED: variance reduction with a pre-period covariate.

Deng, Xu, Kohavi & Walker (2013), "Improving the Sensitivity of Online Controlled Experiments
by Utilizing Pre-Experiment Data" (WSDM). A covariate measured before exposure (the visitor's
mean session length over earlier visits) explains part of each session's metric; removing that
part leaves the difference between arms unbiased and shrinks its variance by ``corr(x, y)²``,
so a test needs that share fewer sessions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from efimero.errors import ExperimentInputError
from efimero.experiment._base import sample


@dataclass(frozen=True)
class CupedAdjustment:
    """CUPED-adjusted metric values and how much variance the covariate removed.

    ``adjusted`` is in the input's order and keeps its mean. ``variance_reduction`` is
    ``1 - var(adjusted) / var(y)``, the share of the metric's variance the covariate explains;
    the sessions a test needs shrink by the same share. ``note`` says why nothing was adjusted.
    """

    adjusted: np.ndarray = field(repr=False, compare=False)
    theta: float
    variance_reduction: float
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The adjustment without the values, as a JSON-ready mapping."""
        return {"theta": self.theta, "variance_reduction": self.variance_reduction, "note": self.note}


def cuped(y: ArrayLike, x: ArrayLike) -> CupedAdjustment:
    """Remove from ``y`` the part a pre-period covariate ``x`` predicts (CUPED, Deng et al. 2013).

    ``y_adj = y - θ (x - mean(x))`` with ``θ = cov(x, y) / var(x)``, estimated on the pooled
    sessions of **both** arms. Because ``x`` is measured before exposure, its distribution is
    the same in both arms and the adjusted difference of means stays unbiased; its variance
    falls by ``corr(x, y)²``. Pass both arms concatenated and split the result the same way.
    Visitors without pre-period data may carry the pooled mean of ``x`` (no adjustment for them).

    Args:
        y: the metric of the experiment period, one value per session.
        x: the covariate of the same sessions, measured before exposure (e.g. the visitor's
            mean session length over earlier visits).

    Raises:
        ExperimentInputError: empty or non-finite input, or ``y`` and ``x`` of different lengths.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(100, 30, 1000)
        >>> result = cuped(x + rng.normal(0, 10, 1000), x)
        >>> round(result.variance_reduction, 1)
        0.9
    """
    y_, x_ = sample(y, "y"), sample(x, "x")
    if y_.size != x_.size:
        raise ExperimentInputError(
            f"x must hold one covariate value per value of y ({y_.size}). Got {x_.size} values instead."
        )
    covariance = np.cov(x_, y_)
    if covariance[0, 0] == 0:
        return CupedAdjustment(y_.copy(), 0.0, 0.0, "x is constant, so it explains nothing: y is left unadjusted")
    theta = float(covariance[0, 1] / covariance[0, 0])
    adjusted = y_ - theta * (x_ - x_.mean())
    reduction = 1.0 - float(adjusted.var(ddof=1) / covariance[1, 1]) if covariance[1, 1] else 0.0
    return CupedAdjustment(adjusted, theta, reduction)
