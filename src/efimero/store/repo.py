"""The interaction store's writer: group commit for interactions, fire-and-forget predictions.

Requests enqueue records; one writer thread drains the queue in batches, one transaction
per batch, predictions (and failed predictions) before the interactions in it. An interaction's
request waits for the commit of its batch (group commit, as PostgreSQL's WAL flush serves many
commits at once), so an acknowledged log is a stored log, while many concurrent logs still share
one commit. Predictions and prediction errors are not waited for: a dropped or failed record is
counted per kind (:data:`KINDS`).

A batch that the database refuses for a reason of data (not of connectivity) is written row
by row, so one bad row fails alone; a batch that cannot reach the database fails as a whole
after a few quick retries, and its waiting requests answer 503.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from efimero.errors import StoreError
from efimero.store.engine import PREDICTION_KEY, read_meta
from efimero.store.keys import PredictionIds, user_hash
from efimero.store.models import ERROR_LENGTH, InteractionRecord, PredictionErrorRecord, PredictionRecord

logger = logging.getLogger(__name__)

Kind = Literal["prediction", "prediction_error", "interaction"]
KINDS: tuple[Kind, ...] = ("prediction", "prediction_error", "interaction")
"""Every kind of record the writer counts in :class:`WriterStats` (the ``kind`` label of /metrics)."""
_RETRY_DELAYS_S = (0.05, 0.2, 0.5)


class StoreUnavailableError(StoreError):
    """The store cannot take the record now (queue full or database unreachable): retry later."""


class RecordRefusedError(StoreError):
    """The database refused this one record (its data, not the connection)."""


@dataclass
class WriterStats:
    """What the writer did, per record kind; exported to /metrics."""

    written: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    batches: int = 0


@dataclass
class _Item:
    kind: Kind
    row: dict[str, Any]
    done: Future[None] | None = None


def _settle(item: _Item, error: StoreError | None = None) -> None:
    """Release the request waiting on ``item`` (it may have given up waiting already)."""
    if item.done is None:
        return
    try:
        if error is None:
            item.done.set_result(None)
        else:
            item.done.set_exception(error)
    except InvalidStateError:  # the request timed out and cancelled its wait
        pass


class InteractionStore:
    """Asynchronous writer and small reader over the store's tables.

    Args:
        engine: an engine from :func:`efimero.store.open_engine`.
        pepper: the user-id pepper (:func:`efimero.store.keys.load_pepper`).
        max_batch: most records per transaction.
        max_queue: most records waiting; beyond it predictions are dropped (counted) and
            interactions refused with :class:`StoreUnavailableError`.
        linger_s: how long a batch of fire-and-forget records (predictions and their errors)
            waits for more before it is committed. A one-row transaction costs the serving process
            several times the CPU per row of a 64-row one (``bench/bench_store_writer.py``), CPU
            the requests share; nobody waits on these rows. A batch commits at once when it holds an
            interaction, whose 202 waits on the commit, and on :meth:`close`.

    Example:
        >>> store = InteractionStore(open_engine("sqlite:///data/efimero.db"), pepper=b"...")  # doctest: +SKIP
        >>> store.start(); done = store.record_interaction({...}); done.result(5); store.close()  # doctest: +SKIP
    """

    def __init__(
        self,
        engine: Engine,
        *,
        pepper: bytes,
        max_batch: int = 500,
        max_queue: int = 100_000,
        linger_s: float = 0.02,
    ) -> None:
        self.engine = engine
        self.stats = WriterStats()
        key = read_meta(engine, PREDICTION_KEY)
        if key is None:
            raise StoreError("the store has no prediction-id key; open it with open_engine(create=True) first.")
        self.ids = PredictionIds(bytes.fromhex(key))
        self._pepper = pepper
        self._queue: queue.Queue[_Item] = queue.Queue(max_queue)
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._insert_interactions = idempotent_insert(engine, InteractionRecord, ["prediction_id", "session_id"])
        self._stop = threading.Event()
        self._urgent = threading.Event()  # set by an interaction: someone waits on its commit
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="efimero-store-writer", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Write everything queued, then stop the writer."""
        self._urgent.set()
        self.flush(timeout_s)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued record is written; return False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.05))
        return True

    @property
    def pending(self) -> int:
        return self._queue.unfinished_tasks

    @property
    def writer_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- writing -----------------------------------------------------------------------
    def record_prediction(self, record: dict[str, Any]) -> None:
        """Queue a prediction row; never blocks (a full queue drops it and counts the drop).

        ``arm`` defaults to ``'live'``; ``latency_ms`` (server-side) to None.
        """
        self._fire_and_forget(_Item("prediction", record), f"prediction {record['prediction_id']}")

    def record_prediction_error(self, record: dict[str, Any]) -> None:
        """Queue a failed prediction (``created_at``, ``model_version``, ``arm``, ``error``); never blocks.

        The monitor's error rate of a version is errors / (predictions + errors) in a window of
        event time: ``event_time`` (the visit's time, as for predictions) defaults to
        ``created_at`` when the failure came before the context was read. ``error`` is cut to
        200 characters. Written fire-and-forget, like predictions, and counted the same way.
        """
        row = {**record, "error": str(record["error"])[:ERROR_LENGTH]}
        row.setdefault("event_time", row["created_at"])
        self._fire_and_forget(_Item("prediction_error", row), f"an error of version {record['model_version']}")

    def _fire_and_forget(self, item: _Item, what: str) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.stats.dropped[item.kind] += 1
            logger.error("store queue full: dropped the log of %s", what)

    def record_interaction(self, record: dict[str, Any]) -> Future[None]:
        """Queue an interaction row; the returned future completes once its batch is committed.

        A replay of an already stored (prediction_id, session_id) completes as stored: it is
        the same log, and the table keeps it once.

        Raises:
            StoreUnavailableError: the queue is full (the database has been slow for a while).
        """
        item = _Item("interaction", record, Future())
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.stats.dropped["interaction"] += 1
            raise StoreUnavailableError("the interaction store is falling behind; retry later.") from None
        self._urgent.set()
        assert item.done is not None
        return item.done

    def hash_user(self, user_id: str) -> str:
        """The user id's HMAC under the deployment's pepper (see :mod:`efimero.store.keys`)."""
        return user_hash(self._pepper, user_id)

    # -- reading -----------------------------------------------------------------------
    def has_prediction(self, prediction_id: str) -> bool:
        """Whether a prediction row exists (for unsigned ids issued before schema 2)."""
        try:
            with Session(self.engine) as session:
                return session.get(PredictionRecord, prediction_id) is not None
        except SQLAlchemyError as exc:
            raise StoreUnavailableError(f"cannot look up prediction {prediction_id}: {exc}") from exc

    def counts(self) -> dict[str, int]:
        with Session(self.engine) as session:
            return {
                "predictions": session.scalar(select(func.count()).select_from(PredictionRecord)) or 0,
                "interactions": session.scalar(select(func.count()).select_from(InteractionRecord)) or 0,
            }

    def ping(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            return True
        except SQLAlchemyError:
            return False

    # -- the writer thread ---------------------------------------------------------------
    def _run(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            try:
                first = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            batch = self._gather(first)
            try:
                self._write(batch)
            except Exception as exc:  # the writer must outlive any bug in one batch
                logger.exception("store writer failed on a batch of %d records", len(batch))
                for item in batch:
                    self.stats.failed[item.kind] += 1
                    _settle(item, StoreUnavailableError(f"the store could not write the log: {exc}"))
            for _ in batch:
                self._queue.task_done()
            with self._idle:
                self._idle.notify_all()

    def _gather(self, first: _Item) -> list[_Item]:
        """Take ``first`` and what queued meanwhile. A fire-and-forget ``first`` (a prediction) first
        lets ``linger_s`` pass, so that under load one transaction carries many records; an
        interaction, whose 202 waits on the commit, ends the wait as it arrives.

        The writer sleeps on an event only interactions set, not on the queue: queueing a
        prediction then wakes no thread, which on a busy server saves a context switch per request.
        """
        if first.done is None and not self._stop.is_set():
            self._urgent.wait(self._linger_s)
        self._urgent.clear()
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, batch: list[_Item]) -> None:
        error: SQLAlchemyError | None = None
        for delay in (0.0, *_RETRY_DELAYS_S):
            time.sleep(delay)
            try:
                self._insert(batch)
            except OperationalError as exc:  # connectivity, locks, timeouts: the same batch may succeed later
                error = exc
                logger.warning("store write of %d rows failed: %s", len(batch), exc.orig)
                continue
            except SQLAlchemyError as exc:  # the data: find the row(s) the database refuses
                logger.warning("store refused a batch of %d rows (%s); writing them one by one", len(batch), exc)
                self._write_one_by_one(batch)
                return
            self.stats.batches += 1
            for item in batch:
                self.stats.written[item.kind] += 1
                _settle(item)
            return
        for item in batch:
            self.stats.failed[item.kind] += 1
            _settle(item, StoreUnavailableError(f"the store cannot be written now ({_reason(error)}); retry later."))

    def _write_one_by_one(self, batch: list[_Item]) -> None:
        for item in batch:
            try:
                self._insert([item])
            except SQLAlchemyError as exc:
                self.stats.failed[item.kind] += 1
                logger.error("store could not write a %s row: %s", item.kind, _reason(exc))
                refusal = RecordRefusedError if not isinstance(exc, OperationalError) else StoreUnavailableError
                _settle(item, refusal(f"the store refused this log: {_reason(exc)}"))
            else:
                self.stats.written[item.kind] += 1
                _settle(item)

    def _insert(self, batch: list[_Item]) -> None:
        statements = {"prediction": insert(PredictionRecord), "prediction_error": insert(PredictionErrorRecord),
                      "interaction": self._insert_interactions}
        with Session(self.engine) as session, session.begin():
            for kind in KINDS:  # predictions first: readers join interactions to them
                rows = [item.row for item in batch if item.kind == kind]
                if rows:
                    session.execute(statements[kind], rows)


def idempotent_insert(engine: Engine, model: type[Any], keys: list[str]) -> Any:
    """INSERT … ON CONFLICT (``keys``) DO NOTHING into ``model``'s table, in the engine's dialect."""
    dialect = {"sqlite": sqlite, "postgresql": postgresql}.get(engine.dialect.name)
    if dialect is None:
        raise StoreError(f"the store supports SQLite and PostgreSQL. Got {engine.dialect.name} instead.")
    return dialect.insert(model).on_conflict_do_nothing(index_elements=keys)


def _reason(exc: BaseException | None) -> str:
    """The database's own words, without SQLAlchemy's statement dump (it may hold visitor data)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return str(exc.orig).splitlines()[0]
    return str(exc).splitlines()[0] if exc else "unknown error"
