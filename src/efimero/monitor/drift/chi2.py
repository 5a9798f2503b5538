"""Chi-squared test of homogeneity on category counts.

* **Name:** ``chi2``
* **Accepts:** categorical columns (labels, binary flags, small integers).
* **Returns:** a **p-value** from :func:`scipy.stats.chi2_contingency` on the 2 × k table of
  counts (reference row, current row) over the categories seen in either sample; scipy's default
  Yates correction applies when there are two categories. Drift when ``p < 0.05``.

A category seen in only one sample still counts (its expected count is positive), so a new
label in the current data is detected. Like KS, the test turns significant for tiny changes in
large samples; reports pair it with PSI and Jensen–Shannon.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from efimero.monitor.drift._bins import category_counts
from efimero.monitor.drift.registry import DriftStatistic, register

DEFAULT_THRESHOLD = 0.05


def chi2_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    """The chi-squared p-value that both samples share one distribution over the categories.

    One category in total (both samples constant and equal) gives 1.0: nothing can differ.

    Example:
        >>> chi2_p_value(np.array(["a"] * 50 + ["b"] * 50), np.array(["a"] * 50 + ["b"] * 50))
        1.0
    """
    _, ref, cur = category_counts(reference, current)
    if len(ref) < 2:
        return 1.0
    return float(stats.chi2_contingency(np.vstack([ref, cur])).pvalue)


CHI2 = register(DriftStatistic(
    name="chi2", label="χ² p", kind="p_value", default_threshold=DEFAULT_THRESHOLD, categorical=chi2_p_value,
    description="Chi-squared test on category counts (p-value, categorical)",
))
