"""Clustering quality: silhouette, Davies–Bouldin, sizes and noise share, honest when not computable."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from efimero.estimators import clustering_metrics, make_estimator

Blobs = tuple[np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def blobs() -> Blobs:
    x, y = make_blobs(n_samples=300, n_features=2, centers=[[0, 0], [10, 10], [-10, 10]], cluster_std=0.5,
                      random_state=0)
    return x, y


def test_well_separated_clusters_score_high_silhouette_and_low_davies_bouldin(blobs: Blobs) -> None:
    x, y = blobs
    report = clustering_metrics(x, y)
    assert report.silhouette is not None and report.silhouette > 0.85
    assert report.davies_bouldin is not None and report.davies_bouldin < 0.2
    assert report.sizes == {0: 100, 1: 100, 2: 100}
    assert (report.n_clusters, report.noise_share, report.not_computable) == (3, 0.0, None)


def test_random_labels_score_far_worse_than_the_true_ones(blobs: Blobs) -> None:
    x, y = blobs
    shuffled = np.random.default_rng(0).permutation(y)
    report = clustering_metrics(x, shuffled)
    assert report.silhouette is not None and report.silhouette < 0.1
    assert report.davies_bouldin is not None and report.davies_bouldin > 5


def test_dbscan_noise_share_counts_the_outliers_and_scores_the_rest(blobs: Blobs) -> None:
    x, _ = blobs
    outliers = np.array([[30.0, -30.0], [-30.0, -30.0], [30.0, 30.0]])
    rows = np.vstack([x, outliers])
    labels = make_estimator("dbscan", "clustering", params={"eps": 1.0, "min_samples": 5}).fit(rows).predict(rows)
    report = clustering_metrics(rows, labels)
    assert report.noise_share == pytest.approx(3 / 303)
    assert sum(report.sizes.values()) == 300
    assert report.n_clusters == 3
    assert report.silhouette is not None and report.silhouette > 0.85


def test_fewer_than_two_clusters_are_reported_not_computable(blobs: Blobs) -> None:
    x, _ = blobs
    labels = np.full(len(x), -1)
    labels[:50] = 0
    report = clustering_metrics(x, labels)
    assert report.silhouette is None and report.davies_bouldin is None
    assert report.not_computable is not None and "need at least 2" in report.not_computable
    assert report.to_dict()["noise_share"] == pytest.approx(250 / 300)


def test_every_row_its_own_cluster_is_reported_not_computable() -> None:
    report = clustering_metrics(np.eye(3), [0, 1, 2])
    assert report.silhouette is None and "cluster of its own" in (report.not_computable or "")


def test_large_sets_are_scored_on_a_seeded_sample(blobs: Blobs) -> None:
    x, y = blobs
    first, again = (clustering_metrics(x, y, sample_size=60, seed=1) for _ in range(2))
    assert first.silhouette == again.silhouette
    assert first.silhouette is not None and first.silhouette > 0.8
