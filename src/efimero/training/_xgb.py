"""Fitting one XGBoost model (classifier or multi-output regressor) from settings."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xgboost as xgb

from efimero.bundle import TrainedModel
from efimero.config import ClassifierParams, RegressorParams, XGBoostParams
from efimero.errors import TrainingError


@dataclass(frozen=True)
class Runtime:
    """Where and how fast to train: seed, threads and device."""

    seed: int = 42
    n_jobs: int = -1
    device: str = "cpu"


def gpu_problem() -> str | None:
    """Why XGBoost cannot train on a CUDA device in this process, or None when it can.

    Without a visible GPU XGBoost silently falls back to the CPU (with a warning), so the
    probe reads the device back from the trained booster's configuration.
    """
    if not xgb.build_info().get("USE_CUDA"):
        return "--gpu needs an XGBoost build with CUDA support; this one has none. Drop --gpu."
    probe = xgb.DMatrix(np.zeros((2, 1)), label=np.array([0.0, 1.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            booster = xgb.train({"device": "cuda", "tree_method": "hist"}, probe, num_boost_round=1)
        except xgb.core.XGBoostError as exc:
            reason = str(exc).strip().splitlines()[0]
            return f"--gpu was given but CUDA training failed ({reason}). Drop --gpu."
    device = json.loads(booster.save_config())["learner"]["generic_param"]["device"]
    if not device.startswith("cuda"):
        return "--gpu was given but XGBoost sees no CUDA GPU on this machine. Drop --gpu."
    return None


def check_gpu() -> None:
    """Fail with a clear message unless XGBoost really trains on a CUDA device here (:func:`gpu_problem`)."""
    problem = gpu_problem()
    if problem:
        raise TrainingError(problem)


def booster_params(params: ClassifierParams | RegressorParams, runtime: Runtime) -> dict[str, Any]:
    """Translate settings into the parameter dict of ``xgboost.train``."""
    native: dict[str, Any] = {
        "objective": params.objective,
        "eta": params.learning_rate,
        "max_depth": params.max_depth,
        "alpha": params.reg_alpha,
        "lambda": params.reg_lambda,
        "min_child_weight": params.min_child_weight,
        "subsample": params.subsample,
        "colsample_bytree": params.colsample_bytree,
        "tree_method": "hist",
        "device": runtime.device,
        "seed": runtime.seed,
    }
    if runtime.n_jobs > 0:
        native["nthread"] = runtime.n_jobs
    if isinstance(params, RegressorParams):
        native["multi_strategy"] = params.multi_strategy
    return native


def _boost(
    native: dict[str, Any],
    params: XGBoostParams,
    x_train: np.ndarray,
    y_train: np.ndarray,
    eval_set: tuple[np.ndarray, np.ndarray] | None,
    weight: np.ndarray | None = None,
    *,
    callbacks: Sequence[xgb.callback.TrainingCallback] = (),
    custom_metric: Callable[[np.ndarray, xgb.DMatrix], tuple[str, float]] | None = None,
) -> xgb.Booster:
    """Run ``xgboost.train``; with ``eval_set``, stop early and keep only the used trees.

    With ``callbacks`` (and ``eval_set``) every round is trained and the callbacks watch the eval
    set's metrics each round (``custom_metric`` added), as tuning's pruning does.
    """
    train_matrix = xgb.QuantileDMatrix(x_train, label=y_train, weight=weight)
    watched = eval_set is not None and bool(callbacks)
    if eval_set is None or (params.early_stopping_rounds is None and not watched):
        return xgb.train(native, train_matrix, num_boost_round=params.n_estimators)
    eval_matrix = xgb.QuantileDMatrix(eval_set[0], label=eval_set[1], ref=train_matrix)
    if watched:
        return xgb.train(native, train_matrix, num_boost_round=params.n_estimators,
                         evals=[(eval_matrix, "validation")], verbose_eval=False,
                         callbacks=list(callbacks), custom_metric=custom_metric)
    booster = xgb.train(
        native,
        train_matrix,
        num_boost_round=params.n_estimators,
        evals=[(eval_matrix, "validation")],
        early_stopping_rounds=params.early_stopping_rounds,
        verbose_eval=False,
    )
    return used_trees(booster)


def used_trees(booster: xgb.Booster) -> xgb.Booster:
    """The trees up to early stopping's best iteration (all of them when it did not stop early)."""
    used = booster.best_iteration + 1
    return booster[:used] if used < booster.num_boosted_rounds() else booster


