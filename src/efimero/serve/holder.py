"""The live model: loaded once, swapped atomically when the registry's pointer moves."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone

from efimero.errors import EfimeroError
from efimero.registry import Registry
from efimero.training import ModelBundle

logger = logging.getLogger(__name__)


class ModelHolder:
    """Holds the served :class:`ModelBundle` and follows the registry's ``current`` pointer.

    A watcher thread polls the pointer; a new version is loaded and verified off the request
    path, then published with one reference assignment, so a request sees either the old
    bundle or the new one, whole. A version that fails to load is not served; the old one
    stays and the error is kept for ``/readyz`` and ``/v1/model``.
    """

    def __init__(self, registry: Registry, *, poll_interval_s: float = 1.0) -> None:
        self.registry = registry
        self.poll_interval_s = poll_interval_s
        self.bundle: ModelBundle | None = None
        self.loaded_at: datetime | None = None
        self.last_error: str | None = None
        self.swaps = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Load the current version if it differs from the served one; True when swapped."""
        try:
            name = self.registry.current()
            if name is None:
                raise EfimeroError(f"{self.registry.root}: has no current version to serve.")
            if self.bundle is not None and self.bundle.version == name:
                return False
            bundle = self.registry.load(name)
        except EfimeroError as exc:
            if self.last_error != str(exc):
                logger.error("cannot serve the current version: %s", exc)
            self.last_error = str(exc)
            return False
        previous = self.bundle.version if self.bundle else None
        self.bundle, self.loaded_at, self.last_error = bundle, datetime.now(timezone.utc), None
        self.swaps += previous is not None
        logger.info("serving model version %s (was %s)", bundle.version, previous)
        return True

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._watch, name="efimero-model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            started = time.perf_counter()
            if self.refresh():
                logger.info("swap took %.0f ms", (time.perf_counter() - started) * 1000)
