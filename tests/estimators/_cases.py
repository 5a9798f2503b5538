"""Small datasets per task kind and fast hyperparameters per algorithm, shared by the estimator tests."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine, make_blobs, make_regression
from sklearn.model_selection import train_test_split

from efimero.estimators import ALGORITHMS, TaskKind

FAST_PARAMS: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 40, "max_depth": 3},
    "lightgbm": {"n_estimators": 40, "num_leaves": 7},
    "random_forest": {"n_estimators": 15, "max_depth": 6},
    "gradient_boosting": {"max_iter": 40},
    "mlp": {"hidden_layer_sizes": [16], "max_iter": 60},
    "dbscan": {"eps": 1.5, "min_samples": 5},
}
"""Hyperparameters that keep each fit well under a second on the datasets below."""

NO_IMPORTANCE = {"gradient_boosting", "mlp", "kmeans", "dbscan", "agglomerative"}
"""The algorithms documented to have no native importance (``importance()`` is None)."""

CASES = [(name, task) for name, cls in ALGORITHMS.items() for task in sorted(cls.tasks)]
"""Every (algorithm, task kind) the registry supports: the contract suite runs on each."""


@dataclass(frozen=True)
class Split:
    """Training rows, validation rows (for early stopping) and their targets (None for clustering)."""

    x: np.ndarray
    y: np.ndarray | None
    x_val: np.ndarray
    y_val: np.ndarray | None


@cache
def dataset(task: TaskKind) -> Split:
    """A small, seeded dataset for ``task``: breast cancer, wine, diabetes, a generated multi-output
    regression, and three well-separated blobs."""
    y: np.ndarray | None
    if task is TaskKind.BINARY:
        x, y = load_breast_cancer(return_X_y=True)
    elif task is TaskKind.MULTICLASS:
        x, y = load_wine(return_X_y=True)
    elif task is TaskKind.REGRESSION:
        x, y = load_diabetes(return_X_y=True)
    elif task is TaskKind.MULTI_OUTPUT:
        x, y = make_regression(n_samples=300, n_features=8, n_targets=3, noise=10.0, random_state=0)
    else:
        x, _ = make_blobs(n_samples=300, n_features=4, centers=3, cluster_std=0.6, random_state=0)
        y = None
    if y is None:
        x_train, x_val = train_test_split(x, test_size=0.2, random_state=0)
        return Split(x_train, None, x_val, None)
    stratify = y if task.is_classification else None
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, random_state=0, stratify=stratify)
    return Split(x_train, y_train, x_val, y_val)
