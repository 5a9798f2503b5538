"""k-fold cross-validation and hyperparameter search (seed grid or Optuna TPE).

The grid runs here; Optuna studies (persistent, pruned, optionally multi-objective) run in
:mod:`efimero.training._study`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from efimero import tracking
from efimero.config import TuningSettings, XGBoostParams
from efimero.training._spec import ModelSpec
from efimero.training._xgb import Runtime

if TYPE_CHECKING:
    import xgboost as xgb

    from efimero.bundle import TrainedModel

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int], None]
"""Called as ``progress(description, steps_done_since_last_call)``."""

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
    return _cross_validate(spec, params, x, y, n_folds=n_folds, runtime=runtime, weight=weight)[0]


def _cross_validate(
    spec: ModelSpec,
    params: XGBoostParams,
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_folds: int,
    runtime: Runtime,
    weight: np.ndarray | None = None,
    callbacks: Sequence[xgb.callback.TrainingCallback] = (),
) -> tuple[dict[str, dict[str, float]], TrainedModel]:
    """:func:`cross_validate`, and the first fold's model; ``callbacks`` watch that fold's held-out rows
    each boosting round (the metric of ``WATCHED_METRIC``), as Optuna's pruning callback does."""
    scores: dict[str, list[float]] = {}
    first: TrainedModel | None = None
    for train_idx, test_idx in _folds(spec, y, n_folds, runtime.seed):
        fold_weight = None if weight is None else weight[train_idx]
        watch = callbacks if first is None else ()
        model = spec.fit(params, x[train_idx], y[train_idx], runtime=runtime, weight=fold_weight,
                         eval_set=(x[test_idx], y[test_idx]) if watch else None, callbacks=watch)
        if first is None:
            first = model
        for metric, value in spec.score(model, x[test_idx], y[test_idx]).items():
            scores.setdefault(metric, []).append(value)
    assert first is not None
    cv = {m: {"mean": float(np.mean(v)), "std": float(np.std(v)), "folds": len(v)} for m, v in scores.items()}
    return cv, first


@dataclass(frozen=True)
class StudyInfo:
    """Where an Optuna study lives and what this run added to it."""

    name: str
    """Derived from what is tuned (model, data, search space, folds, objectives, seed): the same command
    finds the same study."""
    storage: str | None
    """The storage URL, password hidden; None: in memory (nothing resumes)."""
    n_trials: int
    """The study's target of finished (complete or pruned) trials."""
    resumed: int
    """Finished trials found in the storage and not run again."""
    ran: int
    """Trials finished by this run."""
    pruned: int
    """Trials of the result stopped early by the pruner."""
    pruner: str
    """``median`` or ``none`` (multi-objective studies cannot prune)."""


@dataclass
class TuningResult:
    """The best parameters of one model and the CV score of every candidate tried.

    ``trials`` holds the scored candidates (pruned ones are only counted, in ``study``); with the
    latency objective each has its ``latency_ms``, and ``pareto_front`` lists the trials no other
    one beats on both quality and latency, the chosen one marked.
    """

    model: str
    method: str
    metric: str
    best_params: dict[str, Any]
    best_score: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    study: StudyInfo | None = None
    objectives: tuple[str, ...] = ("quality",)
    pareto_front: list[dict[str, Any]] = field(default_factory=list)
    latency_budget_ms: float | None = None
    best_latency_ms: float | None = None
    within_budget: bool | None = None
    """With the latency objective: whether the chosen trial predicts within the budget (else it is the fastest)."""
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (``efimero train --json``): everything but the list of trials."""
        summary = {k: v for k, v in asdict(self).items() if k != "trials"}
        summary["candidates"] = len(self.trials)
        summary["objectives"] = list(self.objectives)
        return summary


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

    ``grid`` scores every combination of ``settings.grid``; ``optuna`` runs a seeded TPE study over
    ``settings.search_space`` until it holds ``settings.n_trials`` finished trials, in
    ``settings.storage`` (resumed by a rerun), pruning with ``settings.pruner`` and optimising
    ``settings.objectives`` (see :func:`efimero.training._study.run_study`).

    Raises:
        TrainingError: the study storage cannot be opened, or every trial was pruned.

    Example:
        >>> from efimero.config import TuningSettings
        >>> settings = TuningSettings(method="optuna", n_trials=3, storage=None)  # doctest: +SKIP
        >>> tune(spec, params, x, y, settings=settings, n_folds=2, runtime=Runtime(n_jobs=1))  # doctest: +SKIP
    """
    if settings.method == "optuna":
        from efimero.training._study import run_study

        return run_study(spec, base, x, y, settings=settings, n_folds=n_folds, runtime=runtime,
                         progress=progress, weight=weight)
    metric = spec.primary_metric
    trials: list[dict[str, Any]] = []
    names = list(settings.grid)
    for combo in itertools.product(*(settings.grid[n] for n in names)):
        candidate = dict(zip(names, combo, strict=True))
        params = type(base).model_validate(base.model_dump() | candidate)
        cv = cross_validate(spec, params, x, y, n_folds=n_folds, runtime=runtime, weight=weight)
        trials.append({"params": params.model_dump(include=set(candidate)), metric: cv[metric]["mean"]})
        tracking.current().trial(f"{spec.name} #{len(trials)}", params=trials[-1]["params"], metrics=cv)
        if progress:
            progress(f"tuning {spec.name}", 1)
    best = (max if spec.maximize else min)(trials, key=lambda t: t[metric])
    logger.info("tuned %s: best %s %.4f with %s", spec.name, metric, best[metric], best["params"])
    return TuningResult(spec.name, settings.method, metric, best["params"], best[metric], trials)
