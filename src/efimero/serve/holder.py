"""The served models: loaded once, swapped atomically when the registry's pointer or split moves.

A watcher thread follows the ``current`` pointer, the traffic split (``traffic.json``: the
candidate versions served beside ``current``, each to a share of visitors) and the exploration
policy (``exploration.json``), and re-verifies the served versions' files.
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
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from efimero.bundle import ModelBundle
from efimero.errors import EfimeroError, VersionNotFoundError
from efimero.registry import LIVE_ARM, ExplorationPolicy, Registry, TrafficSplit

if TYPE_CHECKING:
    from efimero.serve.metrics import ServiceMetrics

logger = logging.getLogger(__name__)

_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])(?:/[^\s/'\"(),;:]+)*/([^\s/'\"(),;:]+)")
"""An absolute path not part of a URL or a relative path; group 1 is its last part."""


@dataclass(frozen=True, eq=False)
class Routing:
    """What serves requests now: the live bundle, the loaded candidates of the split by arm, and
    how labels are explored (None: greedily).

    Immutable and published with one reference assignment, so a request that read it routes
    and predicts with one consistent set of bundles whatever the watcher does meanwhile.
    """

    live: ModelBundle
    split: TrafficSplit | None = None
    candidates: Mapping[str, ModelBundle] = field(default_factory=dict)
    exploration: ExplorationPolicy | None = None

    def pick(self, visitor_key: str) -> tuple[str, ModelBundle]:
        """The arm and bundle for this visitor; a candidate that is not loaded serves the live bundle."""
        if self.split is None:
            return LIVE_ARM, self.live
        arm = self.split.assign(visitor_key)
        bundle = self.candidates.get(arm)
        return (arm, bundle) if bundle is not None else (LIVE_ARM, self.live)

    def served(self) -> list[ModelBundle]:
        """Every distinct bundle this routing can answer with."""
        bundles = {id(self.live): self.live}
        bundles.update((id(bundle), bundle) for bundle in self.candidates.values())
        return list(bundles.values())


@dataclass(frozen=True)
class _Retry:
    """A failed attempt (keyed by version, or None for the pointer): how often, when to retry."""

    attempts: int
    at: float


class ModelHolder:
    """Holds the served :class:`Routing` and follows the registry's ``current`` pointer and split.

    A new version is loaded and verified off the request path, then published with one
    reference assignment, so a request sees either the old bundle or the new one, whole.
    A version that fails to load is not served: the old one stays, and the error is kept for
    ``/readyz`` and ``/v1/model`` and retried with a growing delay (a fixed version is picked
    up within ``max_backoff_s``; a pointer moved to another version, at the next poll).

    With nothing served yet (at start) and a ``current`` that cannot be loaded, the holder
    serves the intact version that was live before it (:meth:`Registry.previous`) and says so
    in :attr:`fallback`: a damaged file must not turn into a service that answers only 503.

    A candidate of the split that cannot be loaded is not served either: its visitors get the
    live version (and are logged under the live arm) while the error is reported and retried.
    A split file that cannot be read keeps the split in memory, reported the same way.

    Every ``verify_interval_s`` the served versions' files are checked against their manifests.
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
        self.routing: Routing | None = None
        self.loaded_at: datetime | None = None
        self.swaps = 0
        self.fallback: str | None = None
        self._load_error: str | None = None
        self._arm_errors: dict[str, str] = {}
        self._traffic_error: str | None = None
        self._exploration_error: str | None = None
        self._integrity_error: str | None = None
        self._watch_error: str | None = None
        self._retries: dict[str | None, _Retry] = {}
        self._verified_at = self._checked_at = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if metrics is not None:
            metrics.model_check_age.set_function(lambda: time.monotonic() - self._checked_at)
            metrics.model_watcher_up.set_function(lambda: float(self.watching))
            metrics.model_fallback.set_function(lambda: float(self.fallback is not None))
            metrics.model_files_intact.set_function(lambda: float(self._integrity_error is None))

    @property
    def bundle(self) -> ModelBundle | None:
        """The live version's bundle (the one ``current`` names, or its fallback)."""
        routing = self.routing
        return routing.live if routing is not None else None

    @property
    def last_error(self) -> str | None:
        """Everything wrong now: the pointer's target, the split, the served files on disk, the watcher."""
        problems = [self._load_error, self._traffic_error, self._exploration_error, *self._arm_errors.values(),
                    self._integrity_error, self._watch_error]
        return "; ".join(problem for problem in problems if problem) or None

    def arm_error(self, version: str) -> str | None:
        """Why a candidate version of the split is not served, or None when it is."""
        return self._arm_errors.get(version)

    @property
    def watching(self) -> bool:
        """Whether the watcher thread runs (the served version then follows ``current``)."""
        return self._thread is not None and self._thread.is_alive()

    def refresh(self) -> bool:
        """Follow ``current``, the split and the exploration policy; True when what is served changed.

        A pointer or split that cannot be read, or a version that cannot be loaded, whatever
        the exception, is kept in :attr:`last_error`, counted and retried later.
        """
        swapped = self._refresh_live()
        swapped = self._refresh_split() or swapped
        return self._refresh_exploration() or swapped

    def _refresh_live(self) -> bool:
        if self._backing_off(None):
            return False
        try:
            name = self.registry.current()
            if name is None:
                raise VersionNotFoundError(f"{self.registry.root}: has no current version to serve.")
        except Exception as exc:  # an unreadable pointer is retried like a broken version
            self._load_error = self._failed(None, exc, self._load_error)
            return False
        if self.bundle is not None and self.bundle.version == name:
            self._load_error, self.fallback = None, None
            self._retries.pop(None, None)
            return False
        if self._backing_off(name):
            return False
        try:
            bundle = self.registry.load(name)
        except Exception as exc:
            self._load_error = self._failed(name, exc, self._load_error)
            if self.bundle is None:
                self._fall_back(name)
            return False
        self._retries.pop(name, None)
        self._publish(bundle)
        return True

    def _refresh_split(self) -> bool:
        """Load the split's candidates and publish them; a broken split or candidate is reported."""
        routing = self.routing
        if routing is None:
            return False
        try:
            split = self.registry.traffic()
        except Exception as exc:  # keep routing as it is: a torn or hand-edited file must not reroute visitors
            self._traffic_error = self._unusable("traffic.json", "the split", exc, self._traffic_error)
            return False
        self._traffic_error = None
        loaded = {bundle.version: bundle for bundle in routing.served()}
        candidates: dict[str, ModelBundle] = {}
        for arm in split.arms if split is not None else ():
            bundle = loaded.get(arm.version) or self._load_candidate(arm.name, arm.version)
            if bundle is not None:
                candidates[arm.name] = bundle
        wanted = {arm.version for arm in split.arms} if split is not None else set()
        self._arm_errors = {version: error for version, error in self._arm_errors.items() if version in wanted}
        if split == routing.split and _same_bundles(candidates, routing.candidates):
            return False
        self.routing = replace(routing, split=split, candidates=candidates)
        shares = ", ".join(f"{arm.name}={arm.version}@{arm.share:g}" for arm in split.arms) if split else "none"
        logger.info("traffic split now: %s (the rest to %s)", shares, routing.live.version)
        return True

    def _refresh_exploration(self) -> bool:
        """Publish the registry's exploration policy; an unreadable one keeps the policy in memory."""
        routing = self.routing
        if routing is None:
            return False
        try:
            policy = self.registry.exploration()
        except Exception as exc:
            self._exploration_error = self._unusable("exploration.json", "the policy", exc, self._exploration_error)
            return False
        self._exploration_error = None
        if policy == routing.exploration:
            return False
        self.routing = replace(routing, exploration=policy)
        logger.info("exploration now: %s", "greedy" if policy is None else f"{policy.mode} ({policy.policy_id})")
        return True

    def _unusable(self, file: str, kept: str, exc: Exception, reported: str | None) -> str:
        """The message for a state file that cannot be used, logged once while it stays the same."""
        message = f"{file} cannot be used, {kept} in memory stays: {self.public(_describe(exc))}"
        if message != reported:
            logger.error("%s", message, exc_info=not isinstance(exc, EfimeroError))
        return message

    def _load_candidate(self, arm: str, version: str) -> ModelBundle | None:
        if self._backing_off(version):
            return None
        try:
            bundle = self.registry.load(version)
        except Exception as exc:
            failure = self._failed(version, exc, None)
            message = f"arm {arm!r} ({version}) is not served, its visitors get the live version: {failure}"
            self._arm_errors[version] = message
            return None
        self._retries.pop(version, None)
        self._arm_errors.pop(version, None)
        return bundle

    def verify_served(self) -> None:
        """Check the served versions' files against their manifests; report, never unload."""
        routing = self.routing
        self._verified_at = time.monotonic()
        if routing is None:
            return
        problems = []
        for bundle in routing.served():
            if bundle.version is None:
                continue
            try:
                self.registry.verify(bundle.version)
            except Exception as exc:
                problems.append(
                    f"{bundle.version} is still served from memory, but its files on disk fail "
                    f"verification: {self.public(_describe(exc))}"
                )
                if self.metrics is not None:
                    self.metrics.model_verify_failures.inc()
                logger.error("%s", problems[-1], exc_info=not isinstance(exc, EfimeroError))
        message = "; ".join(problems) or None
        if message is None and self._integrity_error is not None:
            logger.info("the files of every served version match their manifests again")
        self._integrity_error = message

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
        retry = self._retries.get(key)
        return retry is not None and time.monotonic() < retry.at

    def _failed(self, key: str | None, exc: Exception, reported: str | None) -> str:
        """Count a failed load of ``key``, schedule its retry; the message, logged when not ``reported`` yet."""
        retry = self._retries.get(key)
        attempts = retry.attempts + 1 if retry is not None else 1
        delay = min(self.poll_interval_s * 2 ** (attempts - 1), self.max_backoff_s)
        self._retries[key] = _Retry(attempts, time.monotonic() + delay)
        if self.metrics is not None:
            self.metrics.model_load_failures.inc()
        message = self.public(_describe(exc))
        if message != reported:
            what = key or "the current version"
            logger.error("cannot serve %s: %s", what, exc, exc_info=not isinstance(exc, EfimeroError))
        return message

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
        """Swap in ``bundle`` as the live one; its state first, so whoever sees it sees its state too.

        The split's candidates stay; one that names the new live version is then served by it.
        """
        routing = self.routing
        previous = routing.live.version if routing is not None else None
        self.loaded_at, self.fallback = datetime.now(UTC), fallback
        self._integrity_error, self._verified_at = None, time.monotonic()
        if fallback is None:
            self._load_error = None
            self._retries.pop(None, None)
        self.swaps += previous is not None
        if previous is not None and self.metrics is not None:
            self.metrics.model_swaps.inc()
        if routing is None:
            self.routing = Routing(bundle)
        else:
            candidates = {arm: (bundle if candidate.version == bundle.version else candidate)
                          for arm, candidate in routing.candidates.items()}
            self.routing = replace(routing, live=bundle, candidates=candidates)
        logger.info("serving model version %s (was %s)", bundle.version, previous)


def _same_bundles(one: Mapping[str, ModelBundle], other: Mapping[str, ModelBundle]) -> bool:
    """Whether two arm mappings hold the very same bundles (bundles compare by identity: they are immutable)."""
    return {arm: id(bundle) for arm, bundle in one.items()} == {arm: id(bundle) for arm, bundle in other.items()}


def _describe(exc: Exception) -> str:
    """Our errors speak for themselves; anything else is named, as it is a bug or an OS problem."""
    return str(exc) if isinstance(exc, EfimeroError) else f"{type(exc).__name__}: {exc}"
