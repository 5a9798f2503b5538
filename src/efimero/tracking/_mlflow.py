"""The MLflow side of tracking: runs, nested trial runs, models and registered versions.

Imported only when a tracking URI is configured (see :mod:`efimero.tracking`). Where things go:

- a run per command in the experiment ``tracking.experiment``, tagged ``efimero.command``;
  each tuning candidate a nested run (``mlflow.parentRunId``);
- a saved version: its metadata as parameters, its ``metrics.json`` as metrics, the whole
  version directory as the artefacts ``efimero/<version>/`` (so that it can be downloaded and
  checked against its own ``MANIFEST.json``), and each booster as an ``mlflow.xgboost`` model
  named after it;
- the registered model ``tracking.model_name``: one model version per efimero version, whose
  source is that artefact directory, tagged with efimero's version name, the sha256 of its
  manifest and of each file, and the sha256 of its training data.

The client is quietened on import of this module (``MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT``, no
download progress bars): efimero's commands own stdout, and ``--json`` output must stay JSON.
HTTP retries are kept short unless the user set them, so that a server that went away costs a
deployment seconds, not MLflow's default minutes of backoff.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import mlflow
import mlflow.xgboost
import requests
import xgboost as xgb
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from efimero._io import sha256_file
from efimero.config import TrackingSettings
from efimero.errors import TrackingError, TrackingWarning
from efimero.registry import Registry
from efimero.registry._layout import MANIFEST
from efimero.registry.manifest import read_manifest
from efimero.tracking._run import NO_RUN, RunLog, flatten, numbers

logger = logging.getLogger(__name__)

FAILURES = (MlflowException, requests.RequestException, OSError)
"""What the client raises when the server, the network or the artefact store fails."""

_QUIET = {"MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
_SHORT_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
os.environ.update(_QUIET)
for _name, _value in _SHORT_RETRIES.items():
    os.environ.setdefault(_name, _value)

VERSION_TAG = "efimero.version"
MANIFEST_TAG = "efimero.manifest_sha256"
DATA_TAG = "efimero.data_sha256"
FILE_TAG = "efimero.sha256."
"""Prefix of one tag per file of the version: ``efimero.sha256.models/theme.ubj``."""
ARTIFACTS = "efimero"
"""Where a run keeps a version directory: ``efimero/<version>/``."""

_BATCH = 100  # entries per log_batch call: MLflow's limit for parameters (metrics allow 1000)
_PARAM_CHARS = 6000
_KEY = re.compile(r"[^\w\-. /]")


def _key(name: str) -> str:
    """A key MLflow accepts (letters, digits, ``_ - . / `` and spaces)."""
    return _KEY.sub("_", name)[:250]


class Connection:
    """A tracking server as efimero uses it: its client, the experiment and the registered model's name."""

    def __init__(self, settings: TrackingSettings) -> None:
        assert settings.uri is not None, "a connection needs a tracking URI"
        self.uri, self.settings = settings.uri, settings
        self.client = MlflowClient(tracking_uri=settings.uri, registry_uri=settings.uri)
        try:
            experiment = self.client.get_experiment_by_name(settings.experiment)
            self.experiment_id = (experiment.experiment_id if experiment is not None
                                  else self.client.create_experiment(settings.experiment))
        except FAILURES as exc:
            raise unreachable(settings.uri, exc) from exc

    @property
    def model_name(self) -> str:
        return self.settings.model_name

    def find_version(self, version: str) -> ModelVersion | None:
        """The registered model version that mirrors efimero's ``version``, or None."""
        found = self.client.search_model_versions(
            f"name = '{self.model_name}' and tags.`{VERSION_TAG}` = '{version}'")
        return max(found, key=lambda mv: int(mv.version)) if found else None

    def register(self, run_id: str, version_dir: Path) -> ModelVersion:
        """Make the version logged at ``efimero/<version>`` of ``run_id`` a registered model version (once)."""
        existing = self.find_version(version_dir.name)
        if existing is not None:
            return existing
        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException as exc:
            if exc.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                raise
            self.client.create_registered_model(
                self.model_name, description="efimero's registry versions, mirrored; efimero's own registry is the "
                "source of truth. Aliases follow its deployments (staging, production).")
        return self.client.create_model_version(
            self.model_name, source=f"runs:/{run_id}/{ARTIFACTS}/{version_dir.name}", run_id=run_id,
            tags=version_tags(version_dir), description=f"efimero version {version_dir.name}",
            await_creation_for=0)  # a tracking server registers at once; waiting only logs a line

    def open_run(self, command: str, name: str | None = None, parent: str | None = None) -> str:
        """Create a run of ``command`` (nested in ``parent`` when given) in the experiment; its id."""
        tags = {"efimero.command": command, "mlflow.source.name": "efimero"}
        if parent is not None:
            tags["mlflow.parentRunId"] = parent
        return self.client.create_run(self.experiment_id, run_name=name or command, tags=tags).info.run_id


