"""Alerts: every anomaly recorded in the store, then POSTed as JSON to an optional webhook and e-mailed.

The store comes first, so an alert is never lost to a webhook or a mail server that is down, slow
or answering errors: it stays in the ``alerts`` table with ``delivery_error`` saying why it did not
arrive. Nothing here raises for a webhook, e-mail or store failure, so the service's monitoring
loop goes on; each failure is logged and returned in the :class:`Alert`. An anomaly already
recorded for the same window, rule, version and arm (the same window checked again) is neither
stored nor sent twice.

E-mail (``retraining.notifications`` with ``alert`` in ``on``, through :class:`~efimero.notify.Notifier`)
sends one message per call listing its new alerts, with their webhook bodies attached as JSON.
The store keeps one delivery per alert: ``delivered_at`` is when the webhook took it, else when the
e-mail left (no webhook, or a webhook that failed); ``delivery_error`` holds the webhook's error
and, after ``e-mail: ``, the e-mail's, joined by ``; ``. The returned :class:`Alert` keeps them
apart (``delivered_at``/``delivery_error`` for the webhook, ``emailed_at``/``email_error``).
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
    from efimero.notify import Notifier

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
    """When the webhook took it."""
    delivery_error: str | None = None
    """Why the webhook did not take it."""
    store_error: str | None = None
    emailed_at: datetime | None = None
    """When the e-mail naming it was sent."""
    email_error: str | None = None
    """Why that e-mail was not sent."""

    def payload(self) -> dict[str, Any]:
        """The JSON body sent to the webhook: the alert's id and time with the anomaly's fields."""
        return {"id": self.id, "created_at": self.created_at.isoformat(), **self.anomaly.to_dict()}

    def to_dict(self) -> dict[str, Any]:
        return {**self.payload(), "new": self.new,
                "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
                "delivery_error": self.delivery_error, "store_error": self.store_error,
                "emailed_at": self.emailed_at.isoformat() if self.emailed_at else None,
                "email_error": self.email_error}

    def stored_delivery(self) -> tuple[datetime | None, str | None]:
        """The delivery the store keeps: the webhook's time, else the e-mail's; both errors, the e-mail's marked."""
        errors = [self.delivery_error, None if self.email_error is None else f"e-mail: {self.email_error}"]
        return self.delivered_at or self.emailed_at, "; ".join(e for e in errors if e) or None


def record_and_notify(engine: Engine, anomalies: Iterable[RuleResult], webhook_url: str | None, *,
                      timeout_s: float = 5.0, notifier: Notifier | None = None) -> list[Alert]:
    """Store each anomaly as an alert, then POST it to ``webhook_url`` (when given), e-mail the new ones
    through ``notifier`` (when it sends ``alert`` e-mails) and record the delivery.

    Never raises for a store, webhook or e-mail failure: the returned alerts say what failed.

    Example:
        >>> report = check(engine, rules, now=now, registry=registry)  # doctest: +SKIP
        >>> [a.delivery_error for a in record_and_notify(engine, report.anomalies, "http://hooks.local/efimero")]
        [None]  # doctest: +SKIP
    """
    alerts = [_record(engine, anomaly) for anomaly in anomalies]
    emailing = notifier is not None and notifier.wants("alert")
    if not (webhook_url or emailing) or not any(alert.new for alert in alerts):
        return alerts
    if webhook_url:
        with httpx.Client(timeout=timeout_s) as client:
            alerts = [_deliver(client, webhook_url, alert) if alert.new else alert for alert in alerts]
    if notifier is not None and emailing:
        alerts = _email(notifier, alerts)
    for alert in alerts:
        if alert.new and alert.id is not None:
            _record_delivery(engine, alert)
    return alerts


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


def _deliver(client: httpx.Client, url: str, alert: Alert) -> Alert:
    """POST ``alert``; return it with its delivery time, or the reason the webhook did not take it (never
    the URL, which may hold a token)."""
    try:
        response = client.post(url, json=alert.payload())
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        delivered = replace(alert, delivery_error=f"{type(exc).__name__}: {exc}")
    else:
        delivered = (replace(alert, delivered_at=datetime.now(UTC)) if response.is_success
                     else replace(alert, delivery_error=f"the webhook answered HTTP {response.status_code}"))
    if delivered.delivery_error:
        logger.error("alert %s was not delivered to the webhook: %s", alert.id, delivered.delivery_error)
    return delivered


def _email(notifier: Notifier, alerts: list[Alert]) -> list[Alert]:
    """One e-mail naming every new alert; each returned with the e-mail's time or its error."""
    new = [alert for alert in alerts if alert.new]
    first = new[0].anomaly
    what = f"{first.severity} {first.rule} on {first.model_version} ({first.arm}), action {first.action}"
    subject = f"alert: {what}" if len(new) == 1 else f"{len(new)} alerts: {what}, and {len(new) - 1} more"
    lines = [f"efimero monitor: {len(new)} new alert{'s' * (len(new) > 1)} in the window "
             f"{first.window_start:%Y-%m-%d %H:%M} to {first.window_end:%H:%M} UTC", ""]
    for alert in new:
        a = alert.anomaly
        lines += [f"#{alert.id if alert.id is not None else '(not stored)'}  {a.severity} {a.rule} on "
                  f"{a.model_version} ({a.arm}) → {a.action}",
                  f"    value {a.value}, baseline {a.baseline}, threshold {a.threshold}", f"    {a.message}"]
        if alert.delivery_error:
            lines.append(f"    webhook failed: {alert.delivery_error}")
    lines += ["", "The alerts are attached (alerts.json) as POSTed to the webhook; "
              "`efimero monitor` and /dashboard show them too."]
    sent = notifier.send("alert", subject, "\n".join(lines), attachment=[alert.payload() for alert in new],
                         filename="alerts.json")
    return [replace(alert, emailed_at=sent.sent_at, email_error=sent.detail) if alert.new else alert
            for alert in alerts]


def _record_delivery(engine: Engine, alert: Alert) -> None:
    assert alert.id is not None, "only a stored alert has a delivery to record"
    delivered_at, error = alert.stored_delivery()
    try:
        record_delivery(engine, alert.id, delivered_at=delivered_at, error=error)
    except StoreError as exc:
        logger.error("could not record the delivery of alert %s: %s", alert.id, exc)
