"""Where a version's training data came from: every input file with its sha256 and rows.

A version records its training data in ``metadata.json`` as ``data_files``, one entry per input
file with its ``path``, ``sha256`` and ``rows`` (:func:`data_metadata` writes them), beside the
single ``data_file`` that readers of older versions know. Older versions record only
``data_file`` and ``data_sha256``; :func:`training_files` reads both forms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from efimero._io import sha256_file


@dataclass(frozen=True)
class DataFile:
    """One training data file of a version: where it was, its sha256 and its rows (when recorded)."""

    path: Path
    sha256: str | None
    rows: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "rows": self.rows}


def fingerprint(path: Path) -> str:
    """The sha256 of a data file, or of a partitioned dataset's part files (:func:`~efimero.data.sha256_dataset`)."""
    from efimero.data._parts import sha256_dataset

    return sha256_dataset(path) if path.is_dir() else sha256_file(path)


def data_metadata(files: Sequence[tuple[str | Path, int]]) -> dict[str, Any]:
    """The metadata keys that record a version's training files, given (path, rows) per file.

    ``data_files`` lists every file. ``data_file`` names the first one so that older readers
    still find a file; ``data_sha256`` is written only for a single file, so that no reader that
    checks ``data_file`` against it can take the first of several files for all of the data.
    """
    entries = [DataFile(Path(path), fingerprint(Path(path)), int(rows)).to_dict() for path, rows in files]
    recorded: dict[str, Any] = {"data_files": entries, "data_file": entries[0]["path"]}
    if len(entries) == 1:
        recorded["data_sha256"] = entries[0]["sha256"]
    return recorded


def training_files(metadata: Mapping[str, Any]) -> list[DataFile]:
    """The training files a version's metadata records: ``data_files``, else ``data_file``/``data_sha256``."""
    if metadata.get("data_files"):
        return [DataFile(Path(entry["path"]), entry.get("sha256"), entry.get("rows"))
                for entry in metadata["data_files"]]
    if metadata.get("data_file"):
        return [DataFile(Path(metadata["data_file"]), metadata.get("data_sha256"), None)]
    return []


def check_training_files(version: str, files: Sequence[DataFile]) -> str | None:
    """Why ``files`` no longer hold the training data of ``version``, or None when they all do."""
    if not files:
        return f"version {version} records no training data file"
    for file in files:
        if file.sha256 is None:
            return (f"version {version} records no sha256 for its training data {file.path}, so nothing shows "
                    "that the file still holds what it was trained on")
        if not (file.path.is_file() or file.path.is_dir()):
            return f"training data file {file.path} of version {version} is gone"
        if fingerprint(file.path) != file.sha256:
            return f"training data file {file.path} changed since version {version} was trained (its sha256 differs)"
    return None