def unreachable(uri: str, exc: BaseException) -> TrackingError:
    return TrackingError(
        f"the MLflow tracking server at {uri} cannot be used ({_first_line(exc)}). Start it, fix --mlflow-uri, "
        "EFIMERO_TRACKING__URI, MLFLOW_TRACKING_URI or tracking.uri in tracking.yaml, or unset them to run "
        "without tracking.")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


_connections: dict[TrackingSettings, Connection] = {}
_connections_lock = threading.Lock()


def connect(settings: TrackingSettings) -> Connection:
    """The connection for ``settings``, checked once per process (a failed check is not kept).

    Raises:
        TrackingError: the server cannot be reached or refuses the experiment.
    """
    with _connections_lock:
        if settings not in _connections:
            _connections[settings] = Connection(settings)
        return _connections[settings]


def version_tags(version_dir: Path) -> dict[str, str]:
    """The tags that tie a registered version to efimero's: name, manifest and file checksums, data hash."""
    manifest = read_manifest(version_dir)
    metadata = Registry(version_dir.parent).info(version_dir.name).metadata
    data = [entry["sha256"] for entry in metadata.get("data_files", []) if entry.get("sha256")]
    tags = {VERSION_TAG: version_dir.name, MANIFEST_TAG: sha256_file(version_dir / MANIFEST)}
    if data or metadata.get("data_sha256"):
        tags[DATA_TAG] = ",".join(data) or str(metadata["data_sha256"])
    tags |= {_key(f"{FILE_TAG}{name}"): digest for name, digest in manifest["files"].items()}
    return tags


