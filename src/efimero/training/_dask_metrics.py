"""Exact test metrics over Dask partitions: per-partition sufficient statistics, combined on the client.

Each partition of the test rows is predicted where it lives and reduced to numbers that add up:
per class target a confusion matrix (true × predicted) and the summed log-loss; per regression
target the count, mean and centred sum of squares of the truth (merged with Chan et al.'s
pairwise formula, so R² keeps its precision over millions of rows) and the summed squared and
absolute errors. From those the client forms exactly what :func:`~efimero.training.evaluate`
computes from the whole frame (log-loss with sklearn's clipping to ``[eps, 1 - eps]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from efimero.bundle import ModelBundle
from efimero.errors import DataValidationError, ValidationFailure

if TYPE_CHECKING:
    from distributed import Client

    from efimero.training._dask import _Split


def partition_stats(rows: pd.DataFrame, bundle: ModelBundle) -> dict[str, Any]:
    """Sufficient statistics of ``bundle``'s test metrics on one partition (see the module docstring)."""
    stats: dict[str, Any] = {"n": len(rows), "classification": {}, "regression": {}}
    if not len(rows):
        return stats
    for name, output in bundle.predict_outputs(rows).items():
        model = bundle.models[name]
        if model.kind == "classifier":
            assert model.labels is not None, "a classifier always records its labels"
            target, k = model.targets[0], len(model.labels)
            codes = pd.Categorical(rows[target], categories=model.labels).codes
            unseen = sorted(set(rows[target][codes < 0]))
            eps = np.finfo(output.dtype).eps
            picked = np.clip(output, eps, 1 - eps)[np.arange(len(rows)), np.maximum(codes, 0)].astype(float)
            known = codes >= 0
            confusion = np.bincount(codes[known] * k + output[known].argmax(axis=1), minlength=k * k)
            stats["classification"][target] = {"confusion": confusion.reshape(k, k), "unseen": unseen,
                                               "log_loss_sum": float(-np.log(picked[known]).sum())}
        else:
            for i, target in enumerate(model.targets):
                truth = rows[target].to_numpy(dtype=float)
                error = truth - output[:, i]
                mean = float(truth.mean())
                stats["regression"][target] = np.array([len(truth), mean, float(((truth - mean) ** 2).sum()),
                                                        float((error ** 2).sum()), float(np.abs(error).sum())])
    return stats


def _merge_moments(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Chan's pairwise merge of (n, mean, M2, squared error, absolute error)."""
    n = a[0] + b[0]
    if not n:
        return a
    delta = b[1] - a[1]
    return np.array([n, a[1] + delta * b[0] / n, a[2] + b[2] + delta ** 2 * a[0] * b[0] / n, a[3] + b[3], a[4] + b[4]])


def _classification(confusion: np.ndarray, log_loss_sum: float) -> dict[str, float]:
    n = int(confusion.sum())
    tp = np.diag(confusion).astype(float)
    denominator = confusion.sum(axis=0) + confusion.sum(axis=1)
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return {"accuracy": float(tp.sum() / n), "macro_f1": float(f1.mean()), "log_loss": log_loss_sum / n,
            "baseline_accuracy": float(confusion.sum(axis=1).max() / n), "n": n}


def combine_stats(parts: list[dict[str, Any]], bundle: ModelBundle, source: str = "the test rows") -> dict[str, Any]:
    """The metrics of :func:`~efimero.training.evaluate` from the statistics of every partition.

    Raises:
        DataValidationError: a test row holds a class label the models were not trained on.
    """
    result: dict[str, Any] = {"classification": {}, "regression": {}, "n_rows": int(sum(p["n"] for p in parts))}
    for model in bundle.models.values():
        if model.kind == "classifier":
            target = model.targets[0]
            pieces = [p["classification"][target] for p in parts if target in p["classification"]]
            unseen = sorted({label for piece in pieces for label in piece["unseen"]})
            if unseen:
                raise DataValidationError(source, [ValidationFailure(
                    target, f"labels were not seen in training; the model knows {model.labels}", values=unseen)])
            confusion = sum(piece["confusion"] for piece in pieces)
            result["classification"][target] = _classification(confusion, sum(p["log_loss_sum"] for p in pieces))
            continue
        for target in model.targets:
            total = np.zeros(5)
            for piece in (p["regression"][target] for p in parts if target in p["regression"]):
                total = _merge_moments(total, piece) if total[0] else piece
            n, _, m2, squared, absolute = total
            r2 = 1 - squared / m2 if m2 > 0 else (1.0 if squared == 0 else 0.0)
            result["regression"][target] = {"rmse": float(np.sqrt(squared / n)), "mae": float(absolute / n),
                                            "r2": float(r2)}
    return result


def evaluate_distributed(client: Client, bundle: ModelBundle, split: _Split) -> tuple[dict[str, Any], dict[int, int]]:
    """Test metrics of ``bundle`` over the test partitions, and the rows of each split, in one pass."""
    import dask

    from efimero.training._dask_read import EARLY, FIT, TEST

    shared = client.scatter(bundle, broadcast=True)
    stats = [dask.delayed(partition_stats)(part, shared) for part in split.test.to_delayed()]
    assert split.x_fit is not None and split.x_early is not None, "prepare_features() ran before training"
    counts = [[dask.delayed(len)(part) for part in rows.to_delayed()] for rows in (split.x_fit, split.x_early)]
    parts, fit_rows, early_rows = dask.compute(stats, *counts)
    metrics = combine_stats(list(parts), bundle)
    return metrics, {FIT: sum(fit_rows), EARLY: sum(early_rows), TEST: metrics["n_rows"]}
