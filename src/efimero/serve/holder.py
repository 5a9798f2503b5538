"""The live model: loaded once, swapped atomically when the registry's pointer moves.

A watcher thread follows the ``current`` pointer and re-verifies the served version's files.
It is supervised (STYLE §12): every round catches every exception, logs it, counts it in
``/metrics`` and backs off, so that no error, ours or a library's, can leave a server that
silently stops following ``current`` while ``/readyz`` still says ready. The server never
writes to the registry: it reports what it serves and why, and leaves the pointer to deploys
and rollbacks.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from efimero.bundle import ModelBundle
from efimero.errors import EfimeroError, VersionNotFoundError
from efimero.registry import Registry

if TYPE_CHECKING:
    from efimero.serve.metrics import ServiceMetrics

logger = logging.getLogger(__name__)

_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])(?:/[^\s/'\"(),;:]+)*/([^\s/'\"(),;:]+)")
"""An absolute path not part of a URL or a relative path; group 1 is its last part."""


@dataclass(frozen=True)
class _Retry:
    """A failed attempt: what failed (a version, or None for the pointer), how often, when to retry."""

    key: str | None
    attempts: int
    at: float


class ModelHolder:
    """Holds the served :class:`ModelBundle` and follows the registry's ``current`` pointer.

    A new version is loaded and verified off the request path, then published with one
    reference assignment, so a request sees either the old bundle or the new one, whole.
    A version that fails to load is not served: the old one stays, and the error is kept for
    ``/readyz`` and ``/v1/model`` and retried with a growing delay (a fixed version is picked
    up within ``max_backoff_s``; a pointer moved to another version, at the next poll).

    With nothing served yet (at start) and a ``current`` that cannot be loaded, the holder
    serves the intact version that was live before it (:meth:`Registry.previous`) and says so
    in :attr:`fallback`: a damaged file must not turn into a service that answers only 503.

    Every ``verify_interval_s`` the served version's files are checked against its manifest.
    A mismatch is reported (``last_error``, ``/readyz``, ``/metrics``) while the bundle in
    memory, verified when it was loaded, keeps serving.

    Messages kept here are shown over HTTP, so they name versions and files relative to the
    registry (``v_…/models/x.ubj``) and never the server's absolute paths; the log keeps them whole.
    """

    def __init__(
        self,
        registry: Registry,
        *,
        poll_interval_s: float = 1.0,
        verify_interval_s: float = 60.0,
        max_backoff_s: float = 30.0,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.registry = registry
        self.poll_interval_s = poll_interval_s
        self.verify_interval_s = verify_interval_s
        self.max_backoff_s = max(max_backoff_s, poll_interval_s)
        self.metrics = metrics
        root = registry.root
        self._root_forms = sorted({str(root.absolute()), str(root.resolve())}, key=len, reverse=True)
        self.bundle: ModelBundle | None = None
        self.loaded_at: datetime | None = None
        self.swaps = 0
        self.fallback: str | None = None
        self._load_error: str | None = None
        self._integrity_error: str | None = None
        self._watch_error: str | None = None
        self._retry: _Retry | None = None
        self._verified_at = self._checked_at = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if metrics is not None:
            metrics.model_check_age.set_function(lambda: time.monotonic() - self._checked_at)
            metrics.model_watcher_up.set_function(lambda: float(self.watching))
            metrics.model_fallback.set_function(lambda: float(self.fallback is not None))
            metrics.model_files_intact.set_function(lambda: float(self._integrity_error is None))

    @property
    def last_error(self) -> str | None:
        """Everything wrong now: the pointer's target, the served files on disk, the watcher."""
        problems = [p for p in (self._load_error, self._integrity_error, self._watch_error) if p]
        return "; ".join(problems) or None

    @property
    def watching(self) -> bool:
        """Whether the watcher thread runs (the served version then follows ``current``)."""
        return self._thread is not None and self._thread.is_alive()

    def refresh(self) -> bool:
        """Load the current version if it differs from the served one; True when swapped.

        A pointer that cannot be read or a version that cannot be loaded, whatever the
        exception, is kept in :attr:`last_error`, counted and retried later.
        """
        if self._backing_off(None):
            return False
        try:
            name = self.registry.current()
            if name is None:
                raise VersionNotFoundError(f"{self.registry.root}: has no current version to serve.")
        except Exception as exc:  # an unreadable pointer is retried like a broken version
            self._failed(None, exc)
            return False
        if self.bundle is not None and self.bundle.version == name:
            self._load_error, self._retry, self.fallback = None, None, None
            return False
        if self._backing_off(name):
            return False
        try:
            bundle = self.registry.load(name)
        except Exception as exc:
            self._failed(name, exc)
            if self.bundle is None:
                self._fall_back(name)
            return False
        self._publish(bundle)
        return True

    def verify_served(self) -> None:
        """Check the served version's files against its manifest; report, never unload."""
        bundle = self.bundle
        self._verified_at = time.monotonic()
        if bundle is None or bundle.version is None:
            return
        try:
            self.registry.verify(bundle.version)
        except Exception as exc:
            message = (
                f"{bundle.version} is still served from memory, but its files on disk fail "
                f"verification: {self.public(_describe(exc))}"
            )
            if self.metrics is not None:
                self.metrics.model_verify_failures.inc()
            if message != self._integrity_error:
                logger.error("%s", message, exc_info=not isinstance(exc, EfimeroError))
            self._integrity_error = message
            return
        if self._integrity_error is not None:
            logger.info("the files of %s match its manifest again", bundle.version)
        self._integrity_error = None

    def public(self, value: Any) -> Any:
        """``value`` as shown over HTTP: absolute paths become registry-relative or base names.

        Paths under the registry keep their version and file (``v_…/models/x.ubj``); any
        other absolute path (a training data file in the metadata, a symlink's target)
        keeps only its last part: the name identifies it, the server's layout is not the
        client's business. Mappings and lists are rewritten recursively.
        """
        if isinstance(value, str):
            for form in self._root_forms:
                value = value.replace(form + "/", "").replace(form, self.registry.root.absolute().name)
            return _ABSOLUTE_PATH.sub(lambda match: f"…/{match.group(1)}", value)
        if isinstance(value, dict):
            return {key: self.public(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.public(item) for item in value]
        return value

    def start(self) -> None:
        """Load what ``current`` names (or fall back) and start the watcher; never raises."""
        self._check()
        self._thread = threading.Thread(target=self._watch, name="efimero-model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        delay = self.poll_interval_s
        while not self._stop.wait(delay):
            delay = self.poll_interval_s if self._check() else min(delay * 2, self.max_backoff_s)

    def _check(self) -> bool:
        """One supervised round: follow the pointer, re-verify when due. False when it failed."""
        started = time.perf_counter()
        try:
            if self.refresh():
                logger.info("swap took %.0f ms", (time.perf_counter() - started) * 1000)
            if self.bundle is not None and time.monotonic() - self._verified_at >= self.verify_interval_s:
                self.verify_served()
        except Exception as exc:  # the watcher outlives every error: log, count, back off
            message = f"the model watcher failed and retries: {self.public(_describe(exc))}"
            if self.metrics is not None:
                self.metrics.model_load_failures.inc()
            if message != self._watch_error:
                logger.exception("model watcher round failed; backing off")
            self._watch_error = message
            return False
        self._watch_error = None
        self._checked_at = time.monotonic()
        return True

    def _backing_off(self, key: str | None) -> bool:
        retry = self._retry
        return retry is not None and retry.key == key and time.monotonic() < retry.at

    def _failed(self, key: str | None, exc: Exception) -> None:
        attempts = self._retry.attempts + 1 if self._retry is not None and self._retry.key == key else 1
        delay = min(self.poll_interval_s * 2 ** (attempts - 1), self.max_backoff_s)
        self._retry = _Retry(key, attempts, time.monotonic() + delay)
        if self.metrics is not None:
            self.metrics.model_load_failures.inc()
        message = self.public(_describe(exc))
        if message != self._load_error:
            what = key or "the current version"
            logger.error("cannot serve %s: %s", what, exc, exc_info=not isinstance(exc, EfimeroError))
        self._load_error = message

    def _fall_back(self, broken: str) -> None:
        """Serve the newest intact version among those live before ``broken``; the pointer stays."""
        seen = {broken}
        candidate = self.registry.previous(broken)
        while candidate is not None and candidate not in seen:
            seen.add(candidate)
            try:
                bundle = self.registry.load(candidate)
            except Exception as exc:
                logger.error("cannot fall back to %s either: %s", candidate, exc)
                candidate = self.registry.previous(candidate)
                continue
            note = f"current names {broken}, which cannot be loaded; {candidate} was live before it"
            logger.warning("%s; `current` is left as it is", note)
            self._publish(bundle, fallback=note)
            return

    def _publish(self, bundle: ModelBundle, *, fallback: str | None = None) -> None:
        """Swap in ``bundle``; its state first, so whoever sees the new bundle sees its state too."""
        previous = self.bundle.version if self.bundle else None
        self.loaded_at, self.fallback = datetime.now(UTC), fallback
        self._integrity_error, self._verified_at = None, time.monotonic()
        if fallback is None:
            self._load_error, self._retry = None, None
        self.swaps += previous is not None
        self.bundle = bundle
        logger.info("serving model version %s (was %s)", bundle.version, previous)


def _describe(exc: Exception) -> str:
    """Our errors speak for themselves; anything else is named, as it is a bug or an OS problem."""
    return str(exc) if isinstance(exc, EfimeroError) else f"{type(exc).__name__}: {exc}"
