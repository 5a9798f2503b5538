"""Serving straight from an MLflow registry alias: ``efimero serve --models models:/efimero-css@production``.

MLflow's own model server loads a model once and never follows an alias (mlflow#4039). Here a
sync thread keeps a local *cache registry* on the version the alias names: it downloads a
version once, checks the downloaded ``MANIFEST.json`` against the sha256 the version was
registered with, copies the directory into the cache (``Registry.adopt``: every file checked
against that manifest) and moves the cache's ``current``. The service follows the cache as it
follows any registry (:class:`~efimero.serve.holder.ModelHolder`): it verifies again on load and
hot-swaps without a restart. A version that fails a check never becomes current; the one served
stays, and the failure is logged and retried with a growing delay.

This module imports mlflow only when a sync starts, so ``efimero serve`` on a local registry never does.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from efimero.config import TrackingSettings
from efimero.errors import EfimeroError, TrackingError
from efimero.registry import Registry
from efimero.tracking._run import missing_mlflow

logger = logging.getLogger(__name__)

SCHEME = "models:/"
_URI = re.compile(r"^models:/(?P<name>[\w.-]+)@(?P<alias>[\w-]+)$")
KEEP_VERSIONS = 3
"""Versions the cache keeps (the current one always): enough to move an alias back without a download."""


@dataclass(frozen=True)
class AliasSource:
    """A registered model's alias, as written ``models:/<name>@<alias>``."""

    name: str
    alias: str

    @classmethod
    def parse(cls, text: str) -> AliasSource | None:
        """The alias ``text`` names; None when it is no ``models:/`` URI (a local registry path).

        Raises:
            TrackingError: ``text`` is a ``models:/`` URI of another form (a version number, no alias).
        """
        if not text.startswith(SCHEME):
            return None
        match = _URI.match(text)
        if match is None:
            raise TrackingError(f"--models must read models:/<registered model>@<alias>, e.g. "
                                f"models:/efimero-css@production. Got {text!r} instead.")
        return cls(match["name"], match["alias"])

    def __str__(self) -> str:
        return f"{SCHEME}{self.name}@{self.alias}"


class AliasSync:
    """Keeps the cache registry ``cache`` on the version that ``source``'s alias names (module docstring).

    Example:
        >>> source = AliasSource("efimero-css", "production")
        >>> sync = AliasSync(source, Path("models/mlflow"), settings)  # doctest: +SKIP
        >>> sync.start()  # first sync now; then every poll_interval_s in the background
    """

    def __init__(self, source: AliasSource, cache: Path, settings: TrackingSettings, *,
                 poll_interval_s: float = 1.0, max_backoff_s: float = 60.0) -> None:
        if settings.uri is None:
            raise TrackingError(f"serving {source} needs a tracking URI: pass --mlflow-uri or set "
                                "MLFLOW_TRACKING_URI.")
        self.source, self.settings = source, settings
        self.cache = Registry(cache)
        self.poll_interval_s, self.max_backoff_s = poll_interval_s, max(max_backoff_s, poll_interval_s)
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> str:
        """Make the cache's ``current`` the version the alias names now; return that version.

        Raises:
            TrackingError: the server, the alias or the download fails, or the download does not
                match the checksums it was registered with.
            ModelIntegrityError: a downloaded file does not match the manifest.
        """
        try:
            from efimero.tracking._mlflow import FAILURES, VERSION_TAG, connect, download_version, unreachable
        except ImportError as exc:
            raise missing_mlflow(exc) from exc
        connection = connect(self.settings)
        try:
            model_version = connection.client.get_model_version_by_alias(self.source.name, self.source.alias)
            version = model_version.tags.get(VERSION_TAG, "")
            if version not in self.cache.versions():
                with tempfile.TemporaryDirectory() as scratch:
                    self.cache.adopt(download_version(connection, model_version, Path(scratch)))
        except FAILURES as exc:
            raise unreachable(connection.uri, exc) from exc
        if self.cache.current() != version:
            previous = self.cache.set_current(version)
            logger.info("%s now names %s (version %s); serving it instead of %s", self.source, version,
                        model_version.version, previous or "nothing")
            self.cache.prune(KEEP_VERSIONS)
        return version

    def start(self) -> None:
        """Sync once now, then keep following the alias in a background thread.

        A first sync that fails is fatal only when the cache holds nothing to serve: with a
        version from an earlier run, that one is served while the sync retries.

        Raises:
            TrackingError: the first sync failed and the cache is empty (or ModelIntegrityError:
                what was downloaded does not match its manifest).
        """
        try:
            self.sync()
        except EfimeroError as exc:
            if self.cache.current() is None:
                raise
            self.last_error = str(exc)
            logger.warning("%s cannot be synced yet (%s); serving %s from %s meanwhile", self.source, exc,
                           self.cache.current(), self.cache.root)
        self._thread = threading.Thread(target=self._follow, name="efimero-alias-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _follow(self) -> None:
        """The supervised loop (STYLE §12): every failure is logged and retried later, never fatal."""
        delay = self.poll_interval_s
        while not self._stop.wait(delay):
            try:
                self.sync()
            except Exception as exc:  # the thread outlives every error: log, back off, go on
                message = str(exc)
                if message != self.last_error:
                    logger.error("following %s failed, retrying: %s", self.source, message,
                                 exc_info=not isinstance(exc, TrackingError))
                self.last_error = message
                delay = min(delay * 2, self.max_backoff_s)
                continue
            if self.last_error is not None:
                logger.info("following %s again", self.source)
            self.last_error, delay = None, self.poll_interval_s
