"""Server-side visitor history: the 4 history features kept in Redis per hashed visitor id.

By default the browser client keeps the visitor's history (visits, mean session length,
interactions, first visit) in ``localStorage`` and sends it with every prediction, so it is lost
with a cleared browser and differs per device. ``efimero serve --feature-store
redis://host:6379/0`` keeps it in Redis too (RESEARCH §6: a hash per visitor with a TTL is all the
feature store these features need) and, when the request carries a ``visitor_id``, serves the
server's history instead of the client's.

Keys (nothing in Redis holds a raw visitor id):

``efimero:visitor:<h>``
    A hash: ``visits``, ``avg_session_duration_s``, ``total_interactions``, ``first_visit``
    (ISO date), about 220 bytes in Redis. ``<h>`` is HMAC-SHA256 of the visitor id under a key
    derived from the store's user-id pepper (32 hex characters), so the keys cannot be tested
    against guessed ids without the pepper and never equal a stored user hash. Every counted visit
    refreshes its TTL (``ttl_days``, 180).
``efimero:pending:<prediction_id>``
    Written at predict time with a one-day TTL: the visitor's ``<h>``, the visit's local date and
    the client's history. The interaction log names only its prediction (the prediction record does
    not keep the visitor id, and the client sends none with the log), so this is how the log finds
    its visitor without any change to the API or the client. The log takes and deletes the key
    atomically (MULTI GET DEL), so a replayed log counts once. About 200 bytes per prediction with
    a visitor id, for at most a day.

Read path: ``/v1/predict`` and ``/v1/predict/batch`` read the hash; present, it replaces the
client's history (the server's wins; the features and the context logged with the prediction are
the ones served), absent, the client's history is used.

Update path: once ``/v1/interactions`` has committed a log, one Lua script (atomic) seeds the hash
from the client's history if it has none (a visitor's localStorage history is kept, not restarted
at zero), adds the visit (HINCRBY visits, total_interactions), updates the running mean of the
session length, sets ``first_visit`` once (HSETNX) and refreshes the TTL. These are the updates
the browser client makes to its own copy when it sends the log.

Outage: every call has a short deadline (``timeout_ms``, 50 ms, for connecting and for reading, no
retries). Any failure falls back to the client's history (predict) or skips the update
(interactions), is counted in ``efimero_feature_store_errors_total{op}``, logged once per outage,
and opens a circuit breaker: Redis is skipped for ``breaker_s`` seconds (5), then one request
probes it. ``/readyz`` names the outage ("degraded") and stays ready. Redis never causes a 5xx.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import Request
from prometheus_client import CollectorRegistry, Counter, Gauge

from efimero.context import VisitorHistory
from efimero.serve.schemas import PredictRequest

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

logger = logging.getLogger(__name__)

VISITOR_PREFIX = "efimero:visitor:"
PENDING_PREFIX = "efimero:pending:"
PENDING_TTL_S = 86_400
"""How long a prediction waits for its interaction log (the longest session the log accepts)."""

SCHEMES = ("redis", "rediss", "unix")
_MAX_COUNT = 10_000_000
_MAX_MEAN_S = 86_400.0
_KEY_CONTEXT = b"efimero feature store: visitor ids"

_T = TypeVar("_T")

# KEYS[1] the visitor's hash. ARGV: the client's visits, mean, interactions, first visit ('' if none) to seed
# an absent hash; this session's seconds and interactions; the visit's date; the TTL in seconds.
_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'visits', ARGV[1], 'avg_session_duration_s', ARGV[2], 'total_interactions', ARGV[3])
  if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'first_visit', ARGV[4]) end
end
local visits = redis.call('HINCRBY', KEYS[1], 'visits', 1)
redis.call('HINCRBY', KEYS[1], 'total_interactions', ARGV[6])
local mean = tonumber(redis.call('HGET', KEYS[1], 'avg_session_duration_s')) or 0
mean = mean + (tonumber(ARGV[5]) - mean) / visits
redis.call('HSET', KEYS[1], 'avg_session_duration_s', string.format('%.3f', mean))
redis.call('HSETNX', KEYS[1], 'first_visit', ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[8])
return visits
"""


