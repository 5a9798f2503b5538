"""The service's monitoring loop: aligned windows, a report at /v1/monitor, and no death by exception."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from efimero.serve import ServeSettings, create_app
from efimero.serve import monitoring as monitoring_module
from tests.serve.conftest import PHONE_AT_NIGHT, interaction


def wait_for(condition: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def monitored(registry_dir, tmp_path):
    settings = ServeSettings(models_dir=registry_dir[0], db_url=f"sqlite:///{tmp_path}/store.db", poll_interval_s=0.05,
                             monitor_interval_s=0.1, monitor_clock="store")
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_loop_checks_the_last_complete_window_of_the_store_clock(monitored) -> None:
    for minute in range(10):
        context = PHONE_AT_NIGHT | {"local_time": f"2026-11-25T23:{minute:02d}:30"}
        served = monitored.post("/v1/predict", json=context).json()
        assert monitored.post("/v1/interactions", json=interaction(served["prediction_id"],
                                                                   session_id=f"s{minute}")).status_code == 202
    assert monitored.app.state.store.flush()

    def window_end() -> str | None:
        report = monitored.get("/v1/monitor").json()["report"]
        return report and report["window"]["end"]

    # Rounds ran while the visits arrived; the newest visit is 23:09:30.
    wait_for(lambda: window_end() == "2026-11-25T23:05:00+00:00")
    status = monitored.get("/v1/monitor").json()
    assert status["running"] and status["clock"] == "store" and status["error"] is None
    window = status["report"]["window"]
    # The last complete 5-minute window: 23:00-23:05, aligned (not 23:04:30-23:09:30).
    assert (window["start"], window["end"]) == ("2026-11-25T23:00:00+00:00", "2026-11-25T23:05:00+00:00")
    [version] = status["report"]["versions"]
    assert (version["arm"], version["predictions"], version["sessions"]) == ("live", 5, 5)
    assert version["accuracy"]["value"] is None and "fewer than the 30 needed" in version["accuracy"]["reason"]
    assert 'efimero_monitor_rounds_total{outcome="ok"}' in monitored.get("/metrics").text


def test_a_failing_round_is_reported_counted_and_the_loop_goes_on(monitored, monkeypatch) -> None:
    calls = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        calls.append(datetime.now(UTC))
        raise RuntimeError("the store vanished")

    monitored.post("/v1/predict", json=PHONE_AT_NIGHT)
    monkeypatch.setattr(monitoring_module, "check", broken)
    wait_for(lambda: len(calls) >= 3)
    status = monitored.get("/v1/monitor").json()
    assert status["running"] and status["error"] == "RuntimeError: the store vanished"
    assert 'efimero_monitor_rounds_total{outcome="failed"}' in monitored.get("/metrics").text


def test_the_loop_can_be_turned_off(registry_dir, tmp_path) -> None:
    settings = ServeSettings(models_dir=registry_dir[0], db_url=f"sqlite:///{tmp_path}/store.db", monitor_interval_s=0)
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/monitor").json()["running"] is False
