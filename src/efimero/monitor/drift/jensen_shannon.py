"""Jensen–Shannon distance between two histograms.

* **Name:** ``jensen_shannon``
* **Accepts:** numeric and categorical columns.
* **Returns:** a **distance** in [0, 1]: :func:`scipy.spatial.distance.jensenshannon` with
  ``base=2``, the square root of the Jensen–Shannon divergence (0: same histogram, 1: disjoint
  supports). It is symmetric, unlike PSI's reference-weighted view. Drift when it is at least 0.1.

Numeric columns are binned on shared bins: the deciles of both samples pooled (ties merge bins),
so neither sample alone decides where detail is. Categorical columns use the category shares.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import distance

from efimero.monitor.drift._bins import DEFAULT_BINS, bin_counts, category_counts, quantile_edges
from efimero.monitor.drift.registry import DriftStatistic, register

DEFAULT_THRESHOLD = 0.1


def js_from_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2) of two histograms over the same bins.

    Example:
        >>> js_from_counts(np.array([1, 0]), np.array([0, 1]))
        1.0
    """
    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    return float(np.clip(distance.jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2), 0.0, 1.0))


def js_numeric(reference: np.ndarray, current: np.ndarray, *, bins: int = DEFAULT_BINS) -> float:
    """Jensen–Shannon distance of a numeric column over the pooled samples' quantile bins."""
    edges = quantile_edges(np.concatenate([reference, current]), bins)
    return js_from_counts(bin_counts(reference, edges), bin_counts(current, edges))


def js_categorical(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen–Shannon distance of a categorical column over the category shares."""
    _, ref, cur = category_counts(reference, current)
    return js_from_counts(ref, cur)


JENSEN_SHANNON = register(DriftStatistic(
    name="jensen_shannon", label="JS", kind="distance", default_threshold=DEFAULT_THRESHOLD,
    numeric=js_numeric, categorical=js_categorical,
    description="Jensen–Shannon distance, base 2, in [0, 1] (distance, numeric and categorical)",
))
