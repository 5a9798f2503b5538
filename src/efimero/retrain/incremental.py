"""Incremental retraining: continue boosting the live models on new data.

XGBoost's ``xgb_model`` continuation adds at most ``max_new_trees`` trees per model with the
learning rate scaled by ``learning_rate_factor``; the scaler and the label sets stay as they
are, so the updated version is a drop-in replacement. New data holding a class label the live
version never saw is therefore refused (:class:`~efimero.errors.UnseenLabelsError`, naming the
file, column and labels): only full retraining can learn a new class.

A new version is saved only when it beats the live one on held-out new data by
``min_improvement_threshold`` (relative) and its score on the live model's original test set
falls by no more than ``forgetting_tolerance``. That test set is rebuilt from the live model's
training files; when one is gone, changed or unrecorded, ``scores["forgetting_check"]`` says
``{"ran": False, "reason": ...}`` and the result's reason says "forgetting check not run".
The saved version's ``metrics.json`` holds its own per-target metrics on the held-out new rows
it was judged on, so the gate and deployments judge the updated models, not their parent.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.model_selection import train_test_split

from efimero import tracking
from efimero.config import ClassifierParams, IncrementalParameters, RegressorParams
from efimero.css import tokens_of
from efimero.gate import require_known_labels
from efimero.registry import Registry
from efimero.retrain._common import (
    RetrainResult,
    combine,
    original_test_problem,
    original_test_rows,
    read_files,
    score,
    tracked,
)
from efimero.schema import TabularTask
from efimero.training import ModelBundle, TrainedModel, evaluate, row_weights, stratify_by, summary_scores
from efimero.training._dask import DaskEngine, continue_on_dask, dask_client
from efimero.training._xgb import Runtime, booster_params

if TYPE_CHECKING:
    from distributed import Client


def _continue(model: TrainedModel, x: np.ndarray, frame: pd.DataFrame, weight: np.ndarray | None,
              settings: IncrementalParameters, seed: int, client: Client | None = None) -> TrainedModel:
    """Add trees to one model on new rows (their labels are all in its label set), on Dask with ``client``."""
    params_type = ClassifierParams if model.kind == "classifier" else RegressorParams
    params = params_type.model_validate(model.params)
    native = booster_params(params, Runtime(seed=seed, n_jobs=-1))
    native["eta"] = params.learning_rate * settings.learning_rate_factor
    if model.kind == "classifier":
        assert model.labels is not None, "a classifier always records its labels"
        labels = pd.Categorical(frame[model.targets[0]], categories=model.labels).codes.astype(float)
        native |= {"num_class": len(model.labels), "eval_metric": "mlogloss"}
    else:
        labels = (frame[model.targets].to_numpy(dtype=float) - model.target_mean) / model.target_scale
        native["eval_metric"] = "rmse"
    if client is not None:
        booster = continue_on_dask(client, native, x, labels, weight, rounds=settings.max_new_trees,
                                   booster=model.booster.copy())
    else:
        matrix = xgb.DMatrix(x, label=labels, weight=weight)
        booster = xgb.train(native, matrix, num_boost_round=settings.max_new_trees, xgb_model=model.booster.copy())
    updated = copy.copy(model)
    updated.booster = booster
    updated.__post_init__()
    return updated


def _new_rows(data: Sequence[str | Path], live: ModelBundle, task: TabularTask) -> pd.DataFrame:
    """Read the new files, refusing one whose class labels ``live`` cannot learn (see the module docstring)."""
    frames = read_files(data, task)
    for path, frame in zip(data, frames, strict=True):
        require_known_labels(live, frame, str(path))
    return combine(frames, task)


def _forgetting_check(registry: Registry, live: ModelBundle, updated: ModelBundle,
                      settings: IncrementalParameters, task: TabularTask) -> dict[str, Any]:
    """Compare both versions on the live model's original test rows; say why when those are unreachable."""
    original = original_test_rows(registry, live, task)
    if original is None:
        return {"ran": False, "reason": f"the original test set cannot be rebuilt: {original_test_problem(live)}"}
    current, candidate = score(live, original), score(updated, original)
    drop = current["combined"] - candidate["combined"]
    return {"ran": True, "passed": drop <= settings.forgetting_tolerance, "drop": drop,
            "tolerance": settings.forgetting_tolerance, "current": current, "updated": candidate}


