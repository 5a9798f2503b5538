"""Window metrics per version and arm, on stores holding known rows (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from efimero.monitor import window_metrics
from efimero.monitor.online import training_predictions
from efimero.registry import Registry
from tests.monitor.conftest import AMBIGUOUS, CONFIRMED, NOW, REJECTED, SERVED, Traffic

START = NOW - timedelta(minutes=5)


def test_every_metric_of_a_version_and_arm_from_known_rows(traffic: Traffic) -> None:
    rated = [dict(CONFIRMED, user_satisfaction=5)] * 20 + [dict(REJECTED, user_satisfaction=1)] * 10
    traffic.serve("v_1", "live", count=120, latency_ms=[float(n) for n in range(1, 121)], errors=3,
                  sessions=rated + [CONFIRMED] * 10 + [AMBIGUOUS] * 8 + [REJECTED] * 2)
    traffic.serve("v_1", "live", count=50, when=START - timedelta(seconds=1))  # the window before: left out
    traffic.serve("v_1", "live", count=50, when=NOW)  # the window's end is exclusive
    (live,) = window_metrics(traffic.engine, start=START, end=NOW)
    assert (live.model_version, live.arm, live.predictions, live.errors, live.sessions) == ("v_1", "live", 120, 3, 50)
    assert live.verdicts == {"confirmed": 30, "rejected": 12, "ambiguous": 8}
    assert live.accuracy.value == 0.6 and live.accuracy.count == 50  # ambiguous sessions are judged too
    assert live.session_duration_s.value == pytest.approx((30 * 150 + 8 * 60 + 12 * 20) / 50)
    assert live.bounce_rate.value == pytest.approx((30 * 0.1 + 8 * 0.2 + 12 * 0.6) / 50)
    assert live.scroll_depth.value == pytest.approx((30 * 0.8 + 8 * 0.5 + 12 * 0.2) / 50)
    assert (live.rating.value, live.rating.count) == (pytest.approx(11 / 3), 30)
    latencies = np.arange(1, 121, dtype=float)
    assert {name: m.value for name, m in live.latency_ms.items()} == pytest.approx(
        {"p50": np.percentile(latencies, 50), "p95": np.percentile(latencies, 95), "p99": np.percentile(latencies, 99)})
    assert live.error_rate.value == pytest.approx(3 / 123) and live.error_rate.count == 123
    assert live.prediction_drift.value is None and "no registry" in str(live.prediction_drift.reason)


def test_too_few_observations_are_unmeasured_with_the_reason_never_zero(traffic: Traffic) -> None:
    traffic.serve("v_2", "canary", count=20, sessions=[CONFIRMED] * 10, latency_ms=None, errors=1)
    traffic.serve("v_1", "live", count=150, latency_ms=[None] * 100 + [5.0] * 50)
    canary, live = sorted(window_metrics(traffic.engine, start=START, end=NOW), key=lambda w: w.arm)
    assert canary.arm == "canary" and canary.sessions == 10
    for measure, reason in ((canary.accuracy, "10 judged sessions, fewer than the 30 needed"),
                            (canary.session_duration_s, "10 sessions, fewer than the 30 needed"),
                            (canary.rating, "0 ratings, fewer than the 30 needed"),
                            (canary.latency_ms["p95"], "0 predictions with a latency, fewer than the 100 needed"),
                            (canary.error_rate, "21 requests (served and failed), fewer than the 100 needed"),
                            (canary.prediction_drift, "20 predictions, fewer than the 100 needed")):
        assert (measure.value, measure.reason) == (None, reason)
    assert live.latency_ms["p50"].value is None
    assert live.latency_ms["p50"].reason == "only 50 of 150 predictions recorded their latency"
    assert live.error_rate.value == 0.0  # enough requests, none failed: a measured zero


def test_a_version_that_only_fails_is_still_reported(traffic: Traffic) -> None:
    traffic.serve("v_3", "canary", count=0, errors=100)
    (window,) = window_metrics(traffic.engine, start=START, end=NOW)
    assert (window.model_version, window.predictions, window.error_rate.value) == ("v_3", 0, 1.0)


def _served_like(expected: list[dict[str, str]], count: int) -> list[dict[str, str]]:
    return [{target.removeprefix("css_class_"): label for target, label in row.items()}
            for row in (expected * (count // len(expected) + 1))[:count]]


def test_prediction_drift_against_the_versions_predictions_on_its_training_data(
    sqlite_traffic: Traffic, tiny_registry: tuple[Path, list[str]]
) -> None:
    root, versions = tiny_registry
    expected = training_predictions(root, versions[0]).to_dict("records")
    sqlite_traffic.serve(versions[0], "live", count=len(expected), classes=_served_like(expected, len(expected)))
    sqlite_traffic.serve(versions[1], "canary", count=200, classes=[dict(SERVED, theme="tema-alto-contraste")] * 200)
    sqlite_traffic.serve("v_20990101_000000", "other", count=100)
    windows = {w.arm: w for w in window_metrics(sqlite_traffic.engine, start=START, end=NOW, registry=Registry(root))}
    assert windows["live"].prediction_drift.value == pytest.approx(0.0, abs=1e-9)  # served as it predicts on training
    assert set(windows["live"].drift_by_class) == {"css_class_density", "css_class_font", "css_class_theme"}
    drifted = windows["canary"]
    assert drifted.prediction_drift.value == max(drifted.drift_by_class.values()) > 1
    assert "version 'v_20990101_000000' does not exist" in str(windows["other"].prediction_drift.reason)


def test_the_monitor_imports_neither_the_service_nor_deployment_nor_pandera() -> None:
    script = ("import json, sys, efimero.monitor\n"
              "print(json.dumps([m for m in ('efimero.serve', 'efimero.deploy', 'pandera') if m in sys.modules]))")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(loaded.stdout) == []

