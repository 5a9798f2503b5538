"""The one estimator contract every algorithm implements: fit, predict, importance, save and load.

A subclass supplies the algorithm (``_fit``, ``_predict_proba`` or ``_predict_values``,
``_importance``) and its files (``_save_model``, ``_load_model``); this base class owns what
must be the same everywhere: input checks, label encoding, ``predict`` of classifiers as the
argmax of ``predict_proba`` (so the two never disagree) and the JSON sidecar that says what a
saved directory holds.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from efimero._io import atomic_write_json
from efimero.errors import EstimatorError, PredictionInputError, TrainingError, UnknownAlgorithmError
from efimero.estimators._checks import (
    FitData,
    as_matrix,
    check_weights,
    encode_labels,
    encode_validation_labels,
    numeric_targets,
)
from efimero.estimators._task import TaskKind

SIDECAR = "estimator.json"
"""The JSON file beside every saved model: algorithm, task, params, feature count, labels, files."""

FORMAT_VERSION = 1
"""Version of the sidecar's layout; bump it on breaking changes and keep reading the old one."""


class Estimator(ABC):
    """One algorithm fitted for one task kind, behind the same small contract as every other.

    Args:
        task: what to learn (:class:`TaskKind` or its name); must be in the class's ``tasks``.
        params: hyperparameters, merged over ``default_params`` (names as the library spells them).
        seed: the random seed, so the same data and seed give the same model.
        n_jobs: threads to train with; 1 by default because many small models train side by side.

    Raises:
        UnknownAlgorithmError: the algorithm does not support ``task`` (the message lists those it does).

    Example:
        >>> from sklearn.datasets import load_breast_cancer
        >>> from efimero.estimators import make_estimator
        >>> X, y = load_breast_cancer(return_X_y=True)
        >>> model = make_estimator("random_forest", "binary", params={"n_estimators": 20}).fit(X, y)
        >>> model.predict_proba(X[:2]).shape
        (2, 2)
    """

    algorithm: ClassVar[str]
    """The registry name, e.g. ``"xgboost"``."""
    tasks: ClassVar[frozenset[TaskKind]]
    default_params: ClassVar[Mapping[str, Any]] = {}
    default_grid: ClassVar[Mapping[str, Sequence[Any]]]
    """A small grid of hyperparameters worth trying first (a starting point for tuning)."""
    stopping_param: ClassVar[str | None] = None
    """The hyperparameter capping the rounds or epochs early stopping may cut short; None: no early stopping."""
    allows_nan: ClassVar[bool] = False
    accepts_sample_weight: ClassVar[bool] = True

    def __init__(
        self, task: TaskKind | str, *, params: Mapping[str, Any] | None = None, seed: int = 0, n_jobs: int = 1
    ) -> None:
        self.task = TaskKind.parse(task)
        if self.task not in self.tasks:
            supported = ", ".join(sorted(kind.value for kind in self.tasks))
            raise UnknownAlgorithmError(
                f"{self.algorithm} supports task kinds {supported}. Got {self.task.value!r} instead."
            )
        self.params: dict[str, Any] = {**self.default_params, **(params or {})}
        self.seed = seed
        self.n_jobs = n_jobs
        self.n_features: int | None = None
        self.labels: np.ndarray | None = None
        """Classifiers: the class labels, in the order of ``predict_proba``'s columns."""
        self.n_outputs: int | None = None
        """Multi-output regressors: how many targets each row predicts."""
        self.iterations: int | None = None
        """Rounds or epochs kept by an algorithm with early stopping (below the cap when it stopped early)."""

    # -- the contract ---------------------------------------------------------------------------

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        X_val: Any = None,
        y_val: Any = None,
        sample_weight: Any = None,
    ) -> Self:
        """Fit on ``X`` (rows × features) and ``y``; stop early on ``X_val``/``y_val`` where the algorithm can.

        Args:
            X: numeric features; NaN only where ``allows_nan``.
            y: class labels (any sortable values), numbers, a (rows × outputs) table for
                multi-output, or None for clustering.
            X_val: rows to early-stop on (xgboost, lightgbm, gradient_boosting); ignored by algorithms
                without early stopping and by the MLP, which holds out its own validation fraction.
            y_val: their targets; required with ``X_val`` for supervised tasks.
            sample_weight: one non-negative weight per row.

        Returns:
            The fitted estimator itself.

        Raises:
            TrainingError: the input breaks a rule (shape, NaN, a single class, ...): the message says which.
        """
        data = self._check_fit(X, y, X_val, y_val, sample_weight)
        self.n_features = data.x.shape[1]
        self.labels = data.labels
        self.n_outputs = data.y.shape[1] if data.y is not None and data.y.ndim == 2 else None
        self.iterations = None
        self._fit(data)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Class labels, target values (rows × outputs for multi-output) or cluster ids (-1: noise).

        Raises:
            PredictionInputError: ``X`` has the wrong number of features or holds bad values.
            EstimatorError: the estimator is not fitted.
        """
        matrix = self._check_predict(X)
        if self.task.is_classification:
            assert self.labels is not None
            return self.labels[np.argmax(self._predict_proba(matrix), axis=1)]
        return self._predict_values(matrix)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, (rows × labels), each row summing to 1; classifiers only.

        Raises:
            EstimatorError: the task is not a classification or the estimator is not fitted.
            PredictionInputError: ``X`` has the wrong number of features or holds bad values.
        """
        if not self.task.is_classification:
            raise EstimatorError(f"{self.algorithm} for task {self.task} has no class probabilities; call predict.")
        return self._predict_proba(self._check_predict(X))

    def importance(self) -> np.ndarray | None:
        """Each feature's share of the model's own importance (non-negative, summing to 1), in feature order.

        Native, permutation-free importances: split gain for boosters, impurity decrease for
        forests, standardised coefficients' magnitudes for linear models. None where the
        algorithm has no such notion (MLP, histogram gradient boosting, clustering) or the
        model made no split: compute permutation importance on held-out rows instead.

        Raises:
            EstimatorError: the estimator is not fitted.
        """
        self._require_fitted()
        return self._importance()

    def save(self, directory: str | Path) -> list[str]:
        """Write the model in its native, pickle-free format and the JSON sidecar into ``directory``.

        Returns:
            The names of the files written, relative to ``directory`` (for the registry's checksums).

        Raises:
            EstimatorError: the estimator is not fitted.
        """
        self._require_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = self._save_model(directory)
        atomic_write_json(directory / SIDECAR, self._sidecar(files))
        return [*files, SIDECAR]

    @classmethod
    def load(cls, directory: str | Path) -> Estimator:
        """Read an estimator that :meth:`save` wrote; called on :class:`Estimator`, any algorithm.

        Raises:
            EstimatorError: no sidecar, a malformed or newer one, or another algorithm than ``cls``.
            UntrustedModelError: a scikit-learn model holds types outside the allow-list.
        """
        directory = Path(directory)
        info = read_sidecar(directory)
        target = cls._class_for(info["algorithm"])
        estimator = target(info["task"], params=info["params"], seed=info["seed"])
        estimator.n_features = info["n_features"]
        estimator.labels = None if info["labels"] is None else np.asarray(info["labels"])
        estimator.n_outputs = info["n_outputs"]
        estimator.iterations = info["iterations"]
        missing = [name for name in info["files"] if not (directory / name).is_file()]
        if missing:
            raise EstimatorError(f"{directory} lacks {', '.join(missing)}, which {SIDECAR} lists. Save it again.")
        estimator._load_model(directory)
        return estimator

    # -- what each algorithm supplies -------------------------------------------------------------

    @abstractmethod
    def _fit(self, data: FitData) -> None: ...

    @abstractmethod
    def _importance(self) -> np.ndarray | None: ...

    def _predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # classifiers override it; predict_proba refuses other tasks first

    def _predict_values(self, matrix: np.ndarray) -> np.ndarray:
        raise NotImplementedError  # regressors and clusterers override it

    @abstractmethod
    def _save_model(self, directory: Path) -> list[str]:
        """Write the fitted model's files; return their names."""

    @abstractmethod
    def _load_model(self, directory: Path) -> None:
        """Read the files :meth:`_save_model` wrote (the sidecar's fields are already set)."""

    # -- shared machinery -------------------------------------------------------------------------

    @classmethod
    def _class_for(cls, algorithm: str) -> type[Estimator]:
        if cls is Estimator:
            from efimero.estimators._registry import algorithm_class  # the registry imports every subclass

            return algorithm_class(algorithm)
        if algorithm != cls.algorithm:
            raise EstimatorError(
                f"the saved estimator is a {algorithm} model, not {cls.algorithm}. Load it with Estimator.load."
            )
        return cls

    def _check_fit(self, X: Any, y: Any, X_val: Any, y_val: Any, sample_weight: Any) -> FitData:
        """Every input checked before the estimator changes, so a refused fit leaves it as it was."""
        x = as_matrix(X, name="X", algorithm=self.algorithm, allows_nan=self.allows_nan)
        x_val = None if X_val is None else as_matrix(
            X_val, name="X_val", algorithm=self.algorithm, allows_nan=self.allows_nan, n_features=x.shape[1]
        )
        weight = check_weights(
            sample_weight, n_rows=len(x), algorithm=self.algorithm, accepted=self.accepts_sample_weight
        )
        if self.task is TaskKind.CLUSTERING:
            return FitData(x, None, x_val, None, weight)
        if (x_val is None) != (y_val is None):
            raise TrainingError("X_val and y_val must be given together. Got only one of them.")
        if self.task.is_classification:
            labels, codes = encode_labels(y, task=self.task, n_rows=len(x))
            val_codes = None if x_val is None else encode_validation_labels(y_val, labels, n_rows=len(x_val))
            return FitData(x, codes, x_val, val_codes, weight, labels)
        values = numeric_targets(y, task=self.task, n_rows=len(x))
        val = None if x_val is None else numeric_targets(y_val, task=self.task, n_rows=len(x_val))
        return FitData(x, values, x_val, val, weight)

    def _check_predict(self, X: Any) -> np.ndarray:
        self._require_fitted()
        return as_matrix(
            X, name="X", algorithm=self.algorithm, allows_nan=self.allows_nan, n_features=self.n_features,
            error=PredictionInputError,
        )

    def _require_fitted(self) -> None:
        if self.n_features is None or not self._is_fitted():
            raise EstimatorError(f"this {self.algorithm} estimator is not fitted yet. Call fit (or load) first.")

    @abstractmethod
    def _is_fitted(self) -> bool: ...

    def _sidecar(self, files: list[str]) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "algorithm": self.algorithm,
            "task": self.task.value,
            "params": self.params,
            "seed": self.seed,
            "n_features": self.n_features,
            "labels": None if self.labels is None else self.labels.tolist(),
            "n_outputs": self.n_outputs,
            "iterations": self.iterations,
            "files": files,
        }


