"""Names and paths inside a registry directory.

::

    models/
      current                    name of the live version (replaced atomically)
      .lock                      writers' lock
      .last_issued               newest version name ever issued: names are never reused
      deployments.json           deployment log (written by efimero.deploy, read for fallbacks)
      traffic.json               candidate versions served beside current, with shares (optional)
      exploration.json           how the deployment explores its class labels (optional: greedy)
      v_20261125_153000/         one version: never modified after creation (but for compiled/)
        MANIFEST.json            written last: sha256 of every other file
        models.json              index: feature names, each model's kind, targets, labels
        preprocessing.json       the scaler
        models/<name>.ubj        XGBoost native UBJSON, one per named model
        metrics.json  metadata.json
        compiled/                optional, added later: the boosters as shared libraries with
                                 their own COMPILED.json (checksums, platform); never trusted
      backups/<stamp>__<version>/   verified copies made before deployments and retraining
"""

from __future__ import annotations

import re
from pathlib import Path

from efimero.errors import RegistryError

VERSION_PATTERN = re.compile(r"^v_(\d{8})_(\d{6})(?:_(\d+))?$")
CURRENT = "current"
LOCK = ".lock"
LAST_ISSUED = ".last_issued"
DEPLOYMENTS = "deployments.json"
MANIFEST = "MANIFEST.json"
INDEX = "models.json"
PREPROCESSING = "preprocessing.json"
METRICS = "metrics.json"
METADATA = "metadata.json"
MODELS_DIR = "models"
STAGING_PREFIX = ".staging-"
TRASH_PREFIX = ".trash-"
BACKUPS = "backups"
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def is_version_name(name: str) -> bool:
    return VERSION_PATTERN.match(name) is not None


def version_sort_key(name: str) -> tuple[str, str, int]:
    """Creation order: timestamp, then the collision counter (``_2`` before ``_10``)."""
    match = VERSION_PATTERN.match(name)
    if match is None:
        raise RegistryError(f"{name!r} is not a version name (expected v_YYYYMMDD_HHMMSS[_n]).")
    date, clock, counter = match.groups()
    return date, clock, int(counter or 1)


def model_file(name: str) -> str:
    """Relative path of a named model's file; the name must be safe as a file name."""
    if not MODEL_NAME_PATTERN.match(name):
        raise RegistryError(f"model name must match {MODEL_NAME_PATTERN.pattern}. Got {name!r} instead.")
    return f"{MODELS_DIR}/{name}.ubj"


def version_dir(root: Path, name: str) -> Path:
    if not is_version_name(name):
        raise RegistryError(f"{name!r} is not a version name (expected v_YYYYMMDD_HHMMSS[_n]).")
    return root / name
