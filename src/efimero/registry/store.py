"""The versioned model registry on a local directory.

Writers hold the registry lock; readers never block. A version is built in a hidden staging
directory, its manifest written last, then renamed into a name reserved with ``mkdir`` (so
two writers can never take the same name). The ``current`` pointer is a one-line file
replaced atomically. Pruning renames a version out of sight before deleting it, so no
reader ever sees half a version.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from efimero._io import atomic_write_bytes, atomic_write_json, atomic_write_text, exclusive_lock, fsync_dir
from efimero.errors import RegistryError, RegistryFormatError, VersionNotFoundError, format_list
from efimero.registry import _layout as layout
from efimero.registry.manifest import verify, write_manifest
from efimero.training._model import ModelBundle, Preprocessor, TrainedModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionInfo:
    """A version as listed: name, creation time, whether it is live, its metadata and metrics."""

    name: str
    created_at: str
    is_current: bool
    metadata: dict[str, Any]
    metrics: dict[str, Any]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RegistryFormatError(f"{path}: cannot be read as JSON ({exc}).") from exc


class Registry:
    """A directory of model versions with a ``current`` pointer.

    Example:
        >>> registry = Registry("models/")  # doctest: +SKIP
        >>> bundle = registry.load()        # the current version, checksums verified
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- reading -----------------------------------------------------------------------
    def versions(self) -> list[str]:
        """Complete versions (those with a manifest), oldest first."""
        if not self.root.is_dir():
            return []
        names = [
            entry.name
            for entry in self.root.iterdir()
            if layout.is_version_name(entry.name) and (entry / layout.MANIFEST).is_file()
        ]
        return sorted(names, key=layout.version_sort_key)

    def current(self) -> str | None:
        """Name of the live version, or ``None`` before the first one."""
        try:
            name = (self.root / layout.CURRENT).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        if not layout.is_version_name(name):
            raise RegistryFormatError(f"{self.root / layout.CURRENT}: holds {name!r}, not a version name.")
        return name

    def resolve(self, version: str | None = None) -> str:
        """Turn ``None``/``"current"``/``"latest"``/a name into an existing version name."""
        if version in (None, "current"):
            name = self.current()
            if name is None:
                raise VersionNotFoundError(
                    f"{self.root}: has no current version. Train one with `efimero train --output {self.root}`."
                )
        elif version == "latest":
            versions = self.versions()
            if not versions:
                raise VersionNotFoundError(f"{self.root}: holds no versions yet.")
            name = versions[-1]
        else:
            name = version
        if not (layout.version_dir(self.root, name) / layout.MANIFEST).is_file():
            known = self.versions()
            raise VersionNotFoundError(
                f"{self.root}: version {name!r} does not exist. Known versions: {format_list(known[::-1]) or 'none'}."
            )
        return name

    def path(self, version: str | None = None) -> Path:
        return self.root / self.resolve(version)

    def info(self, version: str | None = None) -> VersionInfo:
        name = self.resolve(version)
        directory = self.root / name
        metadata = _read_json(directory / layout.METADATA)
        return VersionInfo(
            name=name,
            created_at=metadata.get("created_at", ""),
            is_current=name == self.current(),
            metadata=metadata,
            metrics=_read_json(directory / layout.METRICS),
        )

    def list(self) -> list[VersionInfo]:
        """Every complete version, newest first."""
        return [self.info(name) for name in reversed(self.versions())]

    def load(self, version: str | None = None) -> ModelBundle:
        """Load a version after verifying every checksum of its manifest.

        Raises:
            VersionNotFoundError: no such version (or no current one).
            ModelIntegrityError: a file is missing or altered.
        """
        name = self.resolve(version)
        directory = self.root / name
        verify(directory)
        index = _read_json(directory / layout.INDEX)
        models = {}
        for entry in index["models"]:
            if entry.get("algorithm") != "xgboost":
                raise RegistryFormatError(f"{directory}: model {entry.get('name')!r} uses an unknown algorithm.")
            booster = xgb.Booster()
            booster.load_model(bytearray((directory / layout.model_file(entry["name"])).read_bytes()))
            models[entry["name"]] = TrainedModel(
                name=entry["name"],
                kind=entry["kind"],
                targets=entry["targets"],
                booster=booster,
                params=entry.get("params", {}),
                labels=entry.get("labels"),
                target_mean=_array(entry.get("target_mean")),
                target_scale=_array(entry.get("target_scale")),
            )
        return ModelBundle(
            preprocessor=Preprocessor.from_dict(_read_json(directory / layout.PREPROCESSING)),
            models=models,
            version=name,
            metadata=_read_json(directory / layout.METADATA),
            metrics=_read_json(directory / layout.METRICS),
        )

    # -- writing -----------------------------------------------------------------------
    def save(
        self,
        bundle: ModelBundle,
        *,
        metrics: dict[str, Any],
        metadata: dict[str, Any],
        set_current: bool = True,
        max_versions_to_keep: int | None = 10,
    ) -> str:
        """Store ``bundle`` as a new immutable version; return its name.

        The version becomes current when ``set_current``; then versions beyond
        ``max_versions_to_keep`` are pruned (never the current one).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f"{layout.STAGING_PREFIX}{uuid.uuid4().hex}"
        created = datetime.now(timezone.utc)
        try:
            self._write_files(staging, bundle, metrics=metrics, metadata=metadata)
            with exclusive_lock(self.root / layout.LOCK):
                name = self._reserve_name(created)
                stamp = {"version": name, "created_at": created.isoformat(timespec="seconds")}
                atomic_write_json(staging / layout.METADATA, {**metadata, **stamp})
                write_manifest(staging, version=name, created_at=stamp["created_at"])
                os.replace(staging, self.root / name)
                fsync_dir(self.root)
                if set_current:
                    self._point_to(name)
                if set_current and max_versions_to_keep is not None:
                    self._prune(max_versions_to_keep)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        bundle.version = name
        logger.info("saved version %s in %s", name, self.root)
        return name

    def set_current(self, version: str) -> str:
        """Point ``current`` at an existing, checksum-valid version; return the previous one."""
        with exclusive_lock(self.root / layout.LOCK):
            name = self.resolve(version)
            verify(self.root / name)
            previous = self.current()
            self._point_to(name)
        return previous or ""

    def adopt(self, source: Path) -> bool:
        """Copy a complete version directory from another registry under its own name.

        The copy is verified against its manifest before it becomes visible. Returns False
        when this registry already holds the version (versions are immutable: nothing to do).

        Raises:
            ModelIntegrityError: the source, or the copy, does not match the manifest.
        """
        name = source.name
        if (layout.version_dir(self.root, name) / layout.MANIFEST).is_file():
            return False
        verify(source)
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f"{layout.STAGING_PREFIX}{uuid.uuid4().hex}"
        try:
            shutil.copytree(source, staging)
            verify(staging)
            _fsync_tree(staging)
            with exclusive_lock(self.root / layout.LOCK):
                if (self.root / name).exists():
                    shutil.rmtree(self.root / name)  # a reserved or torn directory, never a manifest-complete one
                os.replace(staging, self.root / name)
                fsync_dir(self.root)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        return True

    def backup(self, version: str | None = None) -> Path:
        """Copy a version (verified) into ``backups/<stamp>__<version>/``; return that folder.

        Backups survive pruning and damage to the version itself; ``restore`` brings one back.
        """
        name = self.resolve(version)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d_%H%M%S_%f")
        destination = self.root / layout.BACKUPS / f"{stamp}__{name}"
        staging = destination.with_name(f".{destination.name}")
        shutil.copytree(self.root / name, staging / name)
        verify(staging / name)
        _fsync_tree(staging)
        os.replace(staging, destination)
        return destination

    def restore(self, version: str) -> Path:
        """Replace a missing or damaged ``version`` with its newest verified backup."""
        backups = sorted((self.root / layout.BACKUPS).glob(f"*__{version}"), reverse=True)
        if not backups:
            raise VersionNotFoundError(f"{self.root}: no backup of {version} in {layout.BACKUPS}/.")
        if (self.root / version).exists():
            with exclusive_lock(self.root / layout.LOCK):
                self._discard(version)
        self.adopt(backups[0] / version)
        return backups[0]

    def remove(self, version: str) -> None:
        """Delete a version that is not current (it disappears before its files do)."""
        with exclusive_lock(self.root / layout.LOCK):
            name = self.resolve(version)
            if name == self.current():
                raise RegistryError(f"{self.root}: {name} is the current version and cannot be removed.")
            self._discard(name)

    def restore_pointer(self, version: str | None) -> None:
        """Put ``current`` back to ``version``, or remove it when there was none."""
        with exclusive_lock(self.root / layout.LOCK):
            if version is None:
                (self.root / layout.CURRENT).unlink(missing_ok=True)
                fsync_dir(self.root)
            else:
                self._point_to(version)

    def prune(self, max_versions_to_keep: int, *, keep: tuple[str, ...] = ()) -> list[str]:
        """Delete the oldest versions beyond ``max_versions_to_keep``, never the current one."""
        with exclusive_lock(self.root / layout.LOCK):
            return self._prune(max_versions_to_keep, keep=keep)

    def _write_files(self, staging: Path, bundle: ModelBundle, *, metrics: dict, metadata: dict) -> None:
        index = {
            "feature_names": bundle.feature_names,
            "models": [model.info() for model in bundle.models.values()],
        }
        for model in bundle.models.values():
            atomic_write_bytes(staging / layout.model_file(model.name), bytes(model.booster.save_raw("ubj")))
        atomic_write_json(staging / layout.INDEX, index)
        atomic_write_json(staging / layout.PREPROCESSING, bundle.preprocessor.to_dict())
        atomic_write_json(staging / layout.METRICS, metrics)

    def _reserve_name(self, created: datetime) -> str:
        base = created.strftime("v_%Y%m%d_%H%M%S")
        for counter in range(1, 10_000):
            name = base if counter == 1 else f"{base}_{counter}"
            try:
                (self.root / name).mkdir()
            except FileExistsError:
                continue
            return name
        raise RegistryError(f"{self.root}: too many versions created in the second {base}.")

    def _point_to(self, name: str) -> None:
        atomic_write_text(self.root / layout.CURRENT, name + "\n")

    def _prune(self, max_keep: int, *, keep: tuple[str, ...] = ()) -> list[str]:
        if max_keep < 1:
            raise RegistryError(f"max_versions_to_keep must be at least 1. Got {max_keep} instead.")
        protected = {self.current(), *keep} - {None}
        versions = self.versions()
        candidates = [name for name in versions if name not in protected]
        excess = len(versions) - max_keep
        removed = candidates[: max(excess, 0)]
        for name in removed:
            self._discard(name)
        if removed:
            logger.info("pruned %d version(s): %s", len(removed), ", ".join(removed))
        return removed

    def _discard(self, name: str) -> None:
        trash = self.root / f"{layout.TRASH_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        os.replace(self.root / name, trash)
        fsync_dir(self.root)
        shutil.rmtree(trash)


def _fsync_tree(directory: Path) -> None:
    """Flush every file and folder of a copied tree before it is renamed into place."""
    for path in sorted(directory.rglob("*"), reverse=True):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        else:
            fsync_dir(path)
    fsync_dir(directory)


def _array(values: list[float] | None) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=float)
