"""Pieces shared by incremental and full retraining: data, scores, results."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import pandas as pd
from sklearn.model_selection import train_test_split

from efimero import tracking
from efimero.config import TrainingSettings
from efimero.data import check_training_files, read_table, training_files
from efimero.data.validate import validate_frame
from efimero.errors import DataError
from efimero.registry import Registry
from efimero.schema import CSS_TASK, TabularTask
from efimero.training import (
    DASK_SPLIT,
    ModelBundle,
    evaluate,
    fill_weights,
    held_out_rows,
    stratify_by,
    summary_scores,
)

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., "RetrainResult"])


@dataclass
class RetrainResult:
    """The outcome of one retraining: status, the numbers that decided it, the new version."""

    strategy: str
    status: str  # skipped | no_improvement | not_better | success
    reason: str
    parent_version: str | None = None
    version: str | None = None
    scores: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tracked(retrain: F) -> F:
    """Log the result of ``retrain`` into the open tracking run: strategy, status and reason as tags, rows and scores.

    One place for every return of a retraining, whatever its outcome; the version it saved is
    logged where it is saved.
    """

    @functools.wraps(retrain)
    def wrapper(*args: Any, **kwargs: Any) -> RetrainResult:
        result = retrain(*args, **kwargs)
        log = tracking.current()
        log.set_tags({"efimero.retrain.strategy": result.strategy, "efimero.retrain.status": result.status,
                      "efimero.retrain.reason": result.reason[:5000]})
        log.log_metrics({"rows": result.rows, "scores": result.scores})
        return result

    return cast(F, wrapper)


def require_data(paths: Sequence[str | Path]) -> None:
    """Refuse a retraining given no data file."""
    if not paths:
        raise DataError("give at least one --data file.")


def read_files(paths: Sequence[str | Path], task: TabularTask = CSS_TASK) -> list[pd.DataFrame]:
    """Read and validate each data file (duplicates allowed: production repeats itself)."""
    require_data(paths)
    return [validate_frame(read_table(p), task=task, source=str(p), allow_duplicates=True)[0] for p in paths]


def combine(frames: Sequence[pd.DataFrame], task: TabularTask = CSS_TASK) -> pd.DataFrame:
    """The files' rows in order; rows of files without weights count 1."""
    return fill_weights(pd.concat(frames, ignore_index=True), task)


def load_rows(paths: Sequence[str | Path], task: TabularTask = CSS_TASK) -> pd.DataFrame:
    """Read, validate and combine one or more data files."""
    return combine(read_files(paths, task), task)


def score(bundle: ModelBundle, frame: pd.DataFrame) -> dict[str, float]:
    """Mean accuracy, mean R² and their mean (the single number retraining decisions use)."""
    summary = summary_scores(evaluate(bundle, frame))
    summary["combined"] = (summary["mean_accuracy"] + summary["mean_r2"]) / 2
    return summary


def original_test_problem(bundle: ModelBundle) -> str | None:
    """Why the live model's original test rows cannot be rebuilt, or None when they can."""
    return check_training_files(str(bundle.version), training_files(bundle.metadata))


def original_test_rows(registry: Registry, bundle: ModelBundle, task: TabularTask = CSS_TASK) -> pd.DataFrame | None:
    """The live model's own test rows, re-split from all of its training files with its saved settings.

    The files are combined as training combined them, so the split is the one training made (the
    per-file draw of Dask training for a version whose ``metadata["split"]`` says so).
    None when a file is gone, changed since or was never hashed (:func:`original_test_problem`
    says which); that is logged as a warning, since the forgetting check then cannot run.
    """
    problem = original_test_problem(bundle)
    if problem is not None:
        logger.warning("the original test rows of %s cannot be rebuilt: %s", bundle.version, problem)
        return None
    paths = [f.path for f in training_files(bundle.metadata)]
    if bundle.metadata.get("split") == DASK_SPLIT:
        settings = TrainingSettings.model_validate(bundle.metadata["training_settings"])
        return held_out_rows(paths, task, settings)
    data = bundle.metadata["training_settings"]["data"]
    frame = load_rows(paths, task)
    _, test = train_test_split(frame, test_size=data["test_size"], random_state=data["random_state"],
                               stratify=stratify_by(frame, task.stratify_on))
    return test