@tracked
def incremental(
    data: Sequence[str | Path],
    *,
    models: str | Path = "models",
    settings: IncrementalParameters | None = None,
    backup_current: bool = False,
    seed: int = 42,
    task: TabularTask | None = None,
    engine: DaskEngine | None = None,
) -> RetrainResult:
    """Update the live version with new rows; save it only if it is better (see the module docstring).

    With ``engine`` the trees are appended with ``xgboost.dask`` (``xgb_model=`` the live booster)
    on the new rows spread over the Dask workers; reading, scoring and the decision stay here.

    Raises:
        UnseenLabelsError: a new file holds a class label the live version was never trained on.

    Example:
        >>> incremental(["data/production_data.csv"], models="models/").status  # doctest: +SKIP
        'success'
    """
    settings = settings or IncrementalParameters()
    registry = Registry(models)
    live = registry.load()
    task = task or tokens_of(live.metadata).task  # the live version's style tokens, kept in the copied metadata
    frame = _new_rows(list(data), live, task)
    result = RetrainResult("incremental", "skipped", "", parent_version=live.version, rows={"new": len(frame)})
    if len(frame) < settings.min_samples:
        result.reason = f"{len(frame)} new rows, fewer than min_samples {settings.min_samples}"
        return result
    train_rows, holdout = train_test_split(frame, test_size=settings.validation_split, random_state=seed,
                                           stratify=stratify_by(frame, task.stratify_on))
    x = live.preprocessor.transform(train_rows[live.feature_names].to_numpy(dtype=float))
    with dask_client(engine) if engine is not None else nullcontext() as client:
        updated = ModelBundle(
            preprocessor=live.preprocessor,
            models={name: _continue(m, x, train_rows, row_weights(task, train_rows, m.targets), settings, seed,
                                    client) for name, m in live.models.items()},
        )
    result.rows |= {"train": len(train_rows), "holdout": len(holdout)}
    result.scores = {"new_holdout": {"current": score(live, holdout), "updated": score(updated, holdout)}}
    current, candidate = (result.scores["new_holdout"][k]["combined"] for k in ("current", "updated"))
    improvement = (candidate - current) / abs(current) if current else float("inf")
    result.scores["improvement"] = improvement
    forgetting = result.scores["forgetting_check"] = _forgetting_check(registry, live, updated, settings, task)
    if forgetting["ran"] and not forgetting["passed"]:
        result.status = "no_improvement"
        result.reason = (f"the original test score fell by {forgetting['drop']:.4f}, more than the tolerance "
                         f"{settings.forgetting_tolerance} (catastrophic forgetting)")
        return result
    not_run = "" if forgetting["ran"] else f"; forgetting check not run: {forgetting['reason']}"
    if improvement < settings.min_improvement_threshold:
        result.status = "no_improvement"
        result.reason = (f"improvement {improvement:+.2%} on held-out new data is below "
                         f"{settings.min_improvement_threshold:.0%}{not_run}")
        return result
    if backup_current:
        registry.backup(live.version)
    metadata = copy.deepcopy(live.metadata) | {
        "strategy": "incremental", "parent_version": live.version, "incremental": settings.model_dump(),
        "engine": engine.describe() if engine is not None else {"name": "local"},
        "new_data_files": [str(p) for p in data], "rows": result.rows,
    }
    judged = evaluate(updated, holdout)
    metrics = judged | {"summary": summary_scores(judged), "incremental": result.scores}
    result.version = registry.save(updated, metrics=metrics, metadata=metadata)
    tracking.current().log_version(registry.path(result.version))
    result.status = "success"
    result.reason = f"improvement {improvement:+.2%} on held-out new data{not_run}"
    return result
