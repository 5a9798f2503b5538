"""Privacy and retention: forget one visitor, prune old logs (GDPR/CCPA, the retraining guidelines).

Both delete in small batches, each its own short transaction, so the service's writer is
never locked out for longer than one batch takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Engine, Result, Select, delete, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from efimero.errors import StoreError
from efimero.store.engine import LEGACY_SALT_KEY, read_meta
from efimero.store.keys import user_hash
from efimero.store.models import InteractionRecord, PredictionRecord

DEFAULT_BATCH = 5000


@dataclass(frozen=True)
class Deleted:
    """Rows removed by a maintenance command."""

    predictions: int
    interactions: int
    batches: int


def forget_user(engine: Engine, user_id: str, *, pepper: bytes, batch_size: int = DEFAULT_BATCH) -> Deleted:
    """Delete every interaction of ``user_id`` and the predictions (contexts) those answered.

    Rows of schema-1 stores, hashed with the store's old salt, are matched too.
    """
    hashes = [user_hash(pepper, user_id)]
    legacy_salt = read_meta(engine, LEGACY_SALT_KEY)
    if legacy_salt is not None:
        hashes.append(user_hash(legacy_salt.encode(), user_id))
    ids = select(InteractionRecord.prediction_id).where(InteractionRecord.user_hash.in_(hashes))
    return _delete_in_batches(engine, ids, InteractionRecord.user_hash.in_(hashes), batch_size)


def prune_older_than(engine: Engine, age: timedelta, *, batch_size: int = DEFAULT_BATCH,
                     now: datetime | None = None) -> Deleted:
    """Delete predictions created before ``now - age`` with their interactions, and older interactions."""
    cutoff = (now or datetime.now(UTC)) - age
    ids = select(PredictionRecord.prediction_id).where(PredictionRecord.created_at < cutoff)
    return _delete_in_batches(engine, ids, InteractionRecord.received_at < cutoff, batch_size)


def _delete_in_batches(
    engine: Engine, prediction_ids: Select[str], interaction_filter: ColumnElement[bool], batch_size: int
) -> Deleted:
    """Delete predictions named by ``prediction_ids`` and interactions matching them or ``interaction_filter``."""
    predictions = interactions = batches = 0
    try:
        while True:
            with Session(engine) as session, session.begin():
                chosen = list(session.scalars(prediction_ids.distinct().limit(batch_size)))
                removed_interactions = _rowcount(session.execute(
                    delete(InteractionRecord).where(or_(
                        InteractionRecord.prediction_id.in_(chosen),
                        InteractionRecord.id.in_(_first_ids(interaction_filter, batch_size)),
                    ))
                ))
                removed_predictions = _rowcount(session.execute(
                    delete(PredictionRecord).where(PredictionRecord.prediction_id.in_(chosen))
                ))
            if not removed_interactions and not removed_predictions:
                return Deleted(predictions, interactions, batches)
            predictions += removed_predictions
            interactions += removed_interactions
            batches += 1
    except SQLAlchemyError as exc:
        raise StoreError(f"deleting from the store failed after {batches} batch(es): {exc}") from exc


def _rowcount(result: Result[Any]) -> int:
    """Rows a DELETE removed: the session answers DML with a CursorResult, typed as a plain Result."""
    return cast("CursorResult[Any]", result).rowcount


def _first_ids(interaction_filter: ColumnElement[bool], batch_size: int) -> Select[int]:
    # A derived table: MySQL-style engines refuse a subquery on the table being deleted from.
    inner = select(InteractionRecord.id).where(interaction_filter).limit(batch_size).subquery()
    return select(inner.c.id)
