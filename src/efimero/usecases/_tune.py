"""Tuning one algorithm over its grid: grid, random or Optuna candidates, each scored by k-fold CV.

The estimators are efimero's own contract, not scikit-learn estimators, so the search is
written here rather than with ``GridSearchCV``: a candidate is fitted on k-1 folds of the
training split and scored on the k-th; the best mean of the primary metric wins. Folds are
stratified for classification and seeded. The preprocessing is part of what each fold fits, as
in a scikit-learn ``Pipeline``: :func:`cv_folds` fits a fresh copy of it on each fold's k-1
training folds only, so no held-out fold's statistics (means, scales, fill values, categories)
reach the model scored on it. Clustering has nothing to hold out: a candidate is scored on the
rows it clustered, preprocessed as the final model's are, and one that calls more than half of
them noise ranks last.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import KFold, ParameterGrid, ParameterSampler, StratifiedKFold

from efimero.errors import EfimeroError, TrainingError
from efimero.estimators import Estimator, TaskKind, make_estimator
from efimero.usecases._metrics import evaluate, sort_value
from efimero.usecases._prep import fit_and_transform
from efimero.usecases._schema import Feature

logger = logging.getLogger(__name__)

MAX_NOISE_SHARE = 0.5
"""A clustering candidate calling more than this share of rows noise is ranked below every other."""


@dataclass(frozen=True)
class Search:
    """How to search: the method, its budget, the CV and what to rank by."""

    method: str
    n_iter: int
    n_trials: int
    folds: int
    scorers: list[str]
    primary: str
    seed: int
    n_jobs: int = 1


@dataclass(frozen=True)
class Fold:
    """One CV fold as matrices: the preprocessing behind both was fitted on the ``fit`` rows only."""

    X_fit: np.ndarray
    y_fit: np.ndarray
    X_held: np.ndarray
    y_held: np.ndarray


def cv_folds(task: TaskKind, preprocessor: ColumnTransformer, X: pd.DataFrame, y: np.ndarray | None,
             features: list[Feature], search: Search) -> list[Fold]:
    """The k CV folds of the training split ``X``, each preprocessed by its own copy of ``preprocessor``.

    Each copy is fitted on the fold's k-1 training folds and then transforms them and the held-out
    fold, as a ``Pipeline(preprocessor, estimator)`` would inside ``cross_validate``; the final
    model's preprocessing is fitted on the whole training split apart from these. The folds are
    the same for every algorithm and candidate, so they are preprocessed once per training.
    Clustering has no folds (an empty list).
    """
    if task is TaskKind.CLUSTERING or y is None:
        return []
    folds = []
    for train, held in _folds(task, y, search):
        _, (X_fit, X_held) = fit_and_transform(preprocessor, X.iloc[train], [X.iloc[held]], features)
        folds.append(Fold(X_fit, y[train], X_held, y[held]))
    return folds


@dataclass
class Tuned:
    """The winning hyperparameters of one algorithm, their CV scores and every candidate tried."""

    params: dict[str, Any]
    cv: dict[str, float | None]
    cv_std: float | None
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def tune(algorithm: str, task: TaskKind, *, fixed: Mapping[str, Any], grid: Mapping[str, list[Any]],
         X: np.ndarray, folds: list[Fold], search: Search) -> Tuned:
    """The best of ``grid`` (over ``fixed`` params) for ``algorithm`` by ``search.primary``'s CV mean.

    ``folds`` come from :func:`cv_folds`; ``X`` is the preprocessed training split, used only by
    clustering (scored on the rows it clustered).

    Raises:
        TrainingError: every candidate failed to fit (one error is named).
    """
    started = time.perf_counter()
    tried: dict[str, tuple[dict[str, Any], float, dict[str, Any]]] = {}

    def score(candidate: dict[str, Any]) -> float:
        key = repr(sorted(candidate.items()))
        if key not in tried:
            tried[key] = (candidate, *_cross_validate(algorithm, task, {**fixed, **candidate}, X, folds, search))
        return tried[key][1]

    best = _search(grid, search, score)
    chosen = tried[repr(sorted(best.items()))][2]
    if chosen["error"]:
        raise TrainingError(f"{algorithm}: every candidate of the grid failed, e.g. {chosen['error']}")
    trials = [{"params": params, **record} for params, _, record in tried.values()]
    return Tuned({**fixed, **best}, chosen["cv"], chosen["cv_std"], trials, time.perf_counter() - started)


def _search(grid: Mapping[str, list[Any]], search: Search, score: Callable[[dict[str, Any]], float]) -> dict[str, Any]:
    space = {name: list(values) for name, values in grid.items()}
    if not space:
        score({})
        return {}
    if search.method == "optuna":
        return _optuna(space, search, score)
    if search.method == "random":
        size = len(ParameterGrid(space))  # asking ParameterSampler for more than the grid holds only warns
        candidates = list(ParameterSampler(space, n_iter=min(search.n_iter, size), random_state=search.seed))
    else:
        candidates = list(ParameterGrid(space))
    return max(candidates, key=score)  # max keeps the first of equal scores: the grid's order decides ties


def _optuna(space: dict[str, list[Any]], search: Search, score: Callable[[dict[str, Any]], float]) -> dict[str, Any]:
    import optuna

    def objective(trial: optuna.Trial) -> float:
        # indices, because Optuna's categorical choices must be plain scalars (a layer list is not)
        picked = {name: values[trial.suggest_categorical(name, list(range(len(values))))]
                  for name, values in space.items()}
        value = score(picked)
        return value if np.isfinite(value) else -1e300

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial would bury the progress bars
    sampler = optuna.samplers.TPESampler(seed=search.seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=search.n_trials)
    return {name: space[name][index] for name, index in study.best_params.items()}


def _cross_validate(algorithm: str, task: TaskKind, params: dict[str, Any], X: np.ndarray,
                    cv: list[Fold], search: Search) -> tuple[float, dict[str, Any]]:
    """The candidate's sortable primary score and its record (CV means, std, error)."""
    try:
        if task is TaskKind.CLUSTERING:
            model = _fit(algorithm, task, params, X, None, search)
            folds = [evaluate(task, None, model.predict(X), X=X, seed=search.seed)]
        else:
            folds = [predict_and_score(_fit(algorithm, task, params, fold.X_fit, fold.y_fit, search),
                                       fold.X_held, fold.y_held, seed=search.seed) for fold in cv]
    except EfimeroError as exc:
        logger.info("%s %s failed: %s", algorithm, params, exc)
        return float("-inf"), {"cv": {}, "cv_std": None, "error": str(exc)}
    names = list(dict.fromkeys([*search.scorers, search.primary]))
    means = {name: _mean([fold.get(name) for fold in folds]) for name in names}
    primary = [float(fold[search.primary]) for fold in folds if fold.get(search.primary) is not None]
    std = float(np.std(primary)) if 1 < len(primary) == len(folds) else None
    value = sort_value(search.primary, means[search.primary])
    if task is TaskKind.CLUSTERING and (folds[0]["noise_share"] > MAX_NOISE_SHARE):
        value = float("-inf")
    return value, {"cv": means, "cv_std": std, "error": None}


def _folds(task: TaskKind, y: np.ndarray, search: Search) -> Any:
    splitter = StratifiedKFold if task.is_classification else KFold
    return splitter(n_splits=search.folds, shuffle=True, random_state=search.seed).split(np.zeros(len(y)), y)


def _fit(algorithm: str, task: TaskKind, params: dict[str, Any], X: np.ndarray, y: np.ndarray | None,
         search: Search) -> Estimator:
    return make_estimator(algorithm, task, params=params, seed=search.seed, n_jobs=search.n_jobs).fit(X, y)


def predict_and_score(model: Estimator, X: np.ndarray, y: np.ndarray | None, *, seed: int = 0) -> dict[str, Any]:
    """Every metric of ``model`` on rows ``X`` (with targets ``y``; None for clustering)."""
    if model.task.is_classification:
        return evaluate(model.task, y, model.predict(X), proba=model.predict_proba(X), labels=model.labels)
    return evaluate(model.task, y, model.predict(X), X=X, seed=seed)


def _mean(values: list[Any]) -> float | None:
    numbers = [float(v) for v in values if v is not None]
    return float(np.mean(numbers)) if len(numbers) == len(values) and numbers else None
