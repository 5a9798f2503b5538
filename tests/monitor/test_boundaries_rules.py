"""What each anomaly rule records at and around its boundary (found by `make mutation`).

The floating-point slack at a threshold is absolute (1e-9), so a latency 10 ns under its 50 ms limit
is under it; every result, inconclusive ones included, keeps the threshold it was held to and what
was measured, and says which way a compared metric moved.
"""

from __future__ import annotations

from efimero.monitor import evaluate
from tests.monitor.test_rules import LIVE, RULES, result, window


def test_the_slack_at_a_threshold_is_absolute_not_relative() -> None:
    under = result(evaluate([LIVE, window(p95=70.0 - 1e-8)], [], RULES), "latency_increase")
    assert under.outcome == "ok"  # 1e-8 ms under 50 ms: over the 1e-9 slack, under 50 ms × 1e-9


def test_a_rise_reads_up_and_a_fall_reads_down() -> None:
    results = evaluate([LIVE, window(accuracy=0.7, p95=75.0)], [], RULES)
    latency, accuracy = result(results, "latency_increase"), result(results, "accuracy_drop")
    assert latency.message == ("p95 latency 75.0 ms against 20.0 ms of the live arm (v_1) in the same window: "
                               "up 55.0 ms (limit 50 ms)")
    assert (latency.value, latency.baseline, latency.threshold) == (75.0, 20.0, 50)
    assert accuracy.message.endswith(": down 0.100 (limit 0.05)")


def test_an_absolute_rule_records_its_value_and_limit_either_way() -> None:
    for error_rate, outcome in ((0.0199, "ok"), (0.02, "anomaly")):
        found = result(evaluate([LIVE, window(error_rate=error_rate)], [], RULES), "error_rate")
        assert (found.outcome, found.value, found.baseline, found.threshold) == (outcome, error_rate, None, 0.02)
        assert found.message == f"error rate {error_rate:.2%} (4 of 200 requests failed) (limit 0.02)"


def test_an_inconclusive_result_keeps_the_threshold_and_what_was_measured() -> None:
    unmeasured = result(evaluate([LIVE, window(error_rate=None)], [], RULES), "error_rate")
    assert (unmeasured.value, unmeasured.threshold) == (None, 0.02)
    assert unmeasured.message == "not measured: 3 judged sessions, fewer than the 30 needed"
    few = result(evaluate([LIVE, window(accuracy=None)], [], RULES), "accuracy_drop")
    assert (few.value, few.baseline, few.threshold) == (None, None, 0.05)
    alone = result(evaluate([window(p95=900.0)], [], RULES), "latency_increase")
    assert (alone.outcome, alone.value, alone.baseline, alone.threshold) == ("inconclusive", 900.0, None, 50)
    unmeasured_live = result(evaluate([window("v_1", "live", accuracy=None), window(accuracy=0.1)], [], RULES),
                             "accuracy_drop")
    assert (unmeasured_live.outcome, unmeasured_live.value, unmeasured_live.baseline, unmeasured_live.threshold) == (
        "inconclusive", 0.1, None, 0.05)
