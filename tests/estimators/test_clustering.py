"""How each clustering algorithm labels rows it was not fitted on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from efimero.estimators import load_estimator, make_estimator

CENTRES = np.array([[0.0, 0.0], [8.0, 8.0], [-8.0, 8.0]])

Blobs = tuple[np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def blobs() -> Blobs:
    x, y = make_blobs(n_samples=300, n_features=2, centers=CENTRES, cluster_std=0.6, random_state=0)
    return x, y


@pytest.mark.parametrize(("name", "params"), [
    ("kmeans", {"n_clusters": 3}),
    ("dbscan", {"eps": 1.0, "min_samples": 5}),
    ("agglomerative", {"n_clusters": 3}),
])
def test_new_rows_near_a_cluster_join_it(name: str, params: dict[str, object], blobs: Blobs) -> None:
    x, y = blobs
    estimator = make_estimator(name, "clustering", params=params).fit(x)
    assert adjusted_rand_score(y, estimator.predict(x)) > 0.95
    near_centres = CENTRES + 0.1
    assert len(set(estimator.predict(near_centres))) == 3
    assert set(estimator.predict(near_centres)) <= set(estimator.predict(x))


def test_dbscan_calls_a_row_far_from_every_core_sample_noise(blobs: Blobs, tmp_path: Path) -> None:
    x, _ = blobs
    estimator = make_estimator("dbscan", "clustering", params={"eps": 1.0, "min_samples": 5}).fit(x)
    far = np.array([[40.0, 40.0], [0.0, 4.0]])
    np.testing.assert_array_equal(estimator.predict(far), [-1, -1])
    estimator.save(tmp_path)
    np.testing.assert_array_equal(load_estimator(tmp_path).predict(far), [-1, -1])


def test_dbscan_without_core_samples_calls_everything_noise(blobs: Blobs) -> None:
    x, _ = blobs
    estimator = make_estimator("dbscan", "clustering", params={"eps": 1e-3, "min_samples": 5}).fit(x)
    assert (estimator.predict(x[:10]) == -1).all()


def test_agglomerative_assigns_a_far_row_to_the_nearest_centroid_never_noise(blobs: Blobs) -> None:
    x, _ = blobs
    estimator = make_estimator("agglomerative", "clustering", params={"n_clusters": 3}).fit(x)
    far_right = estimator.predict(np.array([[100.0, 8.0]]))[0]
    assert far_right == estimator.predict(CENTRES[1:2])[0]
