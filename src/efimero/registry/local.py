"""The versioned model registry on a local directory.

Writers hold the registry lock; readers never block. A version is built in a hidden staging
directory, its manifest written last, then renamed into a name reserved with ``mkdir`` (so
two writers can never take the same name). The ``current`` pointer is a one-line file
replaced atomically. Pruning renames a version out of sight before deleting it, so no
reader ever sees half a version.

A version name is issued once: ``.last_issued`` records the newest name ever handed out and
a new name always sorts after it, so a name freed by pruning is never given to other content
(a cache or a deployment log keyed by name would otherwise mix two models).

Everything a reader follows (the ``current`` pointer, a version directory, a manifest entry)
must stay inside the registry: a symlink that leads elsewhere is refused, so what is served
is always what the registry's own checksums and lock protect.
"""

from __future__ import annotations

import builtins
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from efimero._io import atomic_write_bytes, atomic_write_json, atomic_write_text, exclusive_lock, fsync_dir
from efimero.bundle import ModelBundle
from efimero.errors import RegistryError, RegistryFormatError, VersionNotFoundError, format_list
from efimero.registry import _layout as layout
from efimero.registry.compile import CompileReport, compile_version
from efimero.registry.exploration import ExplorationPolicy, read_exploration, write_exploration
from efimero.registry.load import load_bundle, load_models, model_entries
from efimero.registry.manifest import read_json, verify, write_manifest
from efimero.registry.traffic import TrafficSplit, read_traffic, write_traffic

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionInfo:
    """A version as listed: name, creation time, whether it is live, its metadata and metrics."""

    name: str
    created_at: str
    is_current: bool
    metadata: dict[str, Any]
    metrics: dict[str, Any]


