"""Alerts: every anomaly recorded in the store, then POSTed as JSON to an optional webhook.

The store comes first, so an alert is never lost to a webhook that is down, slow or answering
errors: it stays in the ``alerts`` table with ``delivery_error`` saying why it did not arrive.
Nothing here raises for a webhook or store failure, so the service's monitoring loop goes on;
each failure is logged and returned in the :class:`Alert`. An anomaly already recorded for the
same window, rule, version and arm (the same window checked again) is neither stored nor sent twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from efimero.errors import StoreError
from efimero.store import record_alert, record_delivery

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from efimero.monitor.rules import RuleResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """What became of one anomaly: its id in the store, whether it was new, and its delivery."""

    anomaly: RuleResult
    id: int | None
    """None when the store could not record it (``store_error`` says why)."""
    new: bool
    """False when the same window, rule, version and arm had been alerted already (then nothing is sent)."""
    created_at: datetime
    delivered_at: datetime | None = None
    delivery_error: str | None = None
    store_error: str | None = None

    def payload(self) -> dict[str, Any]:
        """The JSON body sent to the webhook: the alert's id and time with the anomaly's fields."""
        return {"id": self.id, "created_at": self.created_at.isoformat(), **self.anomaly.to_dict()}

    def to_dict(self) -> dict[str, Any]:
        return {**self.payload(), "new": self.new,
                "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
                "delivery_error": self.delivery_error, "store_error": self.store_error}


def record_and_notify(engine: Engine, anomalies: Iterable[RuleResult], webhook_url: str | None, *,
                      timeout_s: float = 5.0) -> list[Alert]:
    """Store each anomaly as an alert, then POST it to ``webhook_url`` (when given) and record the delivery.

    Never raises for a store or webhook failure: the returned alerts say what failed.

    Example:
        >>> report = check(engine, rules, now=now, registry=registry)  # doctest: +SKIP
        >>> [a.delivery_error for a in record_and_notify(engine, report.anomalies, "http://hooks.local/efimero")]
        [None]  # doctest: +SKIP
    """
    alerts = [_record(engine, anomaly) for anomaly in anomalies]
    if not webhook_url or not any(alert.new for alert in alerts):
        return alerts
    with httpx.Client(timeout=timeout_s) as client:
        return [_deliver(engine, client, webhook_url, alert) if alert.new else alert for alert in alerts]


def _record(engine: Engine, anomaly: RuleResult) -> Alert:
    created_at = datetime.now(UTC)
    row = {"created_at": created_at, "window_start": anomaly.window_start, "window_end": anomaly.window_end,
           "severity": anomaly.severity, "rule": anomaly.rule, "model_version": anomaly.model_version,
           "arm": anomaly.arm, "value": anomaly.value, "baseline": anomaly.baseline,
           "threshold": anomaly.threshold, "action": anomaly.action, "message": anomaly.message}
    try:
        stored = record_alert(engine, row)
    except StoreError as exc:  # still sent: a webhook that hears of it is better than nothing
        logger.error("could not record the %s alert of %s: %s", anomaly.rule, anomaly.model_version, exc)
        return Alert(anomaly, None, True, created_at, store_error=str(exc))
    log = logger.warning if stored.created else logger.info
    log("%s anomaly %s on %s (%s): %s; action %s%s", anomaly.severity, anomaly.rule, anomaly.model_version,
        anomaly.arm, anomaly.message, anomaly.action, "" if stored.created else " (already alerted)")
    return Alert(anomaly, stored.id, stored.created, created_at)


def _deliver(engine: Engine, client: httpx.Client, url: str, alert: Alert) -> Alert:
    """POST ``alert``; return it with its delivery time, or the reason the webhook did not take it (never
    the URL, which may hold a token), as recorded in the store."""
    try:
        response = client.post(url, json=alert.payload())
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        delivered = replace(alert, delivery_error=f"{type(exc).__name__}: {exc}")
    else:
        delivered = (replace(alert, delivered_at=datetime.now(UTC)) if response.is_success
                     else replace(alert, delivery_error=f"the webhook answered HTTP {response.status_code}"))
    if delivered.delivery_error:
        logger.error("alert %s was not delivered to the webhook: %s", alert.id, delivered.delivery_error)
    if alert.id is not None:
        try:
            record_delivery(engine, alert.id, delivered_at=delivered.delivered_at, error=delivered.delivery_error)
        except StoreError as exc:
            logger.error("could not record the delivery of alert %s: %s", alert.id, exc)
    return delivered
