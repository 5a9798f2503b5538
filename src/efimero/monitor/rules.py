"""The retraining guidelines' anomaly rules, per version and arm, and the action each one calls for.

Rules and their defaults (``retraining.monitoring`` in ``config/retraining.yaml``):

====================  ==================================================  ========  ================
rule                  fires when                                          severity  action
====================  ==================================================  ========  ================
``accuracy_drop``     baseline accuracy − accuracy ≥ 0.05 (absolute)      high      rollback
``latency_increase``  p95 latency − baseline p95 ≥ 50 ms                  medium    traffic_halved
``error_rate``        failed / (served + failed) ≥ 0.02                   high      rollback
``prediction_drift``  PSI of served classes vs training predictions ≥ 0.15  low     alert
====================  ==================================================  ========  ================

A rule fires **at** its threshold, not only beyond it. The **baseline** of a candidate (any arm
but ``live``) is the live arm in the same window, so both saw the same visitors at the same
time; with several live versions in one window (a hot swap), the one that served most. The live
arm's baseline is the same version on the live arm in the previous window. Error rate and
prediction drift are absolute and need no baseline.

The action follows the severity: ``high`` → ``rollback`` (a candidate's traffic to zero, the live
version back to the previous one), ``medium`` → ``traffic_halved`` for a candidate (on the live
arm there is no other version to take the traffic, so only ``alert``), ``low`` → ``alert``.
The rollout controller carries actions out; this module only says which one each anomaly calls for.

Every rule ends ``anomaly``, ``ok`` or ``inconclusive``: when the version or its baseline has too
few sessions or predictions, or nothing to compare with, the reason is given and it is never
counted as ``ok``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from efimero.store import LIVE_ARM

if TYPE_CHECKING:
    from efimero.config import MonitoringRules
    from efimero.monitor.online import Measure, VersionWindow

ANOMALY, OK, INCONCLUSIVE = "anomaly", "ok", "inconclusive"
RULES = ("accuracy_drop", "latency_increase", "error_rate", "prediction_drift")
ACTIONS = {"high": "rollback", "medium": "traffic_halved", "low": "alert"}
"""What each severity calls for (on a candidate; see :func:`action_for`)."""
_TOLERANCE = 1e-9
"""Floating-point slack at a threshold: 0.70 − 0.65 is 0.04999999999999993, and must fire at 0.05."""


def action_for(severity: str, arm: str) -> str:
    """The action an anomaly of ``severity`` on ``arm`` calls for."""
    action = ACTIONS[severity]
    return "alert" if action == "traffic_halved" and arm == LIVE_ARM else action


@dataclass(frozen=True)
class RuleResult:
    """One rule checked on one version and arm in one window."""

    rule: str
    model_version: str
    arm: str
    window_start: datetime
    window_end: datetime
    outcome: str
    """``anomaly``, ``ok`` or ``inconclusive``."""
    value: float | None
    """The version's metric in the window (accuracy, latency in ms, error rate or PSI)."""
    baseline: float | None
    """The metric it was compared with; None for the absolute rules (error rate, drift)."""
    threshold: float
    """The allowed drop or rise for comparative rules; the level for absolute ones."""
    severity: str
    action: str | None
    """What an anomaly calls for (``rollback``, ``traffic_halved``, ``alert``); None unless an anomaly."""
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "model_version": self.model_version, "arm": self.arm,
            "window_start": self.window_start.isoformat(), "window_end": self.window_end.isoformat(),
            "outcome": self.outcome, "value": self.value, "baseline": self.baseline, "threshold": self.threshold,
            "severity": self.severity, "action": self.action, "message": self.message,
        }


@dataclass(frozen=True)
class _Baseline:
    window: VersionWindow | None
    label: str
    """Where the baseline comes from, or why there is none."""


def evaluate(current: list[VersionWindow], previous: list[VersionWindow],
             rules: MonitoringRules) -> list[RuleResult]:
    """Every rule on every version and arm of ``current``, with ``previous`` as the live arm's baseline.

    Example:
        >>> results = evaluate(window_metrics(engine, start=a, end=b), window_metrics(engine, start=a - w, end=a),
        ...                    load_retraining_config().retraining.monitoring)  # doctest: +SKIP
        >>> [(r.rule, r.arm, r.outcome) for r in results if r.outcome != "ok"]  # doctest: +SKIP
        [('accuracy_drop', 'canary', 'anomaly'), ('prediction_drift', 'canary', 'inconclusive')]
    """
    return [result for window in current
            for result in _check_window(window, _baseline(window, current, previous), rules)]


