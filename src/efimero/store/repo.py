"""The interaction store: predictions and interactions written off the request path.

Requests enqueue records and return; one writer thread drains the queue in batches, one
transaction per batch, predictions before the interactions that refer to them. A failed
batch is retried, then written row by row so one bad row cannot take others with it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from efimero.errors import StoreError
from efimero.store.engine import user_id_salt
from efimero.store.models import InteractionRecord, PredictionRecord

logger = logging.getLogger(__name__)

_RETRIES = 3


@dataclass
class WriterStats:
    written_predictions: int = 0
    written_interactions: int = 0
    dropped: int = 0
    failed: int = 0


class InteractionStore:
    """Asynchronous writer and small reader over the store's tables.

    Example:
        >>> store = InteractionStore(open_engine("sqlite:///data/efimero.db"))  # doctest: +SKIP
        >>> store.start(); store.record_prediction({...}); store.close()        # doctest: +SKIP
    """

    def __init__(
        self,
        engine: Engine,
        *,
        flush_interval_s: float = 0.05,
        max_batch: int = 500,
        max_queue: int = 100_000,
        remembered_ids: int = 200_000,
    ) -> None:
        self.engine = engine
        self.stats = WriterStats()
        self._queue: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(max_queue)
        self._flush_interval_s = flush_interval_s
        self._max_batch = max_batch
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._recent_limit = remembered_ids
        self._recent_lock = threading.Lock()
        self._salt = user_id_salt(engine).encode()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._in_flight = 0
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="efimero-store-writer", daemon=True)
            self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Write everything queued, then stop the writer."""
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

    # -- writing -----------------------------------------------------------------------
    def record_prediction(self, record: dict[str, Any]) -> None:
        """Queue a prediction row; never blocks (a full queue drops it and counts the drop)."""
        try:
            self._queue.put_nowait(("prediction", record))
        except queue.Full:
            self.stats.dropped += 1
            logger.error("store queue full: dropped the log of prediction %s", record["prediction_id"])
            return
        with self._recent_lock:
            self._recent[record["prediction_id"]] = None
            if len(self._recent) > self._recent_limit:
                self._recent.popitem(last=False)

    def record_interaction(self, record: dict[str, Any]) -> None:
        """Queue an interaction row.

        Raises:
            StoreError: the queue is full (the database has been unreachable for a while).
        """
        try:
            self._queue.put_nowait(("interaction", record))
        except queue.Full:
            raise StoreError("the interaction store is falling behind; retry later.") from None

    def hash_user(self, user_id: str) -> str:
        """A salted hash of a user id: stable for this store, meaningless outside it."""
        return hmac.new(self._salt, user_id.encode(), hashlib.sha256).hexdigest()

    # -- reading -----------------------------------------------------------------------
    def has_prediction(self, prediction_id: str) -> bool:
        with self._recent_lock:
            if prediction_id in self._recent:
                return True
        try:
            with Session(self.engine) as session:
                return session.get(PredictionRecord, prediction_id) is not None
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot look up prediction {prediction_id}: {exc}") from exc

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
                first = self._queue.get(timeout=self._flush_interval_s)
            except queue.Empty:
                continue
            # Gather for one flush interval: one transaction per batch, not per record, keeps
            # the writer's CPU (which competes with request handling) low under load.
            batch, deadline = [first], time.monotonic() + self._flush_interval_s
            while len(batch) < self._max_batch:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait())
                except queue.Empty:
                    break
            self._write(batch)
            for _ in batch:
                self._queue.task_done()
            with self._idle:
                self._idle.notify_all()

    def _write(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        for attempt in range(_RETRIES):
            try:
                self._insert(batch)
                return
            except SQLAlchemyError as exc:
                logger.warning("store write of %d rows failed (attempt %d): %s", len(batch), attempt + 1, exc)
                time.sleep(0.2 * (attempt + 1))
        for item in batch:
            try:
                self._insert([item])
            except SQLAlchemyError as exc:
                self.stats.failed += 1
                logger.error("store could not write a %s row: %s", item[0], exc)

    def _insert(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        predictions = [row for kind, row in batch if kind == "prediction"]
        interactions = [row for kind, row in batch if kind == "interaction"]
        with Session(self.engine) as session, session.begin():
            if predictions:
                session.execute(insert(PredictionRecord), predictions)
            if interactions:
                session.execute(insert(InteractionRecord), interactions)
        self.stats.written_predictions += len(predictions)
        self.stats.written_interactions += len(interactions)
