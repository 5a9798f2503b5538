"""Population Stability Index.

* **Name:** ``psi``
* **Accepts:** numeric and categorical columns.
* **Returns:** a **distance** ``PSI = Σ (c_i − r_i) · ln(c_i / r_i)`` over bins, where ``r_i`` and
  ``c_i`` are the reference and current shares of bin ``i``. Numeric columns use the reference's
  deciles as bins (ties merge bins) plus an open bin below and above the reference's range;
  categorical columns use the categories seen in either sample. Shares of empty bins are
  raised to ``EPSILON`` (1e-4, no renormalisation) so the logarithm stays finite.

Reading (the usual credit-scoring conventions): below 0.1 the population is stable, 0.1–0.25 is a
moderate shift worth a look, above 0.25 a significant shift. The default drift threshold is
the lower mark, :data:`PSI_MODERATE` (drift when ``PSI >= 0.1``).
"""

from __future__ import annotations

import numpy as np

from efimero.monitor.drift._bins import DEFAULT_BINS, bin_counts, category_counts, quantile_edges
from efimero.monitor.drift.registry import DriftStatistic, register

PSI_MODERATE = 0.1
"""PSI from which a shift is moderate: the default drift threshold."""
PSI_SIGNIFICANT = 0.25
"""PSI from which a shift is significant."""
EPSILON = 1e-4
"""Floor of a bin's share, so empty bins do not make the index infinite."""


def psi_from_counts(reference_counts: np.ndarray, current_counts: np.ndarray, *, eps: float = EPSILON) -> float:
    """PSI of two histograms over the same bins (counts or shares).

    Example:
        >>> round(psi_from_counts(np.array([50, 50]), np.array([25, 75])), 4)
        0.2747
    """
    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    ref = np.maximum(ref / ref.sum(), eps)
    cur = np.maximum(cur / cur.sum(), eps)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def psi_numeric(reference: np.ndarray, current: np.ndarray, *, bins: int = DEFAULT_BINS) -> float:
    """PSI of a numeric column over the reference's quantile bins (deciles by default)."""
    edges = quantile_edges(reference, bins)
    return psi_from_counts(bin_counts(reference, edges), bin_counts(current, edges))


def psi_categorical(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of a categorical column over the category shares."""
    _, ref, cur = category_counts(reference, current)
    return psi_from_counts(ref, cur)


def psi_band(score: float) -> str:
    """``"stable"`` (< 0.1), ``"moderate"`` (0.1–0.25) or ``"significant"`` (≥ 0.25)."""
    return "stable" if score < PSI_MODERATE else "moderate" if score < PSI_SIGNIFICANT else "significant"


PSI = register(DriftStatistic(
    name="psi", label="PSI", kind="distance", default_threshold=PSI_MODERATE,
    numeric=psi_numeric, categorical=psi_categorical,
    description="Population Stability Index (distance, numeric and categorical)",
))
