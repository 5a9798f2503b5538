"""How good a clustering is without labels: silhouette, Davies–Bouldin, cluster sizes, noise share."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.metrics import davies_bouldin_score, silhouette_score

from efimero.estimators._task import NOISE


@dataclass(frozen=True)
class ClusteringReport:
    """The quality of one clustering.

    ``silhouette`` (-1 to 1, higher is better) and ``davies_bouldin`` (≥ 0, lower is better)
    are computed on the non-noise rows only, and are None with ``not_computable`` saying why
    when those rows form fewer than 2 clusters (or every row is its own cluster).
    """

    n_rows: int
    n_clusters: int
    sizes: dict[int, int]
    """Rows per cluster id, noise excluded."""
    noise_share: float
    """Share of rows labelled noise (-1); 0 for algorithms without noise."""
    silhouette: float | None
    davies_bouldin: float | None
    not_computable: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def clustering_metrics(
    X: Any, labels: Any, *, sample_size: int | None = 10_000, seed: int = 0
) -> ClusteringReport:
    """Score a clustering of ``X`` into ``labels`` (-1: noise).

    Args:
        X: the rows clustered, (rows × features), in the units the clustering saw.
        labels: one cluster id per row.
        sample_size: silhouette is quadratic in the rows, so above this many non-noise rows it is
            computed on a seeded sample of them; None scores every row.
        seed: the sample's seed.

    Example:
        >>> from sklearn.datasets import make_blobs
        >>> X, y = make_blobs(n_samples=200, centers=3, cluster_std=0.5, random_state=0)
        >>> clustering_metrics(X, y).silhouette > 0.7
        True
    """
    matrix = np.asarray(X, dtype=np.float64)
    ids = np.asarray(labels).astype(np.int64)
    clustered = ids != NOISE
    kept, counts = np.unique(ids[clustered], return_counts=True)
    sizes = {int(k): int(c) for k, c in zip(kept, counts, strict=True)}
    noise_share = float(1.0 - clustered.mean()) if len(ids) else 0.0
    n_kept = int(clustered.sum())
    reason = None
    if len(kept) < 2:
        reason = f"{len(kept)} cluster(s) outside noise; silhouette and Davies–Bouldin need at least 2"
    elif len(kept) >= n_kept:
        reason = "every clustered row is a cluster of its own; silhouette needs fewer clusters than rows"
    if reason is not None:
        return ClusteringReport(len(ids), len(kept), sizes, noise_share, None, None, reason)
    points, ids_kept = matrix[clustered], ids[clustered]
    sample = sample_size if sample_size is not None and n_kept > sample_size else None
    silhouette = float(silhouette_score(points, ids_kept, sample_size=sample, random_state=seed))
    davies_bouldin = float(davies_bouldin_score(points, ids_kept))
    return ClusteringReport(len(ids), len(kept), sizes, noise_share, silhouette, davies_bouldin)
