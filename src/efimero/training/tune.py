"""k-fold cross-validation and hyperparameter search (seed grid or Optuna TPE)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from sklearn.model_selection import KFold, StratifiedKFold

from efimero import tracking
from efimero.config import TuningSettings, XGBoostParams
from efimero.training._spec import ModelSpec
from efimero.training._xgb import Runtime

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int], None]
"""Called as ``progress(description, steps_done_since_last_call)``."""

_LOG_SCALE = {"learning_rate", "reg_alpha", "reg_lambda"}
_INTEGER = {"max_depth", "n_estimators"}


def _folds(spec: ModelSpec, y: np.ndarray, n_folds: int, seed: int):
    if spec.kind == "classifier" and np.bincount(y).min(initial=n_folds) >= n_folds:
        return StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    return KFold(n_folds, shuffle=True, random_state=seed).split(np.zeros(len(y)))


def cross_validate(
    spec: ModelSpec,
    params: XGBoostParams,
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_folds: int,
    runtime: Runtime,
    weight: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """Fit ``n_folds`` times on the other folds; return mean and std of each score.

    Folds train all ``n_estimators`` trees (no early stopping), so ``n_estimators`` is tuned too.
    """
    scores: dict[str, list[float]] = {}
    for train_idx, test_idx in _folds(spec, y, n_folds, runtime.seed):
        fold_weight = None if weight is None else weight[train_idx]
        model = spec.fit(params, x[train_idx], y[train_idx], runtime=runtime, weight=fold_weight)
        for metric, value in spec.score(model, x[test_idx], y[test_idx]).items():
            scores.setdefault(metric, []).append(value)
    return {m: {"mean": float(np.mean(v)), "std": float(np.std(v)), "folds": len(v)} for m, v in scores.items()}


@dataclass
class TuningResult:
    """The best parameters of one model and the CV score of every candidate tried."""

    model: str
    method: str
    metric: str
    best_params: dict[str, Any]
    best_score: float
    trials: list[dict[str, Any]] = field(default_factory=list)


def n_candidates(settings: TuningSettings) -> int:
    """How many parameter sets a search will score (for progress bars)."""
    if settings.method == "grid":
        return int(np.prod([len(v) for v in settings.grid.values()]))
    return settings.n_trials


def tune(
    spec: ModelSpec,
    base: XGBoostParams,
    x: np.ndarray,
    y: np.ndarray,
    *,
    settings: TuningSettings,
    n_folds: int,
    runtime: Runtime,
    progress: ProgressCallback | None = None,
    weight: np.ndarray | None = None,
) -> TuningResult:
    """Search hyperparameters of one model, scoring each candidate by k-fold CV.

    ``grid`` scores every combination of ``settings.grid``; ``optuna`` runs
    ``settings.n_trials`` trials of a seeded TPE sampler over ``settings.search_space``.
    """
    metric = spec.primary_metric
    trials: list[dict[str, Any]] = []

    def evaluate(candidate: dict[str, Any]) -> float:
        params = type(base).model_validate(base.model_dump() | candidate)
        cv = cross_validate(spec, params, x, y, n_folds=n_folds, runtime=runtime, weight=weight)
        score = cv[metric]["mean"]
        trials.append({"params": params.model_dump(include=set(candidate)), metric: score})
        tracking.current().trial(f"{spec.name} #{len(trials)}", params=trials[-1]["params"], metrics=cv)
        if progress:
            progress(f"tuning {spec.name}", 1)
        return score

    if settings.method == "grid":
        names = list(settings.grid)
        for combo in itertools.product(*(settings.grid[n] for n in names)):
            evaluate(dict(zip(names, combo, strict=True)))
    else:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            direction="maximize" if spec.maximize else "minimize",
            sampler=optuna.samplers.TPESampler(seed=runtime.seed),
        )
        study.optimize(lambda trial: evaluate(_suggest(trial, settings)), n_trials=settings.n_trials)
    best = (max if spec.maximize else min)(trials, key=lambda t: t[metric])
    logger.info("tuned %s: best %s %.4f with %s", spec.name, metric, best[metric], best["params"])
    return TuningResult(spec.name, settings.method, metric, best["params"], best[metric], trials)


def _suggest(trial: optuna.Trial, settings: TuningSettings) -> dict[str, Any]:
    candidate: dict[str, Any] = {}
    for name, (low, high) in settings.search_space.items():
        if name in _INTEGER:
            candidate[name] = trial.suggest_int(name, int(low), int(high))
        else:
            candidate[name] = trial.suggest_float(name, low, high, log=name in _LOG_SCALE)
    return candidate
