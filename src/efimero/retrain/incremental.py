"""Incremental retraining: continue boosting the live models on new data.

XGBoost's ``xgb_model`` continuation adds at most ``max_new_trees`` trees per model with the
learning rate scaled by ``learning_rate_factor``; the scaler and the label sets stay as they
are, so the updated version is a drop-in replacement. A new version is saved only when it
beats the live one on held-out new data by ``min_improvement_threshold`` (relative) and its
score on the live model's original test set falls by no more than ``forgetting_tolerance``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.model_selection import train_test_split

from efimero.config import ClassifierParams, IncrementalParameters, RegressorParams
from efimero.registry import Registry
from efimero.retrain._common import RetrainResult, load_rows, original_test_rows, score
from efimero.schema import CSS_TASK, TabularTask
from efimero.training import ModelBundle, TrainedModel, row_weights, stratify_by
from efimero.training._xgb import Runtime, booster_params


def _continue(model: TrainedModel, x: np.ndarray, frame: pd.DataFrame, weight: np.ndarray | None,
              settings: IncrementalParameters, seed: int) -> TrainedModel:
    """Add trees to one model on new rows (labels outside its label set are skipped)."""
    params_type = ClassifierParams if model.kind == "classifier" else RegressorParams
    params = params_type.model_validate(model.params)
    native = booster_params(params, Runtime(seed=seed, n_jobs=-1))
    native["eta"] = params.learning_rate * settings.learning_rate_factor
    if model.kind == "classifier":
        codes = pd.Categorical(frame[model.targets[0]], categories=model.labels).codes
        keep = codes >= 0
        labels = codes[keep].astype(float)
        native |= {"num_class": len(model.labels), "eval_metric": "mlogloss"}
    else:
        keep = np.ones(len(frame), dtype=bool)
        labels = (frame[model.targets].to_numpy(dtype=float) - model.target_mean) / model.target_scale
        native["eval_metric"] = "rmse"
    matrix = xgb.DMatrix(x[keep], label=labels, weight=None if weight is None else weight[keep])
    booster = xgb.train(native, matrix, num_boost_round=settings.max_new_trees, xgb_model=model.booster.copy())
    updated = copy.copy(model)
    updated.booster = booster
    updated.__post_init__()
    return updated


def incremental(
    data: list[str | Path],
    *,
    models: str | Path = "models",
    settings: IncrementalParameters | None = None,
    backup_current: bool = False,
    seed: int = 42,
    task: TabularTask = CSS_TASK,
) -> RetrainResult:
    """Update the live version with new rows; save it only if it is better (see the module docstring).

    Example:
        >>> incremental(["data/production_data.csv"], models="models/").status  # doctest: +SKIP
        'success'
    """
    settings = settings or IncrementalParameters()
    registry = Registry(models)
    live = registry.load()
    frame = load_rows(list(data), task)
    result = RetrainResult("incremental", "skipped", "", parent_version=live.version, rows={"new": len(frame)})
    if len(frame) < settings.min_samples:
        result.reason = f"{len(frame)} new rows, fewer than min_samples {settings.min_samples}"
        return result
    train_rows, holdout = train_test_split(frame, test_size=settings.validation_split, random_state=seed,
                                           stratify=stratify_by(frame, task.stratify_on))
    x = live.preprocessor.transform(train_rows[live.feature_names].to_numpy(dtype=float))
    weight = row_weights(task, train_rows)
    updated = ModelBundle(
        preprocessor=live.preprocessor,
        models={name: _continue(m, x, train_rows, weight, settings, seed) for name, m in live.models.items()},
    )
    result.rows |= {"train": len(train_rows), "holdout": len(holdout)}
    result.scores = {"new_holdout": {"current": score(live, holdout), "updated": score(updated, holdout)}}
    current, candidate = (result.scores["new_holdout"][k]["combined"] for k in ("current", "updated"))
    improvement = (candidate - current) / abs(current) if current else float("inf")
    result.scores["improvement"] = improvement
    original = original_test_rows(registry, live, task)
    if original is not None:
        result.scores["original_test"] = {"current": score(live, original), "updated": score(updated, original)}
        drop = result.scores["original_test"]["current"]["combined"] - result.scores["original_test"]["updated"]["combined"]
        result.scores["forgetting"] = drop
        if drop > settings.forgetting_tolerance:
            result.status = "no_improvement"
            result.reason = (f"the original test score fell by {drop:.4f}, more than the tolerance "
                             f"{settings.forgetting_tolerance} (catastrophic forgetting)")
            return result
    if improvement < settings.min_improvement_threshold:
        result.status = "no_improvement"
        result.reason = (f"improvement {improvement:+.2%} on held-out new data is below "
                         f"{settings.min_improvement_threshold:.0%}")
        return result
    if backup_current:
        registry.backup(live.version)
    metadata = copy.deepcopy(live.metadata) | {
        "strategy": "incremental", "parent_version": live.version, "incremental": settings.model_dump(),
        "new_data_files": [str(p) for p in data], "rows": result.rows,
    }
    metrics = live.metrics | {"incremental": result.scores, "summary": {
        k: v for k, v in result.scores["new_holdout"]["updated"].items() if k != "combined"}}
    result.version = registry.save(updated, metrics=metrics, metadata=metadata)
    result.status = "success"
    result.reason = f"improvement {improvement:+.2%} on held-out new data"
    return result
