"""Metrics per task kind, their direction, the default gate and the baselines a model must beat.

Classification reports accuracy, precision, recall, F1 and ROC-AUC under the same names for
binary and multiclass, so one gate (the MLOps guide's) reads both: binary scores the positive
class (the greater label, ``1`` for 0/1 targets); multiclass macro-averages precision, recall
and F1 over classes and takes one-vs-rest ROC-AUC. Regression reports R², RMSE and MAE
(averaged over outputs for multi-output); clustering silhouette, Davies–Bouldin and the noise
share (:func:`efimero.estimators.clustering_metrics`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
    root_mean_squared_error,
)

from efimero.estimators import TaskKind, clustering_metrics

_CLASSIFICATION = ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"]
_REGRESSION = ["r2", "rmse", "mae"]
_CLUSTERING = ["silhouette", "davies_bouldin", "noise_share", "n_clusters"]

METRICS: Mapping[TaskKind, list[str]] = {
    TaskKind.BINARY: _CLASSIFICATION,
    TaskKind.MULTICLASS: _CLASSIFICATION,
    TaskKind.REGRESSION: _REGRESSION,
    TaskKind.MULTI_OUTPUT: _REGRESSION,
    TaskKind.CLUSTERING: _CLUSTERING,
}
"""Every metric a task reports, by name; the gate and the primary metric pick among them."""

SCORERS: Mapping[TaskKind, list[str]] = {
    **METRICS, TaskKind.CLUSTERING: ["silhouette", "davies_bouldin"],
}
"""Metrics that cross-validation can average over folds (the CV scorers of a use case)."""

LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "davies_bouldin", "noise_share"})
"""A gate threshold on one of these is a maximum; on any other metric, a minimum."""

DEFAULT_PRIMARY: Mapping[TaskKind, str] = {
    TaskKind.BINARY: "roc_auc",
    TaskKind.MULTICLASS: "f1",
    TaskKind.REGRESSION: "r2",
    TaskKind.MULTI_OUTPUT: "r2",
    TaskKind.CLUSTERING: "silhouette",
}

_GUIDE = {"accuracy": 0.75, "precision": 0.70, "recall": 0.65, "f1": 0.70, "roc_auc": 0.75}
DEFAULT_GATES: Mapping[TaskKind, Mapping[str, float]] = {
    TaskKind.BINARY: _GUIDE,
    TaskKind.MULTICLASS: _GUIDE,
    # The guide sets none for regression: R² ≥ 0.3 means the model explains a third of the variance
    # the mean baseline leaves, a floor below which a regression is rarely worth serving.
    TaskKind.REGRESSION: {"r2": 0.30},
    TaskKind.MULTI_OUTPUT: {"r2": 0.30},
    # Below 0.25 silhouette finds "no substantial structure" (Kaufman & Rousseeuw); a clustering that
    # calls half the rows noise describes too little of them.
    TaskKind.CLUSTERING: {"silhouette": 0.25, "noise_share": 0.5},
}
"""The gate when a use case sets none: the MLOps guide's thresholds for classification."""


def better(metric: str, a: float | None, b: float | None) -> bool:
    """Whether ``a`` is strictly better than ``b`` on ``metric`` (a missing value is worst)."""
    if a is None or np.isnan(a):
        return False
    if b is None or np.isnan(b):
        return True
    return a < b if metric in LOWER_IS_BETTER else a > b


def sort_value(metric: str, value: float | None) -> float:
    """A number where larger is better whatever the metric (``-inf`` for a missing value): for ``max``."""
    if value is None or np.isnan(value):
        return float("-inf")
    return -value if metric in LOWER_IS_BETTER else value


