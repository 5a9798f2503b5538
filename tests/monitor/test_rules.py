"""The anomaly rules: each fires at and over its boundary and not under it; too little data is inconclusive."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from efimero.config import MonitoringRules, load_retraining_config
from efimero.errors import ConfigError
from efimero.monitor import Measure, RuleResult, VersionWindow, check, evaluate
from tests.monitor.conftest import NOW, PREVIOUS_WINDOW, Traffic, sessions_with_accuracy

ROOT = Path(__file__).parents[2]
RULES = MonitoringRules()
START = NOW - timedelta(minutes=5)


def window(version: str = "v_2", arm: str = "canary", *, accuracy: float | None = 0.8, p95: float | None = 20.0,
           error_rate: float | None = 0.0, drift: float | None = 0.01, start=START) -> VersionWindow:
    def measure(value: float | None) -> Measure:
        return Measure(value, 200, None if value is not None else "3 judged sessions, fewer than the 30 needed")

    return VersionWindow(
        model_version=version, arm=arm, start=start, end=start + timedelta(minutes=5), predictions=196, errors=4,
        sessions=200, verdicts={}, accuracy=measure(accuracy), session_duration_s=measure(60.0),
        bounce_rate=measure(0.2), scroll_depth=measure(0.5), rating=measure(4.0),
        latency_ms={"p50": measure(10.0), "p95": measure(p95), "p99": measure(30.0)},
        error_rate=measure(error_rate), prediction_drift=measure(drift),
        drift_by_class={"css_class_theme": drift} if drift is not None else {},
    )


LIVE = window("v_1", "live")


def result(results: list[RuleResult], rule: str, arm: str = "canary") -> RuleResult:
    (found,) = [r for r in results if r.rule == rule and r.arm == arm]
    return found


@pytest.mark.parametrize(("rule", "candidate", "fires"), [
    ("accuracy_drop", {"accuracy": 0.75}, True),       # exactly 0.05 below the live arm's 0.80
    ("accuracy_drop", {"accuracy": 0.60}, True),
    ("accuracy_drop", {"accuracy": 0.7501}, False),
    ("latency_increase", {"p95": 70.0}, True),         # exactly 50 ms above the live arm's 20 ms
    ("latency_increase", {"p95": 69.9}, False),
    ("error_rate", {"error_rate": 0.02}, True),
    ("error_rate", {"error_rate": 0.0199}, False),
    ("prediction_drift", {"drift": 0.15}, True),
    ("prediction_drift", {"drift": 0.1499}, False),
])
def test_each_rule_fires_at_its_boundary_and_not_under_it(rule: str, candidate: dict, fires: bool) -> None:
    found = result(evaluate([LIVE, window(**candidate)], [], RULES), rule)
    assert found.outcome == ("anomaly" if fires else "ok"), found.message
    assert found.action == ({"accuracy_drop": "rollback", "latency_increase": "traffic_halved",
                             "error_rate": "rollback", "prediction_drift": "alert"}[rule] if fires else None)
    assert found.severity == {"accuracy_drop": "high", "latency_increase": "medium", "error_rate": "high",
                              "prediction_drift": "low"}[rule]


def test_a_boundary_reached_through_floating_point_still_fires() -> None:
    found = result(evaluate([window("v_1", "live", accuracy=0.70), window(accuracy=0.65)], [], RULES),
                   "accuracy_drop")  # 0.70 - 0.65 == 0.04999999999999993
    assert found.outcome == "anomaly"
    assert found.message == ("online accuracy 0.650 against 0.700 of the live arm (v_1) in the same window: "
                             "down 0.050 (limit 0.05)")
    assert (found.value, found.baseline, found.threshold) == (0.65, 0.70, 0.05)


def test_the_live_arm_is_compared_with_its_previous_window_and_only_alerted_on_latency() -> None:
    earlier = window("v_1", "live", start=START - timedelta(minutes=5))
    results = evaluate([window("v_1", "live", accuracy=0.70, p95=80.0)], [earlier], RULES)
    accuracy, latency = result(results, "accuracy_drop", "live"), result(results, "latency_increase", "live")
    assert (accuracy.outcome, accuracy.action, accuracy.baseline) == ("anomaly", "rollback", 0.8)
    assert "of the previous window" in accuracy.message
    assert (latency.outcome, latency.action) == ("anomaly", "alert")  # no other version to take its traffic


def test_too_few_sessions_or_no_baseline_is_inconclusive_never_a_pass() -> None:
    few = result(evaluate([LIVE, window(accuracy=None)], [], RULES), "accuracy_drop")
    assert (few.outcome, few.message) == ("inconclusive", "not measured: 3 judged sessions, fewer than the 30 needed")
    baseline_few = result(evaluate([window("v_1", "live", accuracy=None), window(accuracy=0.1)], [], RULES),
                          "accuracy_drop")
    assert baseline_few.outcome == "inconclusive" and "baseline the live arm (v_1)" in baseline_few.message
    alone = evaluate([window(accuracy=0.1, p95=900.0)], [], RULES)
    for rule in ("accuracy_drop", "latency_increase"):
        found = result(alone, rule)
        assert (found.outcome, found.action) == ("inconclusive", None)
        assert found.message == "no baseline: no live-arm traffic in the same window to compare with"
    first = result(evaluate([LIVE], [], RULES), "accuracy_drop", "live")
    assert first.outcome == "inconclusive" and "no previous window of v_1 on the live arm" in first.message
    unmeasured = result(evaluate([LIVE, window(drift=None)], [], RULES), "prediction_drift")
    assert unmeasured.outcome == "inconclusive"


def test_severities_thresholds_and_the_latency_percentile_come_from_the_config() -> None:
    rules = MonitoringRules(latency_percentile="p50", latency_increase_ms=5,
                            severities={"latency_increase": "high", "prediction_drift": "medium"})
    results = evaluate([LIVE, window(drift=0.9)], [], rules)
    assert result(results, "latency_increase").outcome == "ok"  # p50 10 ms on both arms
    drift = result(results, "prediction_drift")
    assert (drift.severity, drift.action) == ("medium", "traffic_halved")


def test_the_shipped_config_holds_the_guidelines_rules() -> None:
    shipped = load_retraining_config(ROOT / "config" / "retraining.yaml").retraining.monitoring
    assert shipped == MonitoringRules()
    assert (shipped.window_minutes, shipped.accuracy_drop, shipped.latency_increase_ms, shipped.error_rate,
            shipped.prediction_drift) == (5, 0.05, 50, 0.02, 0.15)
    with pytest.raises(ConfigError, match=r"retraining\.monitoring\.webhook_url"):
        load_retraining_config(overrides={"retraining": {"monitoring": {"webhook_url": "hooks.local/x"}}})


def test_check_compares_a_candidate_with_the_live_arm_of_the_same_window(sqlite_traffic: Traffic) -> None:
    sqlite_traffic.serve("v_1", "live", count=150, sessions=sessions_with_accuracy(40, 50))
    sqlite_traffic.serve("v_1", "live", count=150, sessions=sessions_with_accuracy(40, 50), when=PREVIOUS_WINDOW)
    sqlite_traffic.serve("v_2", "canary", count=150, sessions=sessions_with_accuracy(35, 50), latency_ms=65.0)
    report = check(sqlite_traffic.engine, RULES, now=NOW.replace(tzinfo=None))  # naive: UTC
    assert (report.start, report.end) == (START, NOW)
    assert [(a.rule, a.model_version, a.arm, a.action) for a in report.anomalies] == [
        ("accuracy_drop", "v_2", "canary", "rollback"), ("latency_increase", "v_2", "canary", "traffic_halved")]
    assert {(r.rule, r.arm) for r in report.inconclusive} == {("prediction_drift", "canary"),
                                                             ("prediction_drift", "live")}  # no registry
    assert result(report.results, "accuracy_drop", "live").outcome == "ok"  # 0.8 as in the previous window
    payload = report.to_dict()
    assert payload["window"]["minutes"] == 5 and len(payload["checks"]) == 8 and len(payload["anomalies"]) == 2
