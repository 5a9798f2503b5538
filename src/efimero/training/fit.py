"""Train every model of a task: split, scale, (tune), cross-validate, fit, evaluate."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from efimero.bundle import ModelBundle, Preprocessor
from efimero.config import TrainingSettings
from efimero.errors import TrainingError
from efimero.schema import TabularTask
from efimero.training._spec import ModelSpec, model_specs
from efimero.training._xgb import Runtime, check_gpu
from efimero.training.metrics import evaluate, summary_scores
from efimero.training.tune import ProgressCallback, TuningResult, cross_validate, n_candidates, tune

MIN_ROWS = 50


@dataclass
class TrainingResult:
    """A trained bundle with its test metrics, CV scores, tuning results and timings."""

    bundle: ModelBundle
    metrics: dict[str, Any]
    hyperparameters: dict[str, dict[str, Any]]
    tuning: dict[str, TuningResult] = field(default_factory=dict)
    duration_s: float = 0.0
    n_rows: dict[str, int] = field(default_factory=dict)
    test_rows: pd.DataFrame | None = None
    """The held-out rows the metrics were computed on (not saved; comparisons reuse them)."""
    input_rows: list[int] = field(default_factory=list)
    """Rows of each input read, in order (Dask training reads its inputs itself; a frame is one input)."""


def stratify_by(frame: pd.DataFrame, column: str | None) -> pd.Series | None:
    """Stratify on ``column`` when every label has at least two rows, else split at random."""
    if column is None:
        return None
    counts = frame[column].value_counts()
    return frame[column] if counts.min() >= 2 else None


def row_weights(task: TabularTask, rows: pd.DataFrame, targets: list[str] | None = None) -> np.ndarray | None:
    """Per-row weights of the model of ``targets``: a single class target's own weight column when the
    rows hold one, else the task's row weights (explicit feedback counts more), else None."""
    own = task.target_weight_column(targets[0]) if targets is not None and len(targets) == 1 else None
    for column in (own, task.weight_column):
        if column and column in rows.columns:
            return rows[column].to_numpy(dtype=float)
    return None


def fill_weights(frame: pd.DataFrame, task: TabularTask) -> pd.DataFrame:
    """Weights of rows combined from files with and without them: rows without a row weight count 1, rows
    without a class head's own weight take their row weight (or 1). Fills ``frame`` in place and returns it."""
    if task.weight_column and task.weight_column in frame:
        frame[task.weight_column] = frame[task.weight_column].fillna(1.0)
    for own in task.weight_columns[1:]:
        if own in frame:
            frame[own] = frame[own].fillna(frame[task.weight_column] if task.weight_column in frame else 1.0)
    return frame


def total_steps(task: TabularTask, settings: TrainingSettings, *, tune_hyperparams: bool) -> int:
    """Progress steps of a training run: CV folds, tuning candidates and final fits."""
    per_model = 1 + (settings.data.cv_folds if settings.data.cv_folds >= 2 else 0)
    if tune_hyperparams:
        per_model += n_candidates(settings.tuning)
    n_models = len(task.class_targets) + (1 if task.regression_targets else 0)
    return n_models * per_model


def train(
    frame: pd.DataFrame,
    *,
    task: TabularTask,
    settings: TrainingSettings,
    tune_hyperparams: bool = False,
    progress: ProgressCallback | None = None,
) -> TrainingResult:
    """Train one model per class target and one multi-output regressor on validated data.

    The rows are split into train and test (stratified on ``task.stratify_on``); the scaler
    is fitted on the train rows only; each model is optionally tuned and cross-validated on
    the train rows, then fitted with early stopping on a validation slice of them and scored
    on the untouched test rows.

    Raises:
        TrainingError: too few rows, a target with a single label, or ``device="cuda"``
            without a usable GPU.
    """
    if len(frame) < MIN_ROWS:
        raise TrainingError(f"training needs at least {MIN_ROWS} rows. Got {len(frame)} instead.")
    if settings.device == "cuda":
        check_gpu()
    started = time.perf_counter()
    data = settings.data
    runtime = Runtime(seed=data.random_state, n_jobs=settings.n_jobs, device=settings.device)
    train_rows, test_rows = train_test_split(
        frame, test_size=data.test_size, random_state=data.random_state, stratify=stratify_by(frame, task.stratify_on)
    )
    fit_rows, early_rows = train_test_split(
        train_rows, test_size=data.validation_split, random_state=data.random_state,
        stratify=stratify_by(train_rows, task.stratify_on),
    )
    preprocessor = Preprocessor.fit(train_rows[task.feature_names])

    def scaled(rows: pd.DataFrame) -> np.ndarray:
        return preprocessor.transform(rows[task.feature_names].to_numpy(dtype=float))

    x_train, x_fit, x_early = scaled(train_rows), scaled(fit_rows), scaled(early_rows)
    models, hyperparameters, tuning, cv = {}, {}, {}, {}
    for spec in model_specs(task, train_rows):
        w_train, w_fit = row_weights(task, train_rows, spec.targets), row_weights(task, fit_rows, spec.targets)
        if w_fit is not None and not w_fit.sum() > 0:
            raise TrainingError(f"the weights of {', '.join(spec.targets)} sum to 0 over the training rows: no row "
                                "carries evidence for it (with --labels reward: every reward was 0).")
        params = spec.default_params(settings.models)
        y_train = spec.encode(train_rows)
        if tune_hyperparams:
            result = tune(spec, params, x_train, y_train, settings=settings.tuning,
                          n_folds=max(data.cv_folds, 2), runtime=runtime, progress=progress, weight=w_train)
            params = type(params).model_validate(params.model_dump() | result.best_params)
            tuning[spec.name] = result
        if data.cv_folds >= 2:
            cv[spec.name] = cross_validate(spec, params, x_train, y_train, n_folds=data.cv_folds,
                                           runtime=runtime, weight=w_train)
            if progress:
                progress(f"cross-validating {spec.name}", data.cv_folds)
        models[spec.name] = spec.fit(
            params, x_fit, spec.encode(fit_rows), runtime=runtime,
            eval_set=(x_early, spec.encode(early_rows)), weight=w_fit,
        )
        hyperparameters[spec.name] = params.model_dump()
        if progress:
            progress(f"fitting {spec.name}", 1)
    bundle = ModelBundle(preprocessor, models)
    metrics = evaluate(bundle, test_rows)
    metrics["cv"] = cv
    metrics["summary"] = summary_scores(metrics)
    return TrainingResult(
        bundle=bundle,
        metrics=metrics,
        hyperparameters=hyperparameters,
        tuning=tuning,
        duration_s=time.perf_counter() - started,
        n_rows={"total": len(frame), "train": len(fit_rows), "early_stopping": len(early_rows), "test": len(test_rows)},
        test_rows=test_rows,
    )


__all__ = ["ModelSpec", "TrainingResult", "fill_weights", "row_weights", "stratify_by", "total_steps", "train"]