def evaluate(task: TaskKind, y: Any, predicted: Any, *, proba: Any = None, labels: Any = None,
             X: Any = None, seed: int = 0) -> dict[str, Any]:
    """Every metric of ``task`` for one set of predictions (``X`` is needed for clustering)."""
    if task is TaskKind.CLUSTERING:
        report = clustering_metrics(X, predicted, seed=seed)
        return {"silhouette": report.silhouette, "davies_bouldin": report.davies_bouldin,
                "noise_share": report.noise_share, "n_clusters": report.n_clusters,
                "sizes": {str(k): v for k, v in report.sizes.items()}}
    if task.is_classification:
        proba = np.asarray(proba, dtype=np.float64)
        proba = proba / proba.sum(axis=1, keepdims=True)  # boosters' float32 rows miss 1 by ~1e-7: log_loss warns
        return _classification(task, np.asarray(y), np.asarray(predicted), proba, np.asarray(labels))
    y, predicted = np.asarray(y, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    return {"r2": float(r2_score(y, predicted)), "rmse": float(root_mean_squared_error(y, predicted)),
            "mae": float(mean_absolute_error(y, predicted))}


def _classification(task: TaskKind, y: np.ndarray, predicted: np.ndarray, proba: np.ndarray,
                    labels: np.ndarray) -> dict[str, Any]:
    binary = task is TaskKind.BINARY
    averaged: dict[str, Any] = {"pos_label": labels[-1], "average": "binary"} if binary else {"average": "macro"}
    scores: dict[str, Any] = {
        "accuracy": float(accuracy_score(y, predicted)),
        "precision": float(precision_score(y, predicted, labels=labels, zero_division=0, **averaged)),
        "recall": float(recall_score(y, predicted, labels=labels, zero_division=0, **averaged)),
        "f1": float(f1_score(y, predicted, labels=labels, zero_division=0, **averaged)),
    }
    try:
        scores["roc_auc"] = float(roc_auc_score(y == labels[-1], proba[:, -1]) if binary else
                                  roc_auc_score(y, proba, multi_class="ovr", labels=labels))
    except ValueError:  # a split holding one class only: ROC-AUC is undefined
        scores["roc_auc"] = None
    scores["log_loss"] = float(log_loss(y, proba, labels=labels))
    return scores


def baseline(task: TaskKind, y_train: Any, y: Any, *, X: Any = None, n_clusters: int = 2,
             seed: int = 0) -> dict[str, Any]:
    """The metrics of the model that needs no learning, on the rows ``y`` (or ``X``).

    Classification: always the training split's majority class, with its class frequencies as
    probabilities (ROC-AUC 0.5). Regression: always the training mean (R² about 0). Clustering:
    each row given one of ``n_clusters`` ids at random (seeded), silhouette about 0.
    """
    if task is TaskKind.CLUSTERING:
        assert X is not None
        ids = np.random.default_rng(seed).integers(0, max(n_clusters, 2), size=len(X))
        return evaluate(task, None, ids, X=X, seed=seed)
    if task.is_classification:
        labels, counts = np.unique(np.asarray(y_train), return_counts=True)
        rows = len(np.asarray(y))
        proba = np.tile(counts / counts.sum(), (rows, 1))
        return evaluate(task, y, np.full(rows, labels[np.argmax(counts)]), proba=proba, labels=labels)
    mean = np.asarray(y_train, dtype=np.float64).mean(axis=0)
    return evaluate(task, y, np.broadcast_to(mean, np.asarray(y).shape))


def gate_failures(metrics: Mapping[str, Any], thresholds: Mapping[str, float], *, primary: str,
                  baseline: Mapping[str, Any] | None = None) -> list[str]:
    """Why a model's test ``metrics`` fail the gate, one phrase per failed threshold (empty: it passes).

    A threshold is a minimum, or a maximum for the metrics in :data:`LOWER_IS_BETTER`. With a
    ``baseline``, the primary metric must also be strictly better than the baseline's.
    """
    failures = []
    for metric, threshold in thresholds.items():
        value = metrics.get(metric)
        if value is None:
            failures.append(f"{metric} cannot be computed (threshold {threshold:g})")
        elif metric in LOWER_IS_BETTER and value > threshold:
            failures.append(f"{metric} {value:.4f} is above the maximum {threshold:g}")
        elif metric not in LOWER_IS_BETTER and value < threshold:
            failures.append(f"{metric} {value:.4f} is below the minimum {threshold:g}")
    if baseline is not None and not better(primary, metrics.get(primary), baseline.get(primary)):
        failures.append(f"{primary} {_shown(metrics.get(primary))} does not beat the baseline's "
                        f"{_shown(baseline.get(primary))}")
    return failures


def _shown(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"