def mean_r2(predictions: np.ndarray, matrix: xgb.DMatrix) -> tuple[str, float]:
    """XGBoost metric ``r2``: R² averaged over the outputs, the regressor's CV score, each round."""
    truth = matrix.get_label().reshape(predictions.shape)
    residual = ((truth - predictions) ** 2).sum(axis=0)
    total = ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)
    constant = np.where(residual == 0, 1.0, 0.0)  # sklearn's convention for a constant target
    scores = np.where(total > 0, 1 - residual / np.where(total > 0, total, 1.0), constant)
    return "r2", float(np.mean(scores))


WATCHED_METRIC = {"classifier": "validation-mlogloss", "regressor": "validation-r2"}
"""What ``callbacks`` of a fit with an eval set see each round, by model kind (the CV score's own metric)."""


def for_inference(booster: xgb.Booster) -> xgb.Booster:
    """Predict on the CPU whatever the training device was (serving has no GPU)."""
    booster.set_param({"device": "cpu"})
    return booster


def fit_classifier(
    name: str,
    target: str,
    labels: list[str],
    params: ClassifierParams,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    runtime: Runtime,
    eval_set: tuple[np.ndarray, np.ndarray] | None = None,
    weight: np.ndarray | None = None,
    callbacks: Sequence[xgb.callback.TrainingCallback] = (),
) -> TrainedModel:
    """Fit a multi:softprob classifier; ``y`` holds indices into ``labels``.

    ``callbacks`` watch ``validation-mlogloss`` on ``eval_set`` each round (all rounds trained).
    """
    if len(np.unique(y_train)) < 2:
        raise TrainingError(f"target {target!r} has a single label in the training rows; it needs at least two.")
    native = booster_params(params, runtime) | {"num_class": len(labels), "eval_metric": "mlogloss"}
    booster = _boost(native, params, x_train, y_train, eval_set, weight, callbacks=callbacks)
    return TrainedModel(name, "classifier", [target], for_inference(booster), params.model_dump(), labels=labels)


def fit_regressor(
    name: str,
    targets: list[str],
    params: RegressorParams,
    x_train: np.ndarray,
    y_train: np.ndarray,
    *,
    runtime: Runtime,
    eval_set: tuple[np.ndarray, np.ndarray] | None = None,
    weight: np.ndarray | None = None,
    callbacks: Sequence[xgb.callback.TrainingCallback] = (),
) -> TrainedModel:
    """Fit one multi-output regressor on standardised targets (see :class:`TrainedModel`).

    ``callbacks`` watch ``validation-r2`` (:func:`mean_r2`) on ``eval_set`` each round (all rounds trained).
    """
    mean = y_train.mean(axis=0)
    scale = y_train.std(axis=0)
    scale[scale == 0] = 1.0
    native = booster_params(params, runtime) | {"eval_metric": "rmse"}
    scaled_eval = (eval_set[0], (eval_set[1] - mean) / scale) if eval_set else None
    booster = _boost(native, params, x_train, (y_train - mean) / scale, scaled_eval, weight,
                     callbacks=callbacks, custom_metric=mean_r2 if callbacks else None)
    return TrainedModel(
        name, "regressor", list(targets), for_inference(booster), params.model_dump(),
        target_mean=mean, target_scale=scale,
    )
