"""A registry version as the drift reference: every file it was trained on and what its model relies on.

A partitioned Parquet directory is read as a seeded uniform sample of at most 200,000 rows
(:func:`~efimero.data._parts.read_for_statistics`), never whole, so drift on 10 million rows
runs in bounded memory; the statistics are then those of the sample.

A version records its training data in ``metadata.json`` (:mod:`efimero.data.provenance`);
:func:`~efimero.data.check_training_files` says why the files can no longer stand for the
training data (none recorded, never hashed, gone, changed since).

Every reader of a version's training data goes through here: the retraining triggers,
``collect --validate``, ``efimero drift --models`` and incremental retraining's forgetting
check. :func:`reference_of` reads all of a version's files, or returns the reason it could not
in ``ReferenceData.problem``, so that a check that cannot run says so instead of passing.
:func:`feature_importance` is the model's combined gain importance, by which the dataset drift
verdict weighs each feature.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from efimero.data import DataFile, check_training_files, training_files
from efimero.data._parts import read_for_statistics

if TYPE_CHECKING:
    from efimero.bundle import ModelBundle


@dataclass(frozen=True)
class ReferenceData:
    """The data drift is measured against, with the model's importance, or why it is missing.

    ``frame`` holds the rows of every file (``None`` when ``problem`` says why they could not be
    read); ``importance`` is the feature importance of the model the data trained (``None`` for
    plain files, so drift verdicts fall back to the unweighted share).
    """

    source: str
    files: list[DataFile]
    frame: pd.DataFrame | None
    importance: dict[str, float] | None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "files": [f.to_dict() for f in self.files],
                "rows": None if self.frame is None else len(self.frame),
                "importance": self.importance, "problem": self.problem}


def reference_of(bundle: ModelBundle) -> ReferenceData:
    """Every training file of ``bundle``'s version, checked against its sha256, and its importance.

    Example:
        >>> reference = reference_of(Registry("models/").load())  # doctest: +SKIP
        >>> reference.problem or len(reference.frame)  # doctest: +SKIP
        3000
    """
    files = training_files(bundle.metadata)
    problem = check_training_files(str(bundle.version), files)
    frame = None if problem else pd.concat([read_for_statistics(f.path) for f in files], ignore_index=True)
    return ReferenceData(f"version {bundle.version}", files, frame, feature_importance(bundle), problem)


def reference_from_files(paths: Sequence[str | Path], *,
                         importance: Mapping[str, float] | None = None) -> ReferenceData:
    """Files named by hand as the reference (all of them, in order).

    Raises:
        DataError: a file is missing or cannot be read.
    """
    frames = [read_for_statistics(path) for path in paths]
    files = [DataFile(Path(path), None, len(frame)) for path, frame in zip(paths, frames, strict=True)]
    return ReferenceData(", ".join(str(p) for p in paths), files, pd.concat(frames, ignore_index=True),
                         None if importance is None else dict(importance))


def choose_reference(paths: Sequence[str | Path], live: ModelBundle | None) -> ReferenceData:
    """The files named by hand, weighed by ``live``'s importance; without any, every training file of ``live``.

    Raises:
        DataError: a named file is missing or cannot be read.
    """
    if paths:
        return reference_from_files(paths, importance=None if live is None else feature_importance(live))
    if live is None:
        return ReferenceData("no reference", [], None, None,
                             "no reference file was named and there is no live version to take the training data from")
    return reference_of(live)


def feature_importance(bundle: ModelBundle) -> dict[str, float]:
    """Combined gain importance per feature, summing to 1: what the dataset drift verdict weighs by."""
    return bundle.combined_importance("gain")
