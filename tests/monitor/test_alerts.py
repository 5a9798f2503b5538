"""Alerts: recorded in the store first, then POSTed to a real local webhook; a failing webhook loses nothing."""

from __future__ import annotations

from efimero.monitor import evaluate, record_and_notify
from efimero.monitor.rules import RuleResult
from efimero.store import recent_alerts
from tests._postgres import free_port
from tests.monitor.conftest import Receiver, Traffic
from tests.monitor.test_rules import LIVE, RULES, window


def anomalies() -> list[RuleResult]:
    """A candidate whose accuracy fell (rollback) and whose latency rose (traffic halved)."""
    found = [r for r in evaluate([LIVE, window(accuracy=0.6, p95=90.0)], [], RULES) if r.outcome == "anomaly"]
    assert [r.rule for r in found] == ["accuracy_drop", "latency_increase"]
    return found


def test_alerts_are_stored_and_posted_as_json_to_the_webhook(traffic: Traffic, receiver: Receiver) -> None:
    alerts = record_and_notify(traffic.engine, anomalies(), receiver.url)
    assert [(a.new, a.delivery_error, a.store_error) for a in alerts] == [(True, None, None)] * 2
    assert [body["rule"] for body in receiver.bodies] == ["accuracy_drop", "latency_increase"]
    body = receiver.bodies[0]
    assert body["id"] == alerts[0].id and body["severity"] == "high" and body["action"] == "rollback"
    assert (body["model_version"], body["arm"], body["value"], body["baseline"], body["threshold"]) == (
        "v_2", "canary", 0.6, 0.8, 0.05)
    assert body["window_start"] == "2026-11-26T11:55:00+00:00" and "down 0.200" in body["message"]
    stored = {row["rule"]: row for row in recent_alerts(traffic.engine)}
    assert stored["latency_increase"]["action"] == "traffic_halved"
    assert all(row["delivered_at"] is not None and row["delivery_error"] is None for row in stored.values())


def test_the_same_window_checked_again_is_neither_stored_nor_sent_twice(sqlite_traffic: Traffic,
                                                                        receiver: Receiver) -> None:
    first = record_and_notify(sqlite_traffic.engine, anomalies(), receiver.url)
    again = record_and_notify(sqlite_traffic.engine, anomalies(), receiver.url)
    assert [a.new for a in again] == [False, False] and [a.id for a in again] == [a.id for a in first]
    assert len(receiver.bodies) == 2 and len(recent_alerts(sqlite_traffic.engine)) == 2


def test_a_dead_webhook_keeps_the_alert_with_its_delivery_error(sqlite_traffic: Traffic) -> None:
    alerts = record_and_notify(sqlite_traffic.engine, anomalies(), f"http://127.0.0.1:{free_port()}/hook",
                               timeout_s=2)
    assert all(a.id is not None and a.delivered_at is None and a.delivery_error for a in alerts)
    assert alerts[0].delivery_error.startswith("ConnectError")
    stored = recent_alerts(sqlite_traffic.engine)
    assert len(stored) == 2 and all(row["delivered_at"] is None and row["delivery_error"] for row in stored)


def test_a_webhook_answering_an_error_status_is_not_a_delivery(sqlite_traffic: Traffic, receiver: Receiver) -> None:
    receiver.status = 500
    (alert, _) = record_and_notify(sqlite_traffic.engine, anomalies(), receiver.url)
    assert len(receiver.bodies) == 2 and alert.delivery_error == "the webhook answered HTTP 500"
    assert recent_alerts(sqlite_traffic.engine)[-1]["delivery_error"] == "the webhook answered HTTP 500"


def test_without_a_webhook_alerts_are_only_stored(sqlite_traffic: Traffic) -> None:
    alerts = record_and_notify(sqlite_traffic.engine, anomalies(), None)
    assert [(a.new, a.delivered_at, a.delivery_error) for a in alerts] == [(True, None, None)] * 2
    assert len(recent_alerts(sqlite_traffic.engine)) == 2


def test_a_store_that_cannot_be_written_still_sends_the_alert(sqlite_traffic: Traffic, receiver: Receiver) -> None:
    with sqlite_traffic.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE alerts")
    alerts = record_and_notify(sqlite_traffic.engine, anomalies(), receiver.url)
    assert all(a.id is None and a.store_error and a.delivered_at for a in alerts)
    assert [body["id"] for body in receiver.bodies] == [None, None]
