"""Reading the store for data collection and monitoring: sessions joined to their predictions, logged
decisions with their first log, the predictions and failed predictions of a window; the first two also
streamed in chunks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, Select, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from efimero.errors import StoreError
from efimero.store.models import InteractionRecord, PredictionErrorRecord, PredictionRecord

PREDICTION_COLUMNS = ("event_time", "model_version", "arm", "latency_ms", "css_classes")
ERROR_COLUMNS = ("event_time", "model_version", "arm", "error")
_SESSION_PREDICTION_COLUMNS = (
    "prediction_id", "event_time", "model_version", "arm", "latency_ms", "context", "features", "css_classes",
    "css_variables",
)
_SESSION_INTERACTION_COLUMNS = (
    "session_id", "session_duration_ms", "interactions_count", "bounce_rate", "scroll_depth", "click_through_rate",
    "user_satisfaction", "ui_preference_feedback", "page_load_time_ms", "rendering_time_ms",
    "first_styled_paint_ms", "hidden_ms",
)
SESSION_COLUMNS = _SESSION_PREDICTION_COLUMNS + _SESSION_INTERACTION_COLUMNS


DEFAULT_CHUNK_ROWS = 10_000
"""Rows per chunk when a window is streamed (:func:`iter_sessions`, :func:`iter_decisions`)."""


def sessions_query(*, start: datetime, end: datetime, min_session_duration_ms: int = 0) -> Select[Any]:
    """The window query of :func:`sessions`: the index on ``predictions.event_time`` finds the window, the one
    on ``interactions.prediction_id`` its logs (``bench/results/2026-11-27-store-scale.txt`` shows the plans)."""
    return (
        select(*(getattr(PredictionRecord, name) for name in _SESSION_PREDICTION_COLUMNS),
               *(getattr(InteractionRecord, name) for name in _SESSION_INTERACTION_COLUMNS))
        .join(InteractionRecord, InteractionRecord.prediction_id == PredictionRecord.prediction_id)
        .where(PredictionRecord.event_time >= start, PredictionRecord.event_time < end,
               InteractionRecord.session_duration_ms >= min_session_duration_ms)
        .order_by(PredictionRecord.event_time, InteractionRecord.id)
    )


def sessions(engine: Engine, *, start: datetime, end: datetime, min_session_duration_ms: int = 0) -> pd.DataFrame:
    """Interactions whose visit happened in [start, end), each with the prediction it answered."""
    query = sessions_query(start=start, end=end, min_session_duration_ms=min_session_duration_ms)
    return _frame(engine, query, SESSION_COLUMNS, "sessions")


def iter_sessions(engine: Engine, *, start: datetime, end: datetime, min_session_duration_ms: int = 0,
                  chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """:func:`sessions` in frames of at most ``chunk_rows`` rows, in the same order, read as they are consumed.

    Memory stays bounded by a chunk: PostgreSQL streams the rows through a server-side cursor
    (SQLAlchemy's ``yield_per``); SQLite's cursor steps through the result as it is fetched.
    The read is one transaction, so the chunks are one consistent snapshot on PostgreSQL.

    Raises:
        StoreError: the store cannot be read (at the start or between chunks).
    """
    query = sessions_query(start=start, end=end, min_session_duration_ms=min_session_duration_ms)
    yield from _stream(engine, query, SESSION_COLUMNS, "sessions", chunk_rows)


def _stream(engine: Engine, query: Select[Any], columns: tuple[str, ...], what: str,
            chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The rows of ``query`` in frames of at most ``chunk_rows`` through a server-side cursor (see iter_sessions)."""
    try:
        with Session(engine) as session:
            result = session.execute(query, execution_options={"yield_per": chunk_rows})
            for part in result.partitions():
                yield pd.DataFrame([tuple(row) for row in part], columns=list(columns))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read {what} from the store: {exc}") from exc


_DECISION_COLUMNS = ("prediction_id", "created_at", "event_time", "model_version", "arm", "context", "features",
                     "css_variables", "decisions")
DECISION_COLUMNS = (*_DECISION_COLUMNS, "received_at", *_SESSION_INTERACTION_COLUMNS)


def decisions_query(*, start: datetime, end: datetime) -> Select[Any]:
    """The window query of :func:`decisions`: every log of each prediction, its rows next to each other."""
    return (
        select(*(getattr(PredictionRecord, name) for name in _DECISION_COLUMNS), InteractionRecord.received_at,
               *(getattr(InteractionRecord, name) for name in _SESSION_INTERACTION_COLUMNS))
        .outerjoin(InteractionRecord, InteractionRecord.prediction_id == PredictionRecord.prediction_id)
        .where(PredictionRecord.event_time >= start, PredictionRecord.event_time < end,
               PredictionRecord.decisions.is_not(None))
        .order_by(PredictionRecord.event_time, PredictionRecord.prediction_id, InteractionRecord.id)
    )


def decisions(engine: Engine, *, start: datetime, end: datetime) -> pd.DataFrame:
    """Predictions for visits in [start, end) that logged their decisions, each with its first log, if any.

    Unlike :func:`sessions`, predictions without a log are kept (``received_at`` is None): a
    visitor who never reported back is an outcome too, which the reward's wait window scores.
    """
    return _first_logs(_frame(engine, decisions_query(start=start, end=end), DECISION_COLUMNS, "decisions"))


def iter_decisions(engine: Engine, *, start: datetime, end: datetime,
                   chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """:func:`decisions` in frames of at most ``chunk_rows`` rows, in the same order, read as they are consumed.

    Read as :func:`iter_sessions` reads (a server-side cursor, one snapshot). A prediction's
    logs may straddle two chunks: the first chunk keeps its first log, the next one drops the rest.
    A chunk left empty by that is not yielded.

    Raises:
        StoreError: the store cannot be read (at the start or between chunks).
    """
    previous: str | None = None  # the last prediction of the chunk before
    for part in _stream(engine, decisions_query(start=start, end=end), DECISION_COLUMNS, "decisions", chunk_rows):
        last = part["prediction_id"].iloc[-1]
        part = _first_logs(part[part["prediction_id"] != previous] if previous is not None else part)
        previous = last
        if len(part):
            yield part


def _first_logs(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`decisions_query` with decisions logged, one per prediction: its first log."""
    frame = frame[frame["decisions"].map(lambda value: isinstance(value, dict)).astype(bool)]
    return frame.drop_duplicates("prediction_id", keep="first").reset_index(drop=True)


def predictions(engine: Engine, *, start: datetime, end: datetime) -> pd.DataFrame:
    """Predictions made for visits in [start, end): version, arm, server latency and the classes served."""
    return _in_window(engine, PredictionRecord, PREDICTION_COLUMNS, start, end, "predictions")


def prediction_errors(engine: Engine, *, start: datetime, end: datetime) -> pd.DataFrame:
    """Failed predictions for visits in [start, end): version, arm and what failed."""
    return _in_window(engine, PredictionErrorRecord, ERROR_COLUMNS, start, end, "prediction errors")


def _in_window(engine: Engine, model: type[PredictionRecord | PredictionErrorRecord], columns: tuple[str, ...],
               start: datetime, end: datetime, what: str) -> pd.DataFrame:
    query = (select(*(getattr(model, name) for name in columns))
             .where(model.event_time >= start, model.event_time < end))
    return _frame(engine, query, columns, what)


def _frame(engine: Engine, query: Select[Any], columns: tuple[str, ...], what: str) -> pd.DataFrame:
    try:
        with Session(engine) as session:
            rows = session.execute(query).all()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read {what} from the store: {exc}") from exc
    return pd.DataFrame([tuple(row) for row in rows], columns=list(columns))


def latest_event_time(engine: Engine) -> datetime | None:
    """The newest visit in the store (the end of "the last N days" for simulated traffic), in UTC:
    SQLite keeps no offset, so a naive value, which is UTC as written, gets it back here."""
    with Session(engine) as session:
        newest = session.scalar(select(func.max(PredictionRecord.event_time)))
    return newest if newest is None or newest.tzinfo else newest.replace(tzinfo=UTC)


def end_after_newest_visit(engine: Engine) -> datetime | None:
    """Just after the newest visit: the end of a half-open window [start, end) that holds it (None: no visit)."""
    newest = latest_event_time(engine)
    return None if newest is None else newest + timedelta(microseconds=1)
