"""Privacy and retention: forget one visitor, prune old logs (GDPR/CCPA, the retraining guidelines).

Both delete in small batches, each its own short transaction, so the service's writer is
never locked out for longer than one batch takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, Select, delete, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from efimero.errors import StoreError
from efimero.store.engine import LEGACY_SALT_KEY, read_meta
from efimero.store.keys import user_hash
from efimero.store.models import InteractionRecord, PredictionRecord

DEFAULT_BATCH = 5000


@dataclass(frozen=True)
class Deleted:
    """Rows removed by a maintenance command (or, for a dry run, that it would remove)."""

    predictions: int
    interactions: int
    batches: int


BatchProgress = Callable[[int, int], None]
"""Called after each batch with the predictions and interactions it deleted."""


def forget_user(engine: Engine, user_id: str, *, pepper: bytes, batch_size: int = DEFAULT_BATCH) -> Deleted:
    """Delete every interaction of ``user_id`` and the predictions (contexts) those answered.

    Rows of schema-1 stores, hashed with the store's old salt, are matched too.
    """
    hashes = [user_hash(pepper, user_id)]
    legacy_salt = read_meta(engine, LEGACY_SALT_KEY)
    if legacy_salt is not None:
        hashes.append(user_hash(legacy_salt.encode(), user_id))
    of_user = InteractionRecord.user_hash.in_(hashes)
    ids = select(InteractionRecord.prediction_id).where(of_user).distinct().limit(batch_size)
    return _delete_in_batches(engine, ids, select(InteractionRecord.id).where(of_user).limit(batch_size))


def prune_older_than(engine: Engine, age: timedelta, *, batch_size: int = DEFAULT_BATCH,
                     now: datetime | None = None, dry_run: bool = False,
                     progress: BatchProgress | None = None) -> Deleted:
    """Delete predictions created before ``now - age`` with their interactions, then older interactions.

    Each batch is its own short transaction over at most ``batch_size`` primary keys, found in time
    order through the ``created_at`` / ``received_at`` indexes, so every batch costs the same however
    large the store, and writers (which only insert new rows) never wait for more than one batch on
    SQLite and not at all on PostgreSQL (row locks on old rows only). ``dry_run`` deletes nothing
    and counts what would go (``batches`` 0).
    """
    cutoff = (now or datetime.now(UTC)) - age
    if dry_run:
        return count_older_than(engine, cutoff)
    ids = (select(PredictionRecord.prediction_id).where(PredictionRecord.created_at < cutoff)
           .order_by(PredictionRecord.created_at).limit(batch_size))
    old = (select(InteractionRecord.id).where(InteractionRecord.received_at < cutoff)
           .order_by(InteractionRecord.received_at).limit(batch_size))
    return _delete_in_batches(engine, ids, old, progress)


def count_older_than(engine: Engine, cutoff: datetime) -> Deleted:
    """What :func:`prune_older_than` would delete at ``cutoff``: old predictions, and the interactions that
    are old or answer an old prediction (each counted once)."""
    old_prediction = PredictionRecord.created_at < cutoff
    try:
        with Session(engine) as session:
            predictions = session.scalar(select(func.count()).where(old_prediction)) or 0
            old_logs = session.scalar(
                select(func.count()).where(InteractionRecord.received_at < cutoff)) or 0
            answering = session.scalar(
                select(func.count()).select_from(InteractionRecord)
                .join(PredictionRecord, PredictionRecord.prediction_id == InteractionRecord.prediction_id)
                .where(old_prediction, InteractionRecord.received_at >= cutoff)) or 0
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot count old logs in the store: {_reason(exc)}") from exc
    return Deleted(predictions, old_logs + answering, 0)


def _delete_in_batches(engine: Engine, prediction_ids: Select[Any], interaction_ids: Select[Any],
                       progress: BatchProgress | None = None) -> Deleted:
    """Delete, a batch per transaction, the predictions ``prediction_ids`` selects with every interaction
    answering them; once it selects none, the interactions ``interaction_ids`` selects. Both selects are
    limited to one batch and are run again until they find nothing."""
    predictions = interactions = batches = 0
    try:
        while True:
            with Session(engine) as session, session.begin():
                removed_predictions = removed_interactions = 0
                chosen, logs = list(session.scalars(prediction_ids)), []
                if chosen:
                    removed_interactions = _rowcount(session.execute(
                        delete(InteractionRecord).where(InteractionRecord.prediction_id.in_(chosen))))
                    removed_predictions = _rowcount(session.execute(
                        delete(PredictionRecord).where(PredictionRecord.prediction_id.in_(chosen))))
                else:
                    logs = list(session.scalars(interaction_ids))
                    if logs:
                        removed_interactions = _rowcount(session.execute(
                            delete(InteractionRecord).where(InteractionRecord.id.in_(logs))))
            if not chosen and not logs:
                return Deleted(predictions, interactions, batches)
            predictions += removed_predictions
            interactions += removed_interactions
            batches += 1
            if progress is not None:
                progress(removed_predictions, removed_interactions)
    except SQLAlchemyError as exc:
        raise StoreError(f"deleting from the store failed after {batches} batch(es): {_reason(exc)}") from exc


def _rowcount(result: Result[Any]) -> int:
    """Rows a DELETE removed: the session answers DML with a CursorResult, typed as a plain Result."""
    return cast("CursorResult[Any]", result).rowcount


def _reason(exc: SQLAlchemyError) -> str:
    """The database's own words, without the statement (it may list thousands of ids)."""
    return str(getattr(exc, "orig", None) or exc).splitlines()[0]