def read_sidecar(directory: Path) -> dict[str, Any]:
    """The sidecar of a saved estimator, checked for the keys :meth:`Estimator.load` needs."""
    path = directory / SIDECAR
    if not path.is_file():
        raise EstimatorError(f"{path} does not exist: {directory} holds no saved estimator.")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # ValueError: bad UTF-8 or bad JSON
        raise EstimatorError(f"{path} cannot be read as JSON ({exc}). Save the estimator again.") from exc
    required = ("format_version", "algorithm", "task", "params", "seed", "n_features", "labels", "n_outputs",
                "iterations", "files")
    missing = [key for key in required if not isinstance(info, dict) or key not in info]
    if missing:
        raise EstimatorError(f"{path} lacks key(s) {', '.join(missing)}. Save the estimator again.")
    if not isinstance(info["format_version"], int) or info["format_version"] > FORMAT_VERSION:
        raise EstimatorError(
            f"{path} has format_version {info['format_version']!r}; this efimero reads up to {FORMAT_VERSION}. "
            "Upgrade efimero to load it."
        )
    return info


def normalised(values: np.ndarray) -> np.ndarray | None:
    """``values`` as shares summing to 1, or None when they are all zero (the model made no split)."""
    total = float(np.sum(values))
    return np.asarray(values, dtype=np.float64) / total if total > 0 else None