def _check_window(window: VersionWindow, baseline: _Baseline, rules: MonitoringRules) -> list[RuleResult]:
    check = _Checker(window, rules)
    percentile = rules.latency_percentile
    worst_class = max(window.drift_by_class, key=window.drift_by_class.__getitem__, default="")
    requests = window.predictions + window.errors
    return [
        check.compared("accuracy_drop", lambda w: w.accuracy, baseline, rules.accuracy_drop, sign=-1,
                       name="online accuracy", unit="", digits=3),
        check.compared("latency_increase", lambda w: w.latency_ms[percentile], baseline,
                       rules.latency_increase_ms, sign=+1, name=f"{percentile} latency", unit=" ms", digits=1),
        check.absolute("error_rate", window.error_rate, rules.error_rate,
                       lambda v: f"error rate {v:.2%} ({window.errors} of {requests} requests failed)"),
        check.absolute("prediction_drift", window.prediction_drift, rules.prediction_drift,
                       lambda v: f"served classes drifted from the training predictions: PSI {v:.3f} ({worst_class})"),
    ]


def _baseline(window: VersionWindow, current: list[VersionWindow], previous: list[VersionWindow]) -> _Baseline:
    if window.arm != LIVE_ARM:
        live = [w for w in current if w.arm == LIVE_ARM]
        if not live:
            return _Baseline(None, "no live-arm traffic in the same window to compare with")
        chosen = max(live, key=lambda w: (w.predictions, w.sessions))
        return _Baseline(chosen, f"the live arm ({chosen.model_version}) in the same window")
    before = [w for w in previous if w.arm == LIVE_ARM and w.model_version == window.model_version]
    if not before:
        return _Baseline(None, f"no previous window of {window.model_version} on the live arm to compare with")
    return _Baseline(before[0], "the previous window")


def _reaches(change: float, threshold: float) -> bool:
    return change >= threshold or math.isclose(change, threshold, rel_tol=0, abs_tol=_TOLERANCE)


class _Checker:
    """Builds the results of one version and arm's window."""

    def __init__(self, window: VersionWindow, rules: MonitoringRules) -> None:
        self.window = window
        self.severities = rules.severities

    def _result(self, rule: str, outcome: str, value: float | None, baseline: float | None, threshold: float,
                message: str) -> RuleResult:
        severity: str = getattr(self.severities, rule)
        w = self.window
        action = action_for(severity, w.arm) if outcome == ANOMALY else None
        return RuleResult(rule, w.model_version, w.arm, w.start, w.end, outcome, value, baseline, threshold,
                          severity, action, message)

    def compared(self, rule: str, metric: Callable[[VersionWindow], Measure], baseline: _Baseline,
                 threshold: float, *, sign: int, name: str, unit: str, digits: int) -> RuleResult:
        """``sign`` +1: fires when the metric rose by ``threshold`` over the baseline's; −1: when it fell by it."""
        mine = metric(self.window)
        if mine.value is None:
            return self._result(rule, INCONCLUSIVE, None, None, threshold, f"not measured: {mine.reason}")
        if baseline.window is None:
            return self._result(rule, INCONCLUSIVE, mine.value, None, threshold, f"no baseline: {baseline.label}")
        theirs = metric(baseline.window)
        if theirs.value is None:
            return self._result(rule, INCONCLUSIVE, mine.value, None, threshold,
                                f"baseline {baseline.label} not measured: {theirs.reason}")
        change = sign * (mine.value - theirs.value)
        outcome = ANOMALY if _reaches(change, threshold) else OK
        return self._result(rule, outcome, mine.value, theirs.value, threshold,
                            f"{name} {mine.value:.{digits}f}{unit} against {theirs.value:.{digits}f}{unit} of "
                            f"{baseline.label}: {'up' if sign > 0 else 'down'} {abs(change):.{digits}f}{unit} "
                            f"(limit {threshold:g}{unit})")

    def absolute(self, rule: str, measure: Measure, threshold: float, describe: Callable[[float], str]) -> RuleResult:
        """Fires when the measured value itself reaches ``threshold``."""
        if measure.value is None:
            return self._result(rule, INCONCLUSIVE, None, None, threshold, f"not measured: {measure.reason}")
        outcome = ANOMALY if _reaches(measure.value, threshold) else OK
        return self._result(rule, outcome, measure.value, None, threshold,
                            f"{describe(measure.value)} (limit {threshold:g})")
