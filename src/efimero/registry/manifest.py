"""Version manifests: the sha256 of every file, checked on every load.

The manifest carries ``format_version``. Readers accept every format up to
:data:`FORMAT_VERSION` and refuse newer ones with a message to upgrade efimero.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from efimero._io import atomic_write_json, sha256_file
from efimero.errors import ModelIntegrityError, RegistryFormatError, format_list
from efimero.registry._layout import MANIFEST

FORMAT_VERSION = 1


def write_manifest(directory: Path, *, version: str, created_at: str) -> dict[str, Any]:
    """Hash every file under ``directory`` and write the manifest (the last file of a version)."""
    files = {
        path.relative_to(directory).as_posix(): sha256_file(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != MANIFEST
    }
    manifest = {"format_version": FORMAT_VERSION, "version": version, "created_at": created_at, "files": files}
    atomic_write_json(directory / MANIFEST, manifest)
    return manifest


def read_json(path: Path) -> Any:
    """Parse one JSON file of a version; unreadable or invalid files are a format problem."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RegistryFormatError(f"{path}: cannot be read as JSON ({exc}).") from exc


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelIntegrityError(f"{directory}: has no {MANIFEST}; it is not a complete version.") from None
    except json.JSONDecodeError as exc:
        raise RegistryFormatError(f"{path}: is not valid JSON ({exc}).") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise RegistryFormatError(f"{path}: must hold a 'files' mapping of path → sha256.")
    found = manifest.get("format_version")
    if not isinstance(found, int) or found > FORMAT_VERSION:
        raise RegistryFormatError(
            f"{path}: format_version must be an integer ≤ {FORMAT_VERSION}. Got {found!r} instead; "
            "upgrade efimero to read this registry."
        )
    return manifest


def verify(directory: Path, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Check every file of a version against its manifest.

    Raises:
        ModelIntegrityError: naming every missing or altered file, or a file outside ``directory``.
    """
    manifest = manifest if manifest is not None else read_manifest(directory)
    missing, altered = [], []
    inside = directory.resolve()
    for relative, expected in manifest["files"].items():
        path = directory / relative
        if Path(relative).is_absolute() or not path.resolve().is_relative_to(inside):
            # a manifest must never make the registry read (and later load) a file elsewhere
            raise ModelIntegrityError(
                f"{directory}: every file of {MANIFEST} must lie inside the version. Got {relative!r} instead."
            )
        if not path.is_file():
            missing.append(relative)
        elif sha256_file(path) != expected:
            altered.append(relative)
    if missing or altered:
        problems = []
        if altered:
            problems.append(f"checksum mismatch in {format_list(altered)}")
        if missing:
            problems.append(f"missing {format_list(missing)}")
        raise ModelIntegrityError(
            f"{directory}: {'; '.join(problems)}. The version is corrupted or was edited; "
            "refusing to load it. Restore it from a backup or train a new version."
        )
    return manifest
