"""Test-set metrics of a model bundle, with the naive baselines beside them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_absolute_error, r2_score, root_mean_squared_error

from efimero.bundle import ModelBundle, TrainedModel


def classification_metrics(model: TrainedModel, y_true: pd.Series, probabilities: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 and log-loss, plus the majority-class baseline accuracy."""
    labels = np.asarray(model.labels, dtype=object)
    predicted = labels[probabilities.argmax(axis=1)]
    codes = pd.Categorical(y_true, categories=labels).codes
    if (codes < 0).any():
        unseen = sorted(set(y_true[codes < 0]))
        raise ValueError(f"labels {unseen} were not seen in training; the model knows {list(labels)}.")
    majority = y_true.value_counts().idxmax()
    return {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "macro_f1": float(f1_score(y_true, predicted, average="macro", labels=labels, zero_division=0)),
        "log_loss": float(log_loss(codes, probabilities, labels=np.arange(len(labels)))),
        "baseline_accuracy": float((y_true == majority).mean()),
        "n": len(y_true),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² of one target (the mean predictor scores R² = 0)."""
    return {
        "rmse": float(root_mean_squared_error(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)),
    }


def evaluate(bundle: ModelBundle, frame: pd.DataFrame) -> dict[str, Any]:
    """Score every model of ``bundle`` on a labelled frame, per target.

    Returns ``{"classification": {target: {...}}, "regression": {target: {...}}, "n_rows": n}``.
    """
    outputs = bundle.predict_outputs(frame)
    result: dict[str, Any] = {"classification": {}, "regression": {}, "n_rows": len(frame)}
    for name, output in outputs.items():
        model = bundle.models[name]
        if model.kind == "classifier":
            target = model.targets[0]
            result["classification"][target] = classification_metrics(model, frame[target], output)
        else:
            for i, target in enumerate(model.targets):
                result["regression"][target] = regression_metrics(frame[target].to_numpy(float), output[:, i])
    return result


def summary_scores(metrics: dict[str, Any]) -> dict[str, float]:
    """Mean accuracy over class targets and mean R² over regression targets."""
    classification = metrics.get("classification", {})
    regression = metrics.get("regression", {})
    scores = {}
    if classification:
        scores["mean_accuracy"] = float(np.mean([m["accuracy"] for m in classification.values()]))
    if regression:
        scores["mean_r2"] = float(np.mean([m["r2"] for m in regression.values()]))
    return scores
