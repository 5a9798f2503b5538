"""Read a verified version directory into a :class:`ModelBundle`.

The checksums only prove that the files are the ones the manifest names; a version written
by a buggy or foreign tool can still hold an index without ``models``, a scaler without
``mean`` or bytes XGBoost cannot parse. Each of those surfaces here as a
:class:`RegistryFormatError` or :class:`ModelIntegrityError` naming the version and the
file, never as a bare ``KeyError`` or ``XGBoostError`` that would escape the callers'
``except EfimeroError`` (and, in the server, once killed the hot-swap watcher).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from efimero.bundle import ModelBundle, Preprocessor, TrainedModel
from efimero.errors import ModelIntegrityError, RegistryFormatError, VersionNotFoundError
from efimero.registry import _layout as layout
from efimero.registry.compile import load_compiled
from efimero.registry.manifest import read_json

_XGBOOST_PREFIX = re.compile(r"^\[[^\]]*\]\s*\S+:\d+:\s*")
"""``[12:00:00] /build/path/src/file.cc:409: `` before XGBoost's own words."""


def load_bundle(directory: Path, name: str, manifest: dict[str, Any]) -> ModelBundle:
    """Build the bundle of the version in ``directory`` (already verified against ``manifest``),
    with its compiled trees when they pass their own checks (:mod:`efimero.registry.compile`).

    Raises:
        RegistryFormatError: ``models.json``, ``preprocessing.json``, the metadata or the
            metrics do not have the shape efimero writes.
        ModelIntegrityError: a model file cannot be parsed by XGBoost.
        VersionNotFoundError: the version was removed while it was being read.
    """
    models = load_models(directory)
    preprocessing = read_json(directory / layout.PREPROCESSING)
    try:
        preprocessor = Preprocessor.from_dict(preprocessing)
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistryFormatError(
            f"{directory / layout.PREPROCESSING}: must hold 'feature_names', 'mean' and 'scale'. "
            f"Got {_problem(exc)} instead; the version is malformed, train a new one."
        ) from exc
    return ModelBundle(
        preprocessor=preprocessor,
        models=models,
        version=name,
        metadata=_mapping(directory / layout.METADATA),
        metrics=_mapping(directory / layout.METRICS),
        inference=load_compiled(directory, models, manifest),
    )


def model_entries(directory: Path) -> list[Any]:
    """The entries of the version's model index (``models.json``), as written; not yet checked one by one.

    Raises:
        RegistryFormatError: the index is not a non-empty list of entries.
    """
    index = read_json(directory / layout.INDEX)
    entries = index.get("models") if isinstance(index, dict) else None
    if not isinstance(entries, list) or not entries:
        raise RegistryFormatError(
            f"{directory / layout.INDEX}: 'models' must be a non-empty list of model entries. "
            f"Got {type(entries).__name__} instead; the version is malformed, train a new one."
        )
    return entries


def load_models(directory: Path) -> dict[str, TrainedModel]:
    """The version's models by name, boosters loaded (the version already verified), without compiled trees."""
    models = {}
    for entry in model_entries(directory):
        model = _model(directory, entry)
        models[model.name] = model
    return models


def _model(directory: Path, entry: Any) -> TrainedModel:
    where = directory / layout.INDEX
    if not isinstance(entry, dict):
        raise RegistryFormatError(f"{where}: each model entry must be a mapping. Got {entry!r:.80} instead.")
    if entry.get("algorithm") != "xgboost":
        raise RegistryFormatError(
            f"{where}: model {entry.get('name')!r} must use algorithm 'xgboost'. "
            f"Got {entry.get('algorithm')!r} instead."
        )
    if entry.get("kind") not in ("classifier", "regressor"):
        raise RegistryFormatError(
            f"{where}: model {entry.get('name')!r} must be of kind 'classifier' or 'regressor'. "
            f"Got {entry.get('kind')!r} instead."
        )
    try:
        name, kind, targets = entry["name"], entry["kind"], list(entry["targets"])
        path = directory / layout.model_file(name)
        model = TrainedModel(
            name=name,
            kind=kind,
            targets=targets,
            booster=_booster(path, directory),
            params=dict(entry.get("params") or {}),
            labels=entry.get("labels"),
            target_mean=_array(entry.get("target_mean")),
            target_scale=_array(entry.get("target_scale")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RegistryFormatError(
            f"{where}: model {entry.get('name')!r} must have a 'name' and a list of 'targets'. "
            f"Got {_problem(exc)} instead; the version is malformed, train a new one."
        ) from exc
    return model


def _booster(path: Path, directory: Path) -> xgb.Booster:
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(path.read_bytes()))
    except FileNotFoundError as exc:  # verified a moment ago: another process removed the version
        raise VersionNotFoundError(
            f"{directory}: {path.relative_to(directory).as_posix()} disappeared while loading; the version was "
            "removed or pruned meanwhile. Load the current version again."
        ) from exc
    except (xgb.core.XGBoostError, OSError) as exc:
        raise ModelIntegrityError(
            f"{directory}: XGBoost cannot read {path.relative_to(directory).as_posix()} "
            f"({_xgboost_reason(exc)}). The version is damaged; restore it from a backup or train a new one."
        ) from exc
    return booster


def _mapping(path: Path) -> dict[str, Any]:
    content = read_json(path)
    if not isinstance(content, dict):
        raise RegistryFormatError(f"{path}: must hold a JSON object. Got {type(content).__name__} instead.")
    return content


def _array(values: list[float] | None) -> np.ndarray | None:
    return None if values is None else np.asarray(values, dtype=float)


def _problem(exc: Exception) -> str:
    """``KeyError('mean')`` reads as "missing key 'mean'"; other errors keep their own words."""
    if isinstance(exc, KeyError):
        return f"no key {exc.args[0]!r}" if exc.args else "a missing key"
    return f"{type(exc).__name__}: {exc}"


def _xgboost_reason(exc: Exception) -> str:
    """XGBoost's first line without its build path and stack trace (they name files of its CI)."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return _XGBOOST_PREFIX.sub("", first)
