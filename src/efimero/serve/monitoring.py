"""The service's monitoring loop: the check of `efimero monitor`, every interval, in the background.

Each round measures the last window per version and arm, applies the anomaly rules, records
the anomalies as alerts in the store and sends them to the webhook (:mod:`efimero.monitor`).
The loop only reports: acting on an anomaly (halving a candidate's traffic, rolling it back) is
the rollout controller's job, which reads the same rules.

Like the model watcher it is supervised: a round that fails, whatever the exception, is
logged, counted in ``/metrics`` and retried at the next interval, and the last report stays
readable at ``/v1/monitor``.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from efimero.monitor import RULES, MonitorReport, check, record_and_notify
from efimero.store import latest_event_time

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from efimero.config import MonitoringRules
    from efimero.monitor import Alert
    from efimero.notify import Notifier
    from efimero.registry import Registry
    from efimero.serve.metrics import ServiceMetrics

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MonitorLoop:
    """Runs the monitoring check every ``interval_s`` seconds on a daemon thread.

    ``clock`` ``wall`` ends each window now; ``store`` at the newest visit in the store, so that
    simulated traffic, whose visits carry simulated times, is watched where it happens.
    """

    def __init__(self, engine: Engine, rules: MonitoringRules, registry: Registry, *, interval_s: float,
                 clock: str = "wall", metrics: ServiceMetrics | None = None,
                 notifier: Notifier | None = None) -> None:
        self.engine, self.rules, self.registry, self.notifier = engine, rules, registry, notifier
        self.interval_s, self.clock, self.metrics = interval_s, clock, metrics
        self.report: MonitorReport | None = None
        self.alerts: list[dict[str, Any]] = []
        self.error: str | None = None
        self.checked_at: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drift_labels: set[tuple[str, str]] = set()
        if metrics is not None:  # every outcome and rule exported from the start, at 0
            for outcome in ("ok", "idle", "failed"):
                metrics.monitor_rounds.labels(outcome)
            for rule in RULES:
                severity = getattr(rules.severities, rule)
                metrics.monitor_anomalies.labels(rule, severity)
                metrics.monitor_alerts.labels(rule, severity)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="efimero-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def run_once(self) -> MonitorReport | None:
        """One round; None when there is nothing to watch yet (an empty store on the store clock)."""
        now = self._now()
        if now is None:
            return None
        report = check(self.engine, self.rules, now=now, registry=self.registry)
        sent = record_and_notify(self.engine, report.anomalies, self.rules.webhook_url,
                                 timeout_s=self.rules.webhook_timeout_s, notifier=self.notifier)
        self.report, self.checked_at = report, datetime.now(UTC)
        self.alerts = [alert.to_dict() for alert in sent if alert.new]
        self._export(report, sent)
        return report

    def _export(self, report: MonitorReport, sent: list[Alert]) -> None:
        """The round in ``/metrics``: anomalies per rule, new alerts, prediction drift per version and arm."""
        if self.metrics is None:
            return
        for rule in RULES:
            count = sum(anomaly.rule == rule for anomaly in report.anomalies)
            self.metrics.monitor_anomalies.labels(rule, getattr(self.rules.severities, rule)).set(count)
        for alert in sent:
            if alert.new:
                self.metrics.monitor_alerts.labels(alert.anomaly.rule, alert.anomaly.severity).inc()
        drift = {(window.model_version, window.arm): window.prediction_drift.value for window in report.versions
                 if window.prediction_drift.value is not None}
        for labels in self._drift_labels - drift.keys():  # versions no longer measured
            self.metrics.monitor_prediction_drift.remove(*labels)
        for labels, value in drift.items():
            self.metrics.monitor_prediction_drift.labels(*labels).set(value)
        self._drift_labels = set(drift)

    def _now(self) -> datetime | None:
        """The end of the last complete window on the loop's clock; None before the store holds a visit.

        Windows are aligned to multiples of their length, so every round within one window, and
        every worker, checks the same window: its alerts are then recorded and sent once.
        """
        if self.clock == "wall":
            now = datetime.now(UTC)
        else:
            newest = latest_event_time(self.engine)
            if newest is None:
                return None
            now = newest
        window = timedelta(minutes=self.rules.window_minutes)
        return _EPOCH + (now - _EPOCH) // window * window

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            started = time.perf_counter()
            try:
                report = self.run_once()
            except Exception as exc:  # the loop outlives every error: log, count, go on
                message = f"{type(exc).__name__}: {exc}"
                if message != self.error:
                    logger.exception("monitoring round failed; retrying in %.0f s", self.interval_s)
                self.error = message
                self._count("failed")
                continue
            self.error = None
            self._count("ok" if report is not None else "idle")
            if report is not None and report.anomalies:
                logger.warning("monitoring: %s", "; ".join(a.message for a in report.anomalies))
            logger.debug("monitoring round took %.0f ms", (time.perf_counter() - started) * 1000)

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.monitor_rounds.labels(outcome).inc()
