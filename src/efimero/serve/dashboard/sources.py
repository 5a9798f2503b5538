"""What the dashboard reads besides the running service: configs, the served environment, the clock.

The configs load on first use, not when the service starts: a retraining or environments file
that cannot be read then breaks the dashboard (which says why), never the predictions.
"""

from __future__ import annotations

import functools
import hmac
import os
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from efimero.errors import ConfigError, EfimeroError
from efimero.serve.dashboard.schemas import ClockReading
from efimero.store import latest_event_time

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from efimero.bundle import ModelBundle
    from efimero.config import EnvironmentsConfig, RetrainingConfig
    from efimero.monitor.drift import ReferenceData

ADMIN_TOKEN_ENV = "EFIMERO_ADMIN_TOKEN"
"""The variable holding the bearer token of the admin endpoints; unset, they answer 401."""

MIN_ADMIN_TOKEN_LENGTH = 16
PLACEHOLDER_TOKENS = frozenset({"changeme", "change-me", "change_me", "admin", "password", "secret", "token", "test"})
"""Tokens copied from examples rather than chosen: refused at start whatever their length."""

T = TypeVar("T")


class NotAnEnvironmentError(EfimeroError):
    """The served registry is no environment's model_dir, so there is no target for admin actions."""


def admin_token_from_environ(environ: Mapping[str, str] | None = None) -> str | None:
    """The admin token of ``$EFIMERO_ADMIN_TOKEN``, or None when it is unset or empty.

    Raises:
        ConfigError: the token is a placeholder ("changeme", "admin", ...) or shorter than 16
            characters; an admin token anyone could guess is worse than none.
    """
    token = (os.environ if environ is None else environ).get(ADMIN_TOKEN_ENV, "")
    if not token:
        return None
    if token.strip().lower() in PLACEHOLDER_TOKENS or len(token) < MIN_ADMIN_TOKEN_LENGTH:
        raise ConfigError(
            f"{ADMIN_TOKEN_ENV} must be a secret of at least {MIN_ADMIN_TOKEN_LENGTH} characters, not a placeholder. "
            f"Got a {len(token)}-character {'placeholder' if token.strip().lower() in PLACEHOLDER_TOKENS else 'value'} "
            "instead. Generate one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`, or unset it "
            "to keep the admin endpoints closed."
        )
    return token


def token_matches(expected: str, given: str) -> bool:
    """Constant-time comparison, so response timing does not reveal how much of a guess was right."""
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


@dataclass
class DashboardSources:
    """Where the dashboard and its admin actions read and act, built by ``create_app``.

    Args:
        served: the registry the service serves (``ServeSettings.models_dir``).
        db_url: the service's store; a rollout started here checks it.
        admin_token: the admin endpoints' token (None: they answer 401).
        retraining_config: ``retraining.yaml`` (monitoring rules, time trigger, retraining
            registry); default: the one in the config directory, when present, else built-in defaults.
        environments_config: ``environments.yaml`` (which environment is served); same default.
        cache_ttl_s: how long a computed view is reused (a refresh of several dashboards reads once).
    """

    served: Path
    db_url: str
    admin_token: str | None = None
    retraining_config: Path | None = None
    environments_config: Path | None = None
    cache_ttl_s: float = 5.0
    cache: ViewCache = field(init=False)
    _references: dict[str, ReferenceData] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.cache = ViewCache(self.cache_ttl_s)

    def reference(self, bundle: ModelBundle) -> ReferenceData:
        """The training data of ``bundle``'s version, the drift reference.

        Read once per version (a version's files never change; they are checked against their
        sha256 when read). Only the newest version's is kept, and a failure is not kept, so
        restored files are read at the next request.
        """
        from efimero.monitor.drift import reference_of

        version = str(bundle.version)
        reference = self._references.get(version)
        if reference is None:
            reference = reference_of(bundle)
            if reference.frame is not None:
                self._references = {version: reference}
        return reference

    @functools.cached_property
    def retraining(self) -> RetrainingConfig:
        """``retraining.yaml``, read once (a restart picks up changes, as for every setting).

        Raises:
            ConfigError: the file cannot be read or holds an invalid value.
        """
        from efimero.config import load_retraining_config

        return load_retraining_config(self.retraining_config)

    @functools.cached_property
    def environments(self) -> EnvironmentsConfig:
        """``environments.yaml``, read once.

        Raises:
            ConfigError: the file cannot be read or holds an invalid value.
        """
        from efimero.config import load_environments_config

        return load_environments_config(self.environments_config)

    def environment(self) -> str:
        """The environment whose ``model_dir`` is the served registry: where admin actions act.

        Raises:
            NotAnEnvironmentError: no environment serves from this directory.
            ConfigError: the environments file cannot be read.
        """
        served = self.served.resolve()
        for name, environment in self.environments.environments.items():
            if Path(environment.model_dir).resolve() == served:
                return name
        known = ", ".join(sorted(self.environments.environments)) or "none"
        raise NotAnEnvironmentError(
            f"the served registry {self.served.name!r} must be the model_dir of an environment in environments.yaml "
            f"(known: {known}) for rollouts and rollbacks to act on it. Got a directory no environment names instead: "
            "serve a deploy target (efimero serve --models <its model_dir>) or add it to environments.yaml."
        )


class ViewCache:
    """Computed views kept for ``ttl_s`` seconds, computed once however many requests ask at the same time.

    Used from the thread pool: a request that finds a fresh entry returns it; otherwise it
    takes the key's lock (so a concurrent request for the same view waits for this one's
    result instead of reading the store again) and computes. Failures are not kept.
    """

    MAX_ENTRIES = 64
    """Views with other parameters (``?at=``, window sizes) evict the oldest beyond this."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The fresh value of ``key``, computing it with ``compute()`` when there is none."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            entry = self._entries.get(key)
            if entry is not None and time.monotonic() - entry[0] < self.ttl_s:
                return entry[1]
            try:
                value = compute()
            except BaseException:
                with self._guard:  # no lock outlives its key's entry: ?at= may take any value
                    if key not in self._entries:
                        self._locks.pop(key, None)
                raise
            with self._guard:
                self._entries[key] = (time.monotonic(), value)
                while len(self._entries) > self.MAX_ENTRIES:
                    oldest = min(self._entries, key=lambda k: self._entries[k][0])
                    del self._entries[oldest], self._locks[oldest]
            return value

    def clear(self) -> None:
        """Forget every view: an admin action has just changed what they show."""
        with self._guard:
            self._entries.clear()
            self._locks.clear()


def read_clock(engine: Engine, *, span: timedelta, at: datetime | None = None) -> ClockReading:
    """The end of a view spanning ``span``: ``at`` when given, else the wall clock, else the store's newest visit.

    The wall clock is used while the newest visit lies within ``span`` before it, so a live
    service shows its last minutes. Otherwise the wall clock's span would show nothing: the
    traffic is simulated or replayed (its visits carry their own times, months away), or the
    service has been quiet for longer than the span; the view then ends just after the newest
    visit, so it shows the last traffic there is, and says so (``source`` ``store``).
    """
    newest = latest_event_time(engine)
    if at is not None:
        return ClockReading(now=at if at.tzinfo else at.replace(tzinfo=UTC), source="given", newest_visit=newest)
    wall = datetime.now(UTC)
    if newest is None or wall - span <= newest <= wall:
        return ClockReading(now=wall, source="wall", newest_visit=newest)
    return ClockReading(now=newest + timedelta(microseconds=1), source="store", newest_visit=newest)
