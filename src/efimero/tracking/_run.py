"""Runs as efimero opens them, whether MLflow records them or not.

A command opens one run (:func:`run`); the code below it logs into :func:`current` without
knowing whether anything records it. With no tracking URI (no ``--mlflow-uri``, no
``EFIMERO_TRACKING__URI`` or ``MLFLOW_TRACKING_URI``, no ``tracking.uri`` in ``tracking.yaml``)
the run is a :class:`RunLog` that records nothing, and mlflow is never imported. Like
``logging``, this module is a sink that any stage may write to, so it imports none of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from numbers import Real
from pathlib import Path
from typing import Any

from efimero.config import TrackingSettings, load_tracking_config
from efimero.errors import TrackingError

_flag: ContextVar[str | None] = ContextVar("efimero_tracking_flag", default=None)
"""The ``--mlflow-uri`` of the command being run (:func:`tracking_to`); None when not given."""

_active: ContextVar[RunLog | None] = ContextVar("efimero_tracking_run", default=None)
"""The innermost open run."""


class RunLog:
    """What a stage may log into a run. This base records nothing: it is the run when tracking is off.

    :class:`~efimero.tracking._mlflow.MlflowRun` overrides every method to log to MLflow.
    """

    run_id: str | None = None

    def log_params(self, params: Mapping[str, Any], *, prefix: str = "") -> None:
        """Log ``params``, nested mappings flattened to dotted keys (``hyperparameters.theme.max_depth``)."""

    def log_metrics(self, metrics: Mapping[str, Any], *, prefix: str = "") -> None:
        """Log every number of ``metrics``, nested mappings flattened; text, flags and None are left out."""

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Tag the run (values as text)."""

    def log_artifact(self, path: Path, *, artifact_path: str | None = None) -> None:
        """Log a file, or a directory with everything under it, under ``artifact_path``."""

    def log_dict(self, data: Mapping[str, Any], artifact_file: str) -> None:
        """Log ``data`` as a JSON artefact (a report that exists in memory only, such as a drift check's)."""

    def log_version(self, version_dir: Path) -> None:
        """Log a saved registry version (metadata, metrics, the directory, each booster) and register it."""

    def trial(self, name: str, *, params: Mapping[str, Any], metrics: Mapping[str, Any]) -> None:
        """Log one tuning candidate as a finished run nested in this one."""

    def child(self, command: str, name: str | None = None) -> RunLog:
        """A run nested in this one (itself when nothing is recorded)."""
        return self

    def end(self, status: str) -> None:
        """Close the run as ``FINISHED`` or ``FAILED``."""


NO_RUN = RunLog()


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}``: MLflow keys are flat."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = value
    return flat


def numbers(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The flattened entries of ``mapping`` that are numbers (a bool is a flag, not a metric)."""
    return {key: float(value) for key, value in flatten(mapping, prefix).items()
            if isinstance(value, Real) and not isinstance(value, bool)}


@contextmanager
def tracking_to(uri: str | None) -> Iterator[None]:
    """Track what runs inside to ``uri`` (the ``--mlflow-uri`` flag); None keeps the configured URI.

    Example:
        >>> with tracking_to("http://127.0.0.1:5000"):  # doctest: +SKIP
        ...     efimero.train("data/train.csv", output="models/")
    """
    token = _flag.set(uri) if uri else None
    try:
        yield
    finally:
        if token is not None:
            _flag.reset(token)


def tracking_settings() -> TrackingSettings:
    """The tracking settings in force: the flag > ``EFIMERO_TRACKING__*`` > ``MLFLOW_TRACKING_URI`` > ``tracking.yaml``.

    Raises:
        ConfigError: ``tracking.yaml`` or a variable is invalid.
    """
    flag = _flag.get()
    return load_tracking_config(overrides={"tracking": {"uri": flag}} if flag else None).tracking


def missing_mlflow(exc: ImportError) -> TrackingError:
    """The error of a configured tracking URI without MLflow installed."""
    return TrackingError(f"a tracking URI is configured, but MLflow cannot be imported ({exc}). Install it with "
                         "`pip install 'efimero[mlflow]'`, or unset the URI to run without tracking.")


def current() -> RunLog:
    """The innermost open run; one that records nothing when no run is open or tracking is off."""
    return _active.get() or NO_RUN


@contextmanager
def run(command: str, *, name: str | None = None, params: Mapping[str, Any] | None = None) -> Iterator[RunLog]:
    """Open a run for ``command`` (nested in the open run, if any) and make it :func:`current`.

    The run ends ``FINISHED``, or ``FAILED`` when the block raises. Without a tracking URI it
    records nothing and imports nothing.

    Raises:
        TrackingError: a tracking URI is configured but its server cannot be reached (or MLflow
            is not installed); raised before the block runs, so no work goes untracked by surprise.

    Example:
        >>> with run("train") as log:  # doctest: +SKIP
        ...     efimero.train("data/train.csv")  # logs its version into ``log``
    """
    parent = _active.get()
    if parent is not None:
        log = parent.child(command, name)
    else:
        settings = tracking_settings()
        if settings.uri is None:
            log = NO_RUN
        else:
            try:
                from efimero.tracking._mlflow import open_run
            except ImportError as exc:
                raise missing_mlflow(exc) from exc
            log = open_run(settings, command=command, name=name)
    log.log_params(params or {})
    token = _active.set(log)
    status = "FAILED"
    try:
        yield log
        status = "FINISHED"
    finally:
        _active.reset(token)
        log.end(status)
