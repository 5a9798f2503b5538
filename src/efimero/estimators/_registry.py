"""Every algorithm by name, with the task kinds it supports and its default grid."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from efimero.errors import UnknownAlgorithmError
from efimero.estimators._base import Estimator
from efimero.estimators._boosters import LightGBMEstimator, XGBoostEstimator
from efimero.estimators._clustering import AgglomerativeEstimator, DBSCANEstimator, KMeansEstimator
from efimero.estimators._sklearn import (
    GradientBoostingEstimator,
    LinearRegressionEstimator,
    LogisticRegressionEstimator,
    MLPEstimator,
    RandomForestEstimator,
)
from efimero.estimators._task import TaskKind

ALGORITHMS: Mapping[str, type[Estimator]] = {
    cls.algorithm: cls
    for cls in (
        XGBoostEstimator,
        LightGBMEstimator,
        RandomForestEstimator,
        LogisticRegressionEstimator,
        LinearRegressionEstimator,
        GradientBoostingEstimator,
        MLPEstimator,
        KMeansEstimator,
        DBSCANEstimator,
        AgglomerativeEstimator,
    )
}
"""Each algorithm's estimator class by its registry name."""


def algorithm_class(name: str) -> type[Estimator]:
    """The estimator class registered as ``name``.

    Raises:
        UnknownAlgorithmError: no algorithm has that name (the message lists those that exist).
    """
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise UnknownAlgorithmError(
            f"algorithm must be one of {', '.join(ALGORITHMS)}. Got {name!r} instead."
        ) from None


def algorithms_for(task: TaskKind | str) -> list[str]:
    """The names of the algorithms that support ``task``, in registry order."""
    kind = TaskKind.parse(task)
    return [name for name, cls in ALGORITHMS.items() if kind in cls.tasks]


def make_estimator(
    name: str,
    task: TaskKind | str,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    n_jobs: int = 1,
) -> Estimator:
    """An unfitted estimator of algorithm ``name`` for ``task``.

    Raises:
        UnknownAlgorithmError: an unknown algorithm or task kind, or a task kind the algorithm
            does not support; the message lists the valid ones.

    Example:
        >>> make_estimator("kmeans", "clustering", params={"n_clusters": 4}).params["n_clusters"]
        4
    """
    return algorithm_class(name)(task, params=params, seed=seed, n_jobs=n_jobs)


def default_grid(name: str) -> dict[str, list[Any]]:
    """A copy of algorithm ``name``'s default hyperparameter grid (values to try per parameter)."""
    return {key: list(values) for key, values in algorithm_class(name).default_grid.items()}


def load_estimator(directory: str | Path) -> Estimator:
    """The estimator saved in ``directory``, whatever its algorithm (the sidecar says which)."""
    return Estimator.load(directory)