class Registry:
    """A directory of model versions with a ``current`` pointer.

    ``root`` may also be the registry's ``current`` file (``--models models/current``, as
    written in examples): the registry is then its folder. A version directory is refused
    with a message naming its registry, because a registry object always follows (and
    writes) a ``current`` pointer, which a single version does not have; commands that
    accept one version directory load it with ``Registry(path.parent).load(path.name)``.

    Example:
        >>> registry = Registry("models/")  # doctest: +SKIP
        >>> bundle = registry.load()        # the current version, checksums verified

    Raises:
        RegistryError: ``root`` is a version directory or a file other than ``current``.
    """

    def __init__(self, root: str | Path) -> None:
        root = Path(root)
        if root.name == layout.CURRENT and (root.is_file() or root.is_symlink()):
            root = root.parent
        elif root.exists() and not root.is_dir():
            raise RegistryError(
                f"{root}: the models path must be a registry directory (or its `current` file). "
                "Got another file instead."
            )
        elif layout.is_version_name(root.name) and (root / layout.MANIFEST).is_file():
            raise RegistryError(
                f"{root}: the models path must be a registry directory. Got the version {root.name} "
                f"instead; pass its registry {root.parent} (and name the version where the command takes one)."
            )
        self.root = root

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
        """Name of the live version, or ``None`` before the first one.

        Raises:
            RegistryError: ``current`` is a symlink leading outside the registry.
            RegistryFormatError: ``current`` cannot be read or holds no version name.
        """
        pointer = self.root / layout.CURRENT
        if pointer.is_symlink():
            self._inside(pointer, what=f"the {layout.CURRENT} pointer")
        try:
            name = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise RegistryFormatError(
                f"{pointer}: must be a one-line file naming the live version. It cannot be read ({reason}); "
                "point it again with `efimero models set-current` or a rollback."
            ) from exc
        if not layout.is_version_name(name):
            raise RegistryFormatError(
                f"{pointer}: must name a version (v_YYYYMMDD_HHMMSS[_n]). Got {name!r:.80} instead."
            )
        return name

    def previous(self, version: str) -> str | None:
        """The version that was live before ``version``: the one a rollback would pick.

        The newest successful deployment that made ``version`` current names it (the log is
        written by ``efimero deploy``); without one, it is the newest version older than
        ``version``. An unreadable deployment log only loses the first hint: this answer is
        what a server falls back to, so it must not fail on a side file.
        """
        if not layout.is_version_name(version):
            raise RegistryError(f"version must be a version name (v_YYYYMMDD_HHMMSS[_n]). Got {version!r} instead.")
        for record in reversed(self._deployments()):
            if record.get("status") == "success" and record.get("version") == version:
                before = record.get("previous_version")
                if isinstance(before, str) and before != version and before in self.versions():
                    return before
                break
        older = [name for name in self.versions() if layout.version_sort_key(name) < layout.version_sort_key(version)]
        return older[-1] if older else None

    def verify(self, version: str | None = None) -> dict[str, Any]:
        """Check every file of a version (default: the current one) against its manifest.

        Raises:
            VersionNotFoundError: no such version.
            ModelIntegrityError: a file is missing, altered or outside the version.
        """
        return verify(self.root / self.resolve(version))

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
        directory = layout.version_dir(self.root, name)
        if directory.is_symlink():
            self._inside(directory, what=f"version {name}")
        if not (directory / layout.MANIFEST).is_file():
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
        metadata = read_json(directory / layout.METADATA)
        return VersionInfo(
            name=name,
            created_at=metadata.get("created_at", ""),
            is_current=name == self.current(),
            metadata=metadata,
            metrics=read_json(directory / layout.METRICS),
        )

    def list(self) -> list[VersionInfo]:
        """Every complete version, newest first."""
        return [self.info(name) for name in reversed(self.versions())]

    def load(self, version: str | None = None) -> ModelBundle:
        """Load a version after verifying every checksum of its manifest.

        Raises:
            VersionNotFoundError: no such version (or no current one).
            ModelIntegrityError: a file is missing, altered or unreadable by XGBoost.
            RegistryFormatError: an index, scaler, metadata or metrics file is malformed.
            RegistryError: the pointer or the version leads outside the registry.
        """
        name = self.resolve(version)
        directory = self.root / name
        return load_bundle(directory, name, verify(directory))

    def compile(self, version: str | None = None, *, compiler: str = "gcc",
                progress: Callable[[str], None] | None = None) -> CompileReport:
        """Compile a version's boosters to shared libraries (``compiled/``), the fast path of serving.

        ``progress`` is called with each model's name once it is compiled.

        Raises:
            VersionNotFoundError: no such version.
            ModelIntegrityError: the version's files do not match its manifest.
            RegistryError: the toolchain is missing or the compiled trees differ from XGBoost.
        """
        with exclusive_lock(self.root / layout.LOCK):
            directory = self.root / self.resolve(version)
            verify(directory)
            # The boosters only: the compiled trees there now are about to be replaced, not checked.
            return compile_version(directory, load_models(directory), compiler=compiler, progress=progress)

    def model_names(self, version: str | None = None) -> tuple[str, ...]:
        """The names of a version's models, from its index alone (no model is loaded, nothing verified)."""
        entries = model_entries(self.root / self.resolve(version))
        return tuple(str(entry.get("name")) if isinstance(entry, dict) else "?" for entry in entries)

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
        try:
            self._write_files(staging, bundle, metrics=metrics, metadata=metadata)
            with exclusive_lock(self.root / layout.LOCK):
                created = datetime.now(UTC)
                name = self.reserve_name(created)
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
        stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S_%f")
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
        """Delete a version that is neither current nor a candidate (it disappears before its files do)."""
        with exclusive_lock(self.root / layout.LOCK):
            name = self.resolve(version)
            if name == self.current():
                raise RegistryError(f"{self.root}: {name} is the current version and cannot be removed.")
            if name in self._traffic_versions():
                raise RegistryError(
                    f"{self.root}: {name} is served to a share of the traffic (traffic.json) and cannot be removed; "
                    "end its rollout or experiment first."
                )
            self._discard(name)

    def traffic(self) -> TrafficSplit | None:
        """The candidates served beside ``current`` (``traffic.json``), or None when there are none."""
        return read_traffic(self.root)

    def set_traffic(self, split: TrafficSplit | None, *, claim: bool = False) -> None:
        """Serve ``split``'s candidates beside ``current`` (None: all traffic to ``current``).

        Every candidate must be a complete, checksum-valid version other than ``current``:
        a server follows the file at its next poll, so what it names must load. With
        ``claim``, a split written by another owner (a running experiment, say) is refused
        rather than replaced, checked under the same lock as the write.

        Raises:
            VersionNotFoundError: a candidate version does not exist here.
            ModelIntegrityError: a candidate's files do not match its manifest.
            RegistryError: a candidate is the current version, or ``claim`` finds another owner's split.
        """
        with exclusive_lock(self.root / layout.LOCK):
            existing = read_traffic(self.root) if claim else None
            if existing is not None and (split is None or existing.owner != split.owner):
                raise RegistryError(
                    f"{self.root}: the traffic is split already, by {existing.owner or 'a hand-written traffic.json'} "
                    f"({', '.join(f'{arm.name} {arm.share:.0%}' for arm in existing.arms)}); end that first."
                )
            current = self.current()
            for arm in split.arms if split is not None else ():
                verify(self.root / self.resolve(arm.version))
                if arm.version == current:
                    raise RegistryError(
                        f"{self.root}: arm {arm.name!r} names {arm.version}, the current version; a candidate "
                        "must be another version."
                    )
            write_traffic(self.root, split)

    def exploration(self) -> ExplorationPolicy | None:
        """How this deployment explores (``exploration.json``), or None when it serves greedily."""
        return read_exploration(self.root)

    def set_exploration(self, policy: ExplorationPolicy | None) -> None:
        """Explore with ``policy`` from the servers' next poll on (None: serve greedily)."""
        with exclusive_lock(self.root / layout.LOCK):
            write_exploration(self.root, policy)

    def restore_pointer(self, version: str | None) -> None:
        """Put ``current`` back to ``version``, or remove it when there was none."""
        with exclusive_lock(self.root / layout.LOCK):
            if version is None:
                (self.root / layout.CURRENT).unlink(missing_ok=True)
                fsync_dir(self.root)
            else:
                self._point_to(version)

    def prune(self, max_versions_to_keep: int, *, keep: tuple[str, ...] = ()) -> builtins.list[str]:
        """Delete the oldest versions beyond ``max_versions_to_keep``, never the current one or a candidate."""
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

    def reserve_name(self, created: datetime) -> str:
        """Take the first free name after every name ever issued here, as an empty directory to
        replace with the version's (the caller holds the registry's lock, or its own for this folder).

        ``mkdir`` alone is not enough: a name whose version was pruned is free again, and a
        writer whose clock reads an earlier second would take it for different content.
        """
        base = created.strftime("v_%Y%m%d_%H%M%S")
        newest = max(self._issued(), key=layout.version_sort_key, default=None)
        if newest is None or layout.version_sort_key(base) > layout.version_sort_key(newest):
            date, clock, first = layout.version_sort_key(base)
        else:
            date, clock, first = layout.version_sort_key(newest)
            first += 1
        for counter in range(first, first + 10_000):
            name = f"v_{date}_{clock}" if counter == 1 else f"v_{date}_{clock}_{counter}"
            try:
                (self.root / name).mkdir()
            except FileExistsError:
                continue
            atomic_write_text(self.root / layout.LAST_ISSUED, name + "\n")
            return name
        raise RegistryError(f"{self.root}: too many versions created in the second {date}_{clock}.")

    def _issued(self) -> builtins.list[str]:
        """The recorded newest name and every version-named entry (registries older than the record)."""
        names = [entry.name for entry in self.root.iterdir() if layout.is_version_name(entry.name)]
        try:
            recorded = (self.root / layout.LAST_ISSUED).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return names
        if not layout.is_version_name(recorded):
            raise RegistryFormatError(
                f"{self.root / layout.LAST_ISSUED}: must name a version (v_YYYYMMDD_HHMMSS[_n]). Got {recorded!r:.80} "
                "instead; write the newest version name into it."
            )
        return [*names, recorded]

    def _inside(self, link: Path, *, what: str) -> None:
        """Refuse a symlink that leads out of the registry (it escapes the checksums and the lock)."""
        target = link.resolve()
        root = self.root.resolve()
        if target == root or not target.is_relative_to(root):
            raise RegistryError(
                f"{link}: {what} must stay inside the registry {self.root}. Got a symlink to {target} instead; "
                "replace it with the file or directory itself."
            )

    def _deployments(self) -> builtins.list[dict[str, Any]]:
        """Records of the deployment log, oldest first; empty when it is missing or unreadable."""
        path = self.root / layout.DEPLOYMENTS
        if not path.is_file():
            return []
        try:
            records = read_json(path).get("deployments", [])
        except (RegistryFormatError, AttributeError) as exc:
            logger.warning("%s: ignored, it is not a deployment log (%s)", path, exc)
            return []
        return [record for record in records if isinstance(record, dict)] if isinstance(records, list) else []

    def _point_to(self, name: str) -> None:
        atomic_write_text(self.root / layout.CURRENT, name + "\n")

    def _prune(self, max_keep: int, *, keep: tuple[str, ...] = ()) -> builtins.list[str]:
        if max_keep < 1:
            raise RegistryError(f"max_versions_to_keep must be at least 1. Got {max_keep} instead.")
        protected = {self.current(), *keep, *self._traffic_versions()} - {None}
        versions = self.versions()
        candidates = [name for name in versions if name not in protected]
        excess = len(versions) - max_keep
        removed = candidates[: max(excess, 0)]
        for name in removed:
            self._discard(name)
        if removed:
            logger.info("pruned %d version(s): %s", len(removed), ", ".join(removed))
        return removed

    def _traffic_versions(self) -> builtins.list[str]:
        """Versions a traffic split serves; an unreadable split protects every version (nothing is pruned)."""
        try:
            split = read_traffic(self.root)
        except RegistryFormatError as exc:
            logger.warning("not pruning: %s", exc)
            return self.versions()
        return [arm.version for arm in split.arms] if split is not None else []

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
