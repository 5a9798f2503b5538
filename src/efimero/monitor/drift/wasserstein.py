"""Wasserstein (earth mover's) distance, in units of the reference's standard deviation.

* **Name:** ``wasserstein``
* **Accepts:** numeric columns.
* **Returns:** a **distance** ``W1(reference, current) / std(reference)`` with
  :func:`scipy.stats.wasserstein_distance`. Drift when it is at least 0.1.

Why normalise: the raw distance is in the column's unit (pixels, seconds, Mbit/s), so no one
threshold would fit every feature. Divided by the reference's standard deviation it reads as
"how many standard deviations of mass had to move": a shift of the mean by ``d`` standard
deviations scores ``d``, whatever the unit. The default threshold, 0.1, is a tenth of a
standard deviation.

A constant reference has no spread; the pooled standard deviation of both samples is used
instead, and two equal constant samples score 0.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from efimero.monitor.drift.registry import DriftStatistic, register

DEFAULT_THRESHOLD = 0.1


def wasserstein_score(reference: np.ndarray, current: np.ndarray) -> float:
    """Wasserstein-1 distance of two numeric samples divided by the reference's standard deviation.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> round(wasserstein_score(rng.normal(0, 2, 5000), rng.normal(1, 2, 5000)), 1)
        0.5
    """
    distance = float(stats.wasserstein_distance(reference, current))
    scale = float(np.std(reference))
    if scale == 0.0:
        scale = float(np.std(np.concatenate([reference, current])))
    return distance / scale if scale > 0.0 else 0.0


WASSERSTEIN = register(DriftStatistic(
    name="wasserstein", label="W/σ", kind="distance", default_threshold=DEFAULT_THRESHOLD,
    numeric=wasserstein_score,
    description="Wasserstein distance over the reference's standard deviation (distance, numeric)",
))