@dataclass(frozen=True)
class FeatureStoreOptions:
    """A feature-store URL taken apart: the Redis URL, and efimero's options from its query string.

    Example:
        >>> FeatureStoreOptions.parse("redis://127.0.0.1:6379/0?ttl_days=30").ttl_s
        2592000
    """

    url: str
    ttl_s: int = 180 * 86_400
    timeout_s: float = 0.05
    breaker_s: float = 5.0

    @classmethod
    def parse(cls, url: str) -> FeatureStoreOptions:
        """Read ``ttl_days`` (180), ``timeout_ms`` (50) and ``breaker_s`` (5) off the URL; the rest is redis-py's.

        Raises:
            ValueError: not a redis://, rediss:// or unix:// URL, or an option out of its bounds.
        """
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise ValueError(f"feature_store must be a redis://, rediss:// or unix:// URL (redis://host:6379/0). "
                             f"Got {_redacted(url)!r} instead.")
        bounds = {"ttl_days": (1 / 24, 3650.0), "timeout_ms": (1.0, 10_000.0), "breaker_s": (0.0, 3600.0)}
        ours: dict[str, float] = {}
        rest: list[tuple[str, str]] = []
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name in ("socket_timeout", "socket_connect_timeout"):
                raise ValueError(f"feature_store sets its timeouts with timeout_ms (milliseconds). Got {name} "
                                 "instead: remove it from the URL.")
            if name not in bounds:
                rest.append((name, value))
                continue
            low, high = bounds[name]
            try:
                number = float(value)
            except ValueError:
                number = float("nan")
            if not low <= number <= high:
                raise ValueError(f"feature_store option {name} must be a number in [{low:g}, {high:g}]. "
                                 f"Got {value!r} instead.")
            ours[name] = number
        return cls(
            url=urlunsplit(parts._replace(query=urlencode(rest))),
            ttl_s=round(ours.get("ttl_days", 180) * 86_400),
            timeout_s=ours.get("timeout_ms", 50) / 1000,
            breaker_s=ours.get("breaker_s", 5.0),
        )

    @property
    def shown(self) -> str:
        """The URL without its password, for logs and ``/readyz``."""
        return _redacted(self.url)


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))


