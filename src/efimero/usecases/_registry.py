"""The use-case registry: any number of use cases side by side, each with its versions and their status.

::

    models/usecases/
      churn/
        .lock  .last_issued          writers' lock; newest version name ever issued (names never reused)
        registry.json                the guide's registry entry per version, with its status (replaced atomically)
        experiments.jsonl            one line per algorithm per training run (replaced atomically)
        v_20261127_093000/           one version, never modified after creation
          MANIFEST.json              written last: sha256 of every other file
          entry.json  metrics.json   the entry as created; every algorithm's metrics and baselines
          spec.json                  the use case as trained (features resolved)
          preprocessing.skops        the ColumnTransformer (skops, allow-listed)
          estimator/                 the estimator's own files and its estimator.json

A version is written in a hidden staging folder, gets its name reserved under the lock as
in :class:`efimero.registry.Registry` (so two trainers never take the same one), its
manifest last, then is renamed into place. Statuses move ``candidate → production →
archived``; ``refused`` (below the gate) is final. Promotion verifies the checksums first.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from efimero._io import atomic_write_bytes, atomic_write_json, exclusive_lock, fsync_dir
from efimero.errors import RegistryError, VersionNotFoundError, format_list
from efimero.estimators import Estimator, load_estimator
from efimero.registry import Registry
from efimero.registry._layout import LOCK, STAGING_PREFIX
from efimero.registry.manifest import read_json, verify, write_manifest
from efimero.usecases._schema import KEY_PATTERN

Status = Literal["candidate", "production", "archived", "refused"]
INDEX = "registry.json"
EXPERIMENTS = "experiments.jsonl"
ESTIMATOR_DIR = "estimator"


@dataclass(frozen=True)
class LoadedVersion:
    """A verified version: its entry, the preprocessing folder and the estimator."""

    entry: dict[str, Any]
    directory: Path
    estimator: Estimator


class UseCaseRegistry:
    """The versions of every use case under ``root`` (``models/usecases`` by default).

    Example:
        >>> registry = UseCaseRegistry("models/usecases")  # doctest: +SKIP
        >>> registry.production("churn")["version"]
        '1.0.0'
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def folder(self, key: str) -> Path:
        if not KEY_PATTERN.match(key):
            raise RegistryError(f"use case key must match {KEY_PATTERN.pattern}. Got {key!r} instead.")
        return self.root / key

    # -- reading -------------------------------------------------------------------------------

    def keys(self) -> list[str]:
        """Use cases with at least one version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if KEY_PATTERN.match(p.name) and (p / INDEX).is_file())

    def entries(self, key: str) -> list[dict[str, Any]]:
        """Every version's registry entry, oldest first."""
        path = self.folder(key) / INDEX
        if not path.is_file():
            return []
        entries = read_json(path).get("versions", [])
        return entries if isinstance(entries, list) else []

    def production(self, key: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self.entries(key)) if e.get("status") == "production"), None)

    def entry(self, key: str, version: str) -> dict[str, Any]:
        """The entry named by its directory (``v_…``), semantic version (``1.2.0``), ``production`` or ``latest``.

        Raises:
            VersionNotFoundError: no such version (the known ones are listed).
        """
        entries = self.entries(key)
        if version == "latest" and entries:
            return entries[-1]
        for entry in reversed(entries):
            if version in (entry["directory"], entry["version"], entry["model_id"]) or entry["status"] == version:
                return entry
        known = [f"{e['version']} ({e['directory']}, {e['status']})" for e in reversed(entries)]
        raise VersionNotFoundError(f"{self.folder(key)}: use case {key} has no version {version!r}. "
                                   f"Known versions: {format_list(known) or 'none; train one first'}.")

    def load(self, key: str, version: str = "production") -> LoadedVersion:
        """A version's estimator, after verifying every checksum of its manifest.

        Raises:
            ModelIntegrityError: a file is missing or altered (named); nothing is loaded.
        """
        entry = self.entry(key, version)
        directory = self.folder(key) / entry["directory"]
        verify(directory)
        return LoadedVersion(entry, directory, load_estimator(directory / ESTIMATOR_DIR))

    def experiments(self, key: str) -> list[dict[str, Any]]:
        """The experiment log, one record per algorithm per training run, oldest first."""
        path = self.folder(key) / EXPERIMENTS
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    # -- writing -------------------------------------------------------------------------------

    def save(self, key: str, write: Callable[[Path], None], entry: dict[str, Any]) -> dict[str, Any]:
        """Store a new version whose files ``write`` puts in the folder it is given; return its entry.

        The entry gets its directory, semantic version (1.0.0 first; a minor bump per version, a
        major one when the features changed), model_id and created_at here, under the lock.
        """
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            write(staging)
            with self._locked(key) as entries:
                created = datetime.now(UTC)
                name = Registry(folder).reserve_name(created)  # the same never-reused names as the main registry
                entry = {**entry, "directory": name, "created_at": created.isoformat(timespec="seconds"),
                         "version": _next_version(entries, entry["features"])}
                entry["model_id"] = f"UC-{entry['department'].upper()}-{key}-v{entry['version']}"
                entry["file_path"] = str(folder / name)
                atomic_write_json(staging / "entry.json", entry)
                write_manifest(staging, version=name, created_at=entry["created_at"])
                os.replace(staging, folder / name)
                fsync_dir(folder)
                entries.append(entry)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return entry

    def promote(self, key: str, version: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Make ``version`` production and archive the previous production one, in one atomic write.

        Returns:
            The promoted entry and the archived one (None when there was none).

        Raises:
            RegistryError: the version was refused by its gate.
            ModelIntegrityError: its files do not match its manifest.
        """
        with self._locked(key) as entries:
            wanted = self.entry(key, version)
            target = next(e for e in entries if e["directory"] == wanted["directory"])
            if target["status"] == "refused":
                raise RegistryError(f"use case {key}: version {target['version']} was refused by its gate "
                                    f"({'; '.join(target.get('gate_failures', []))}); it cannot be promoted.")
            verify(self.folder(key) / target["directory"])
            previous = None
            for entry in entries:
                if entry["status"] == "production" and entry is not target:
                    entry["status"], previous = "archived", entry
            target["status"] = "production"
            target["promoted_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        return target, previous

    def log_experiments(self, key: str, records: list[dict[str, Any]]) -> None:
        """Append ``records`` to the experiment log: the whole file is replaced atomically, never torn."""
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / EXPERIMENTS
        with exclusive_lock(folder / LOCK):
            old = path.read_bytes() if path.is_file() else b""
            lines = "".join(json.dumps(record, sort_keys=True, default=str) + "\n" for record in records)
            atomic_write_bytes(path, old + lines.encode("utf-8"))

    @contextmanager
    def _locked(self, key: str) -> Iterator[list[dict[str, Any]]]:
        """The entries under the writers' lock; written back atomically when the block ends without error."""
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(folder / LOCK):
            entries = self.entries(key)
            yield entries
            atomic_write_json(folder / INDEX, {"format_version": 1, "use_case_key": key, "versions": entries})


def _next_version(entries: list[dict[str, Any]], features: list[str]) -> str:
    """1.0.0, then 1.1.0, 1.2.0 …; a new major (2.0.0) when the feature columns differ from the last version's."""
    if not entries:
        return "1.0.0"
    last = entries[-1]
    major, minor, _ = (int(part) for part in last["version"].split("."))
    return f"{major + 1}.0.0" if last.get("features") != features else f"{major}.{minor + 1}.0"
