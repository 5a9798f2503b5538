"""Pieces shared by incremental and full retraining: data, scores, results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from efimero.data._tables import read_table
from efimero.data.validate import validate_frame
from efimero.errors import DataError
from efimero.registry import Registry
from efimero.schema import CSS_TASK, TabularTask
from efimero.training import ModelBundle, evaluate, stratify_by, summary_scores


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


def load_rows(paths: list[str | Path], task: TabularTask = CSS_TASK) -> pd.DataFrame:
    """Read and validate one or more data files (duplicates allowed: production repeats itself)."""
    if not paths:
        raise DataError("give at least one --data file.")
    frames = [validate_frame(read_table(p), task=task, source=str(p), allow_duplicates=True)[0] for p in paths]
    frame = pd.concat(frames, ignore_index=True)
    if task.weight_column and task.weight_column in frame:
        frame[task.weight_column] = frame[task.weight_column].fillna(1.0)
    return frame


def score(bundle: ModelBundle, frame: pd.DataFrame) -> dict[str, float]:
    """Mean accuracy, mean R² and their mean (the single number retraining decisions use)."""
    summary = summary_scores(evaluate(bundle, frame))
    summary["combined"] = (summary["mean_accuracy"] + summary["mean_r2"]) / 2
    return summary


def original_test_rows(registry: Registry, bundle: ModelBundle, task: TabularTask = CSS_TASK) -> pd.DataFrame | None:
    """The live model's own test rows, re-split from its training file with its saved settings.

    None when the file is gone or changed since (its sha256 no longer matches).
    """
    from efimero._io import sha256_file

    path = Path(bundle.metadata.get("data_file", ""))
    if not path.is_file() or sha256_file(path) != bundle.metadata.get("data_sha256"):
        return None
    data = bundle.metadata["training_settings"]["data"]
    frame = validate_frame(read_table(path), task=task, source=str(path), allow_duplicates=True)[0]
    _, test = train_test_split(frame, test_size=data["test_size"], random_state=data["random_state"],
                               stratify=stratify_by(frame, task.stratify_on))
    return test
