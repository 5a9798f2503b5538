"""Kolmogorov–Smirnov two-sample test.

* **Name:** ``ks``
* **Accepts:** numeric columns.
* **Returns:** a **p-value** (:func:`scipy.stats.ks_2samp`, two-sided, scipy's default method:
  exact for small samples, asymptotic otherwise). Drift when ``p < 0.05``.

The test compares whole empirical distributions, so it sees shifts in location, spread and
shape. With thousands of rows it also finds differences too small to matter; reports
therefore pair it with a distance (see :mod:`efimero.monitor.drift.dataset`). On discrete
columns (many ties) it is conservative.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from efimero.monitor.drift.registry import DriftStatistic, register

DEFAULT_THRESHOLD = 0.05


def ks_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    """The two-sided KS p-value of two numeric samples (low: they come from different distributions).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> ks_p_value(rng.normal(0, 1, 500), rng.normal(1, 1, 500)) < 0.05
        True
    """
    return float(stats.ks_2samp(reference, current).pvalue)


KS = register(DriftStatistic(
    name="ks", label="KS p", kind="p_value", default_threshold=DEFAULT_THRESHOLD, numeric=ks_p_value,
    description="Kolmogorov–Smirnov two-sample test (p-value, numeric)",
))
