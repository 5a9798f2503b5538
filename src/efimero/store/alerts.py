"""The monitor's alerts in the store: written synchronously, once per window, rule, version and arm.

An alert is the record of an anomaly and of what it called for; it must outlive whatever is
done about it (a webhook that is down, a rollback that fails). So writing one is a plain
transaction that has committed when :func:`record_alert` returns, not a record queued behind
the service's fire-and-forget writer. Checking the same window twice (the CLI run by hand beside
the service's loop, a retry) finds the alert already there and records nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from efimero.errors import StoreError
from efimero.store.models import MESSAGE_LENGTH, AlertRecord
from efimero.store.repo import idempotent_insert

ALERT_KEY = ("window_start", "window_end", "rule", "model_version", "arm")
"""What makes an alert the same alert: the unique key of the ``alerts`` table."""


@dataclass(frozen=True)
class StoredAlert:
    """Where an alert stands in the store: its id, and whether this call created it."""

    id: int
    created: bool


def record_alert(engine: Engine, alert: dict[str, Any]) -> StoredAlert:
    """Store ``alert`` (the columns of :class:`~efimero.store.models.AlertRecord`) and commit.

    Returns the alert's id, and ``created=False`` when an alert with the same window, rule,
    version and arm was stored before (that one is kept as it is).

    Raises:
        StoreError: the store cannot be written.

    Example:
        >>> record_alert(engine, {"created_at": now, "window_start": a, "window_end": b, "severity": "high",
        ...                       "rule": "accuracy_drop", "model_version": "v_1", "arm": "canary", "value": 0.7,
        ...                       "baseline": 0.8, "threshold": 0.05, "action": "rollback",
        ...                       "message": "..."})  # doctest: +SKIP
        StoredAlert(id=1, created=True)
    """
    row = {**alert, "message": str(alert["message"])[:MESSAGE_LENGTH]}
    key = [AlertRecord.__table__.c[name] == row[name] for name in ALERT_KEY]
    try:
        with Session(engine) as session, session.begin():
            inserted = session.execute(
                idempotent_insert(engine, AlertRecord, list(ALERT_KEY)).values(row).returning(AlertRecord.id)
            ).scalar_one_or_none()
            if inserted is not None:
                return StoredAlert(inserted, created=True)
            return StoredAlert(session.scalars(select(AlertRecord.id).where(*key)).one(), created=False)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot record the {alert['rule']} alert of {alert['model_version']}: {exc}") from exc


def record_delivery(engine: Engine, alert_id: int, *, delivered_at: datetime | None = None,
                    error: str | None = None) -> None:
    """Note that alert ``alert_id`` reached the webhook at ``delivered_at``, or why it did not.

    Raises:
        StoreError: the store cannot be written.
    """
    values = {"delivered_at": delivered_at,
              "delivery_error": None if error is None else error[:MESSAGE_LENGTH]}
    try:
        with Session(engine) as session, session.begin():
            session.execute(update(AlertRecord).where(AlertRecord.id == alert_id).values(values))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot record the delivery of alert {alert_id}: {exc}") from exc


def recent_alerts(engine: Engine, *, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` alerts, newest first, each as a mapping of its columns.

    Raises:
        StoreError: the store cannot be read.
    """
    columns = AlertRecord.__table__.columns
    query = select(*columns).order_by(AlertRecord.id.desc()).limit(limit)
    try:
        with Session(engine) as session:
            return [dict(row._mapping) for row in session.execute(query)]
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read alerts from the store: {exc}") from exc