class MlflowRun(RunLog):
    """An MLflow run. A failure after it opened warns once (:class:`TrackingWarning`) and stops its logging.

    The command's own work goes on: a version saved while the server was away stays saved, and
    the deployment mirror registers it later (:func:`efimero.tracking.mirror_alias`).
    """

    def __init__(self, connection: Connection, run_id: str) -> None:
        self.connection, self.run_id, self.id = connection, run_id, run_id
        self.client = connection.client
        self.failure: str | None = None

    def _guard(self, what: str, action: Callable[[], Any]) -> None:
        if self.failure is not None:
            return
        try:
            action()
        except FAILURES as exc:
            self.failure = (f"MLflow run {self.run_id} at {self.connection.uri}: {what} failed "
                            f"({_first_line(exc)}); nothing more is logged to this run, the command's own results "
                            "stand")
            logger.warning("%s", self.failure)
            warnings.warn(TrackingWarning(self.failure), stacklevel=4)

    def log_params(self, params: Mapping[str, Any], *, prefix: str = "") -> None:
        entries = [Param(_key(k), str(v)[:_PARAM_CHARS]) for k, v in flatten(params, prefix).items() if v is not None]
        for start in range(0, len(entries), _BATCH):
            self._guard("logging parameters",
                        functools.partial(self.client.log_batch, self.id, params=entries[start:start + _BATCH]))

    def log_metrics(self, metrics: Mapping[str, Any], *, prefix: str = "") -> None:
        now = _millis()
        entries = [Metric(_key(k), v, now, 0) for k, v in numbers(metrics, prefix).items()]
        for start in range(0, len(entries), _BATCH):
            self._guard("logging metrics",
                        functools.partial(self.client.log_batch, self.id, metrics=entries[start:start + _BATCH]))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        entries = [RunTag(_key(k), str(v)) for k, v in tags.items()]
        self._guard("tagging", lambda: self.client.log_batch(self.id, tags=entries))

    def log_artifact(self, path: Path, *, artifact_path: str | None = None) -> None:
        if path.is_dir():
            self._guard(f"logging {path}", lambda: self.client.log_artifacts(self.id, str(path), artifact_path))
        else:
            self._guard(f"logging {path}", lambda: self.client.log_artifact(self.id, str(path), artifact_path))

    def log_dict(self, data: Mapping[str, Any], artifact_file: str) -> None:
        self._guard(f"logging {artifact_file}", lambda: self.client.log_dict(self.id, dict(data), artifact_file))

    def log_version(self, version_dir: Path) -> None:
        registry, name = Registry(version_dir.parent), version_dir.name
        info = registry.info(name)
        self.set_tags({VERSION_TAG: name})
        self.log_params(info.metadata)
        self.log_metrics(info.metrics)
        self.log_artifact(version_dir, artifact_path=f"{ARTIFACTS}/{name}")
        if self.connection.settings.log_models:
            self._guard("logging the models", lambda: self._log_boosters(registry, name))
        self._guard(f"registering {name}", lambda: self.connection.register(self.id, version_dir))

    def _log_boosters(self, registry: Registry, version: str) -> None:
        """Each booster of ``version`` as an ``mlflow.xgboost`` model named after it, in this run's experiment.

        The logged model is created here, in the right experiment and linked to this run: left to
        itself, ``log_model`` would put it in the process-wide (default) experiment.
        """
        mlflow.set_tracking_uri(self.connection.uri)  # Model.log reads the process-wide URI
        requirements = [f"xgboost=={xgb.__version__}"]  # given, so MLflow does not infer them (slow)
        for model_name, model in registry.load(version).models.items():
            name = _key(model_name)
            logged = self.client.create_logged_model(self.connection.experiment_id, name=name, source_run_id=self.id,
                                                     tags={VERSION_TAG: version}, model_type="xgboost")
            mlflow.xgboost.log_model(model.booster, name=name, model_id=logged.model_id, run_id=self.id,
                                     pip_requirements=requirements)

    def trial(self, name: str, *, params: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
        def log() -> None:
            child = MlflowRun(self.connection, self.connection.open_run("trial", name, parent=self.id))
            child.log_params(params)
            child.log_metrics(metrics)
            child.end("FINISHED")
        self._guard(f"logging trial {name}", log)

    def child(self, command: str, name: str | None = None) -> RunLog:
        opened: list[RunLog] = []
        self._guard(f"opening the nested run {command}", lambda: opened.append(
            MlflowRun(self.connection, self.connection.open_run(command, name, parent=self.id))))
        return opened[0] if opened else NO_RUN

    def end(self, status: str) -> None:
        self._guard("closing the run", lambda: self.client.set_terminated(self.id, status))


def _millis() -> int:
    return int(time.time() * 1000)


def open_run(settings: TrackingSettings, *, command: str, name: str | None = None) -> MlflowRun:
    """A new top-level run for ``command``.

    Raises:
        TrackingError: the server cannot be reached (before any work was done).
    """
    connection = connect(settings)
    try:
        return MlflowRun(connection, connection.open_run(command, name))
    except FAILURES as exc:
        raise unreachable(connection.uri, exc) from exc


def ensure_registered(connection: Connection, version_dir: Path) -> ModelVersion:
    """The registered version of ``version_dir``; logged and registered in a ``register`` run when missing.

    Raises:
        TrackingError: it is not registered and cannot be, or the server fails.
    """
    found = connection.find_version(version_dir.name)
    if found is not None:
        return found
    if not (version_dir / MANIFEST).is_file():
        raise TrackingError(f"{version_dir.name} is not registered in MLflow and {version_dir} is gone, so it "
                            "cannot be now.")
    run = MlflowRun(connection, connection.open_run("register", f"register {version_dir.name}"))
    run.log_version(version_dir)
    run.end("FINISHED" if run.failure is None else "FAILED")
    if run.failure is not None:
        raise TrackingError(run.failure)
    found = connection.find_version(version_dir.name)
    assert found is not None, "log_version registers the version it logs"
    return found


def download_version(connection: Connection, model_version: ModelVersion, destination: Path) -> Path:
    """Download a registered version's efimero directory into ``destination``; return the directory.

    The caller verifies it (``Registry.adopt`` checks every file against ``MANIFEST.json``, and
    the manifest's own sha256 is checked here against the version's tag).

    Raises:
        TrackingError: the version is not efimero's, or its manifest is not the one it was registered with.
    """
    version = model_version.tags.get(VERSION_TAG)
    if not version:
        raise TrackingError(f"{model_version.name} version {model_version.version} has no {VERSION_TAG} tag: "
                            "it was not registered by efimero, so there is nothing efimero can verify and serve.")
    uri = connection.client.get_model_version_download_uri(model_version.name, model_version.version)
    with tempfile.TemporaryDirectory(dir=destination) as scratch:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=scratch,
                                                         tracking_uri=connection.uri))
        expected = model_version.tags.get(MANIFEST_TAG)
        found = sha256_file(local / MANIFEST) if (local / MANIFEST).is_file() else None
        if found is None or found != expected:
            raise TrackingError(
                f"{model_version.name} version {model_version.version} ({version}): the downloaded MANIFEST.json "
                f"has sha256 {found or 'missing'}, the version was registered with {expected}. Refusing to serve it; "
                "register the version again from efimero's registry.")
        target = destination / version
        os.replace(local, target)
    return target
