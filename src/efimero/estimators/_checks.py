"""Input checks every estimator shares, so each algorithm fails the same clear way on bad data.

Fit-time problems raise :class:`~efimero.errors.TrainingError`, predict-time ones
:class:`~efimero.errors.PredictionInputError`; the messages name the rule, the value seen and
what to do, rather than letting an XGBoost or scikit-learn traceback surface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from efimero.errors import EfimeroError, TrainingError, format_list
from efimero.estimators._task import TaskKind


@dataclass(frozen=True)
class FitData:
    """Checked training input: float features, encoded targets, optional validation rows and weights.

    ``y`` holds class indices (into the estimator's labels) for classifiers, floats for
    regressors and is None for clustering; ``y_val`` likewise.
    """

    x: np.ndarray
    y: np.ndarray | None
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    weight: np.ndarray | None = None
    labels: np.ndarray | None = None
    """Classifiers: the sorted class labels that ``y`` indexes."""


def as_matrix(
    values: Any,
    *,
    name: str,
    algorithm: str,
    allows_nan: bool,
    n_features: int | None = None,
    error: type[EfimeroError] = TrainingError,
) -> np.ndarray:
    """``values`` as a 2-D float64 array, or ``error`` naming what is wrong with it."""
    try:
        matrix = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise error(f"{name} must hold numbers only. Got {exc} instead; encode text columns first.") from exc
    if matrix.ndim != 2:
        raise error(f"{name} must be a 2-D table (rows × features). Got an array of shape {matrix.shape} instead.")
    if matrix.shape[0] == 0:
        raise error(f"{name} must hold at least one row. Got 0 rows instead.")
    if n_features is not None and matrix.shape[1] != n_features:
        raise error(
            f"{name} must have {n_features} feature(s), as at fit. Got {matrix.shape[1]} instead; "
            "pass the same feature columns in the same order."
        )
    _check_finite(matrix, name=name, algorithm=algorithm, allows_nan=allows_nan, error=error)
    return matrix


def _check_finite(
    matrix: np.ndarray, *, name: str, algorithm: str, allows_nan: bool, error: type[EfimeroError]
) -> None:
    infinite = np.isinf(matrix)
    if infinite.any():
        raise error(f"{name} must hold finite numbers. Got infinity in column(s) {_columns(infinite)} instead.")
    missing = np.isnan(matrix)
    if missing.any() and not allows_nan:
        raise error(
            f"{name} must not hold missing values (NaN) for {algorithm}. Got NaN in column(s) {_columns(missing)} "
            "instead; impute them first, or choose an algorithm that handles them natively "
            "(xgboost, lightgbm, gradient_boosting, random_forest)."
        )


def _columns(mask: np.ndarray) -> str:
    return format_list(np.flatnonzero(mask.any(axis=0)).tolist())


def encode_labels(y: Any, *, task: TaskKind, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Class labels (sorted) and each row's index into them; a binary task needs exactly two labels."""
    column = _target(y, n_rows=n_rows, ndim=1)
    if column.dtype.kind == "f" and np.isnan(column).any():
        raise TrainingError("y must not hold missing values (NaN). Drop those rows or fill in their labels.")
    labels, codes = np.unique(column, return_inverse=True)
    if len(labels) < 2:
        raise TrainingError(
            f"y must hold at least two classes to train a {task} classifier. Got one ({labels[0]!r}) instead; "
            "check the split or the target column."
        )
    if task is TaskKind.BINARY and len(labels) != 2:
        raise TrainingError(
            f"y must hold exactly two classes for task binary. Got {len(labels)} "
            f"({format_list(labels.tolist())}) instead; use task multiclass."
        )
    return labels, codes.astype(np.int64)


def encode_validation_labels(y_val: Any, labels: np.ndarray, *, n_rows: int) -> np.ndarray:
    """Validation labels as indices into the training ``labels``; a label never trained on is refused."""
    column = np.asarray(y_val).ravel()
    unseen = np.setdiff1d(column, labels)
    if len(column) != n_rows or len(unseen):
        raise TrainingError(
            f"y_val must hold one training label per row of X_val ({n_rows}). "
            f"Got {len(column)} values, unseen labels: {format_list(unseen.tolist())}."
        )
    return np.searchsorted(labels, column).astype(np.int64)


def numeric_targets(y: Any, *, task: TaskKind, n_rows: int) -> np.ndarray:
    """Regression targets as floats: one column (1-D) for regression, a 2-D table for multi-output."""
    values = _target(y, n_rows=n_rows, ndim=2 if task is TaskKind.MULTI_OUTPUT else 1)
    try:
        values = values.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"y must hold numbers for task {task}. Got {exc} instead.") from exc
    if not np.isfinite(values).all():
        raise TrainingError(f"y must hold finite numbers for task {task}. Got NaN or infinity instead.")
    if task is TaskKind.MULTI_OUTPUT and values.shape[1] < 2:
        raise TrainingError("y must have at least two columns for task multi_output. Got one; use task regression.")
    return values


def _target(y: Any, *, n_rows: int, ndim: int) -> np.ndarray:
    if y is None:
        raise TrainingError("y must be given for a supervised task. Got None instead.")
    values = np.asarray(y)
    if ndim == 1 and values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != ndim:
        shape = "one value per row" if ndim == 1 else "a 2-D table (rows × outputs)"
        raise TrainingError(f"y must be {shape}. Got an array of shape {values.shape} instead.")
    if values.shape[0] != n_rows:
        raise TrainingError(f"y must have one entry per row of X ({n_rows}). Got {values.shape[0]} instead.")
    return values


def check_weights(weight: Any, *, n_rows: int, algorithm: str, accepted: bool) -> np.ndarray | None:
    """Per-row weights as floats, or None; refused where the algorithm cannot use them."""
    if weight is None:
        return None
    if not accepted:
        raise TrainingError(f"{algorithm} cannot weight rows. Got sample_weight; drop it or choose another algorithm.")
    values = np.asarray(weight, dtype=np.float64)
    if values.shape != (n_rows,):
        raise TrainingError(f"sample_weight must have one number per row ({n_rows}). Got shape {values.shape} instead.")
    if not np.isfinite(values).all() or (values < 0).any() or values.sum() <= 0:
        raise TrainingError("sample_weight must hold finite, non-negative numbers with a positive sum.")
    return values
