"""K-Means, DBSCAN and agglomerative clustering behind the estimator contract.

``predict`` gives each row a cluster id, -1 for noise. K-Means predicts natively (the nearest
centroid). DBSCAN and agglomerative clustering only label the rows they were fitted on, so
efimero defines how a new row is assigned, in the spirit of each algorithm:

- DBSCAN: the cluster of the nearest *core* sample when it lies within ``eps`` (as a border
  point joins a core point's cluster), else noise (-1).
- Agglomerative: the cluster whose centroid (mean of its training rows) is nearest. A
  training row may so get another id than at fit when clusters are not convex.

None of them has a feature importance: ``importance`` is None. Features are not scaled here:
distances (and DBSCAN's ``eps``) are in the units the caller's preprocessing gives them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans
from sklearn.metrics import pairwise_distances_argmin, pairwise_distances_argmin_min

from efimero.estimators._checks import FitData
from efimero.estimators._sklearn import SklearnEstimator
from efimero.estimators._task import NOISE, TaskKind


class _Clusterer(SklearnEstimator):
    tasks = frozenset({TaskKind.CLUSTERING})

    def _predict_values(self, matrix: np.ndarray) -> np.ndarray:
        return super()._predict_values(matrix).astype(np.int64)

    def _importance(self) -> np.ndarray | None:
        return None


class KMeansEstimator(_Clusterer):
    """K-Means (k-means++ start); ``predict`` is the nearest centroid."""

    algorithm = "kmeans"
    default_params: ClassVar[dict[str, Any]] = {"n_clusters": 3, "n_init": 3}
    default_grid: ClassVar[dict[str, list[Any]]] = {"n_clusters": [2, 3, 4, 5, 6, 8]}

    def _build(self) -> Any:
        return KMeans(**self._with(random_state=self.seed))


class DBSCANEstimator(_Clusterer):
    """DBSCAN; a new row joins the cluster of its nearest core sample within ``eps``, else noise (-1)."""

    algorithm = "dbscan"
    default_params: ClassVar[dict[str, Any]] = {"eps": 0.5, "min_samples": 5}
    default_grid: ClassVar[dict[str, list[Any]]] = {"eps": [0.3, 0.5, 1.0, 2.0], "min_samples": [5, 10]}

    def _build(self) -> Any:
        return DBSCAN(**self._with(n_jobs=self.n_jobs))

    def _predict_values(self, matrix: np.ndarray) -> np.ndarray:
        core = self.model.components_
        if len(core) == 0:
            return np.full(len(matrix), NOISE, dtype=np.int64)
        with self._threads():
            nearest, distance = pairwise_distances_argmin_min(matrix, core, metric=self.model.metric)
        core_labels = self.model.labels_[self.model.core_sample_indices_]
        return np.where(distance <= self.model.eps, core_labels[nearest], NOISE).astype(np.int64)


class AgglomerativeEstimator(_Clusterer):
    """Agglomerative (hierarchical) clustering; a new row joins the cluster with the nearest centroid.

    It cannot weight rows (scikit-learn's has no ``sample_weight``).
    """

    algorithm = "agglomerative"
    default_params: ClassVar[dict[str, Any]] = {"n_clusters": 3, "linkage": "ward"}
    default_grid: ClassVar[dict[str, list[Any]]] = {
        "n_clusters": [2, 3, 4, 5, 6, 8], "linkage": ["ward", "average", "complete"],
    }
    accepts_sample_weight = False
    centroids: np.ndarray | None = None

    def _build(self) -> Any:
        return AgglomerativeClustering(**self.params)

    def _fitted(self, data: FitData) -> None:
        labels = self.model.labels_
        self.centroids = np.stack([data.x[labels == k].mean(axis=0) for k in range(labels.max() + 1)])

    def _predict_values(self, matrix: np.ndarray) -> np.ndarray:
        assert self.centroids is not None
        with self._threads():
            return pairwise_distances_argmin(matrix, self.centroids).astype(np.int64)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "centroids": self.centroids}

    def _restore(self, state: dict[str, Any]) -> None:
        super()._restore(state)
        self.centroids = state["centroids"]
