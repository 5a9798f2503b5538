"""Shared binning of the histogram statistics (PSI, Jensen–Shannon): quantile bins and category counts."""

from __future__ import annotations

import numpy as np

DEFAULT_BINS = 10
"""Quantile bins per numeric column (deciles), the usual choice for PSI."""


def quantile_edges(values: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Distinct quantiles of ``values`` at 0, 1/bins, ..., 1: the edges of (at most) ``bins`` bins.

    Ties collapse edges, so a discrete column gets fewer, wider bins; a constant one gets one edge.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1. Got {bins} instead.")
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the bins of ``edges`` plus one open bin on each side.

    The bins are ``(-inf, e0)``, ``[e0, e1)``, ..., ``[e(k-1), ek]``, ``(ek, inf)``: values outside
    the range the edges came from land in the outer bins instead of being lost, and a single edge
    (a constant reference) still separates below, equal and above.
    """
    interior = max(len(edges) - 1, 1)
    index = np.minimum(np.searchsorted(edges, values, side="right"), interior)
    index = np.where(values < edges[0], 0, index)
    index = np.where(values > edges[-1], interior + 1, index)
    return np.bincount(index, minlength=interior + 2).astype(float)


def category_counts(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The categories seen in either sample (sorted) and the counts of each sample over them."""
    categories = np.unique(np.concatenate([reference, current]))
    ref, cur = (np.bincount(np.searchsorted(categories, sample), minlength=len(categories)).astype(float)
                for sample in (reference, current))
    return categories, ref, cur