class FeatureStore:
    """The visitors' history in Redis, read on predict and updated from interaction logs; never raises.

    Built with the app (its metrics live on the app's registry); :meth:`open` connects in the
    lifespan, on the loop that serves requests. Every call runs on that event loop, so the
    breaker's state needs no lock.

    Example:
        >>> store = FeatureStore(FeatureStoreOptions.parse("redis://127.0.0.1:6379/0"), CollectorRegistry())
        >>> store.status()
        'not connected'
    """

    def __init__(self, options: FeatureStoreOptions, registry: CollectorRegistry) -> None:
        self.options = options
        self._client: Redis | None = None
        self._update: AsyncScript | None = None
        self._secret = b""
        self._retry_at = 0.0
        self._down_since: datetime | None = None
        self._last_error = ""
        self.errors = Counter(
            "efimero_feature_store_errors_total", "Feature-store calls that failed (the client's history was used "
            "or the visit was not counted)", ["op"], registry=registry,
        )
        self.lookups = Counter(
            "efimero_feature_store_lookups_total", "History lookups of predictions with a visitor id: hit (the "
            "server's history served), miss (none kept yet), unavailable (Redis failing or skipped)",
            ["outcome"], registry=registry,
        )
        self.up = Gauge("efimero_feature_store_up", "1 while the last feature-store call succeeded (in every worker)",
                        registry=registry, multiprocess_mode="livemin")

    async def open(self, pepper: bytes) -> None:
        """Connect (lazily: a Redis that is down at start only degrades the service) and check it once."""
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self._secret = hmac.new(pepper, _KEY_CONTEXT, hashlib.sha256).digest()
        timeout = self.options.timeout_s
        self._client = Redis.from_url(
            self.options.url, decode_responses=True, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._update = self._client.register_script(_UPDATE)
        await self._call("ping", lambda client: client.ping())

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def visitor_key(self, visitor_id: str) -> str:
        """The Redis key of a visitor: a keyed hash of the id under the pepper, never the id itself."""
        digest = hmac.new(self._secret, visitor_id.encode("utf-8"), hashlib.sha256).hexdigest()
        return VISITOR_PREFIX + digest[:32]

    def status(self) -> str:
        """What ``/readyz`` says: ok, or degraded with the reason (the service stays ready)."""
        if self._client is None:
            return "not connected"
        if self._down_since is None:
            return "ok"
        return (f"degraded since {self._down_since:%Y-%m-%dT%H:%M:%SZ}: {self.options.shown} fails "
                f"({self._last_error}); predictions use the client's history and visits are not counted")

    async def personalise(self, context: PredictRequest, prediction_id: str) -> PredictRequest:
        """The context with the server's history when it keeps one; notes the prediction for its interaction log.

        One round trip: the hash is read and the pending key written in one pipeline.
        """
        if context.visitor_id is None:
            return context
        key = self.visitor_key(context.visitor_id)
        pending = self._pending(key, context)

        async def work(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hgetall(key)
                pipe.set(PENDING_PREFIX + prediction_id, pending, ex=PENDING_TTL_S)
                return await pipe.execute()

        results = await self._call("read", work)
        return self._served(context, None if results is None else results[0])

    async def personalise_many(self, contexts: Sequence[PredictRequest]) -> list[PredictRequest]:
        """:meth:`personalise` for a batch, whose ids are issued later: reads only (see :meth:`remember_many`)."""
        keys = {i: self.visitor_key(c.visitor_id) for i, c in enumerate(contexts) if c.visitor_id is not None}
        if not keys:
            return list(contexts)

        async def work(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                for key in keys.values():
                    pipe.hgetall(key)
                return await pipe.execute()

        results = await self._call("read", work)
        found = dict(zip(keys, results, strict=True)) if results is not None else {}
        return [self._served(c, found.get(i)) if i in keys else c for i, c in enumerate(contexts)]

    async def remember_many(self, contexts: Sequence[PredictRequest], prediction_ids: Sequence[str]) -> None:
        """Note the batch's predictions that carry a visitor id, for their interaction logs."""
        notes = {PENDING_PREFIX + prediction_id: self._pending(self.visitor_key(c.visitor_id), c)
                 for c, prediction_id in zip(contexts, prediction_ids, strict=True) if c.visitor_id is not None}
        if not notes:
            return

        async def work(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=False) as pipe:
                for key, value in notes.items():
                    pipe.set(key, value, ex=PENDING_TTL_S)
                return await pipe.execute()

        await self._call("remember", work)

    async def record_visit(self, prediction_id: str, *, duration_ms: int, interactions: int) -> bool:
        """Count the visit of a prediction's interaction log in its visitor's history.

        Returns:
            True when counted; False when the prediction had no visitor id, was counted already
            (a replayed log), is older than a day, or Redis failed (counted in the metrics).
        """
        pending_key = PENDING_PREFIX + prediction_id

        async def take(client: Redis) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.get(pending_key)
                pipe.delete(pending_key)
                return await pipe.execute()

        taken = await self._call("update", take)
        note = _parsed_pending(taken[0]) if taken is not None and taken[0] is not None else None
        if note is None:
            return False
        key, day, seed = note
        script = self._update
        assert script is not None  # set with the client
        args = [*seed, round(duration_ms / 1000, 3), interactions, day, self.options.ttl_s]

        async def update(client: Redis) -> Any:
            return await script(keys=[VISITOR_PREFIX + key], args=args, client=client)

        return await self._call("update", update) is not None

    def _pending(self, key: str, context: PredictRequest) -> str:
        history = context.history
        first = history.first_visit.isoformat() if history.first_visit else ""
        return json.dumps({
            "k": key.removeprefix(VISITOR_PREFIX), "d": context.local_time.date().isoformat(),
            "h": [history.visits, history.avg_session_duration_s, history.total_interactions, first],
        }, separators=(",", ":"))

    def _served(self, context: PredictRequest, fields: Mapping[str, str] | None) -> PredictRequest:
        if fields is None:
            self.lookups.labels("unavailable").inc()
            return context
        history = history_from(fields) if fields else None
        self.lookups.labels("hit" if history is not None else "miss").inc()
        return context if history is None else context.model_copy(update={"history": history})

    async def _call(self, op: str, work: Callable[[Redis], Awaitable[_T]]) -> _T | None:
        """One round trip under the deadline; None when the breaker is open or the call failed (counted)."""
        client = self._client
        now = time.monotonic()
        if client is None or now < self._retry_at:
            return None
        if self._down_since is not None:
            self._retry_at = now + self.options.breaker_s  # half open: this call is the one probe
        try:
            async with asyncio.timeout(2 * self.options.timeout_s):  # connect and read, each under timeout_s
                result = await work(client)
        except Exception as exc:  # any failure of Redis degrades to the client's history
            self._failed(op, exc)
            await _drop_connections(client)
            return None
        if self._down_since is not None:
            logger.info("feature store %s answers again after %.1f s", self.options.shown,
                        (datetime.now(UTC) - self._down_since).total_seconds())
            self._down_since, self._retry_at = None, 0.0
        self.up.set(1)
        return result

    def _failed(self, op: str, exc: Exception) -> None:
        self.errors.labels(op).inc()
        self.up.set(0)
        self._retry_at = time.monotonic() + self.options.breaker_s
        self._last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self._down_since is None:
            self._down_since = datetime.now(UTC)
            logger.warning("feature store %s failed (%s): predictions use the client's history and visits are not "
                           "counted; retrying every %g s", self.options.shown, self._last_error,
                           self.options.breaker_s)


async def _drop_connections(client: Redis) -> None:
    """Close every pooled connection, so that none left from before an outage fails the first calls after it."""
    try:
        async with asyncio.timeout(1.0):
            await client.connection_pool.disconnect()
    except Exception:  # closing sockets to a failing server may fail too; nothing is left to do
        logger.debug("closing the feature store's connections failed", exc_info=True)


def history_from(fields: Mapping[str, str]) -> VisitorHistory | None:
    """A visitor's history from its Redis hash, within the bounds a client's must keep; None if unreadable."""
    try:
        first = fields.get("first_visit")
        return VisitorHistory(
            visits=min(int(fields.get("visits", "0")), _MAX_COUNT),
            avg_session_duration_s=min(float(fields.get("avg_session_duration_s", "0")), _MAX_MEAN_S),
            total_interactions=min(int(fields.get("total_interactions", "0")), _MAX_COUNT),
            first_visit=date.fromisoformat(first) if first else None,
        )
    except ValueError:  # pydantic's ValidationError is one: a negative count, NaN, a year outside 2000-2100
        logger.debug("unreadable visitor history in the feature store: %s", sorted(fields))
        return None


def _parsed_pending(value: str) -> tuple[str, str, list[Any]] | None:
    """(visitor hash, visit date, client history) of a pending key's value; None if it is not one of ours."""
    try:
        note = json.loads(value)
        key, day, seed = note["k"], note["d"], note["h"]
        date.fromisoformat(day)
    except (ValueError, KeyError, TypeError):
        return None
    if not (isinstance(key, str) and isinstance(seed, list) and len(seed) == 4):
        return None
    return key, day, seed


async def get_feature_store(request: Request) -> FeatureStore | None:
    """The app's feature store, or None when the client's history is the only one (the default)."""
    return request.app.state.feature_store
