"""Retraining triggers of the guidelines: time, new-data volume, online performance, negative feedback, drift.

Every trigger ends in one of four states: ``fired``, ``not_fired``, ``not_run`` — it could not
be checked (no session in the window, the live version's training data unreadable, ...), and
``detail`` says why — or ``disabled`` in the config. ``not_run`` is never folded into
``not_fired``: a drift check without reference data has not shown that nothing drifted.

Performance, negative feedback, prediction drift and feature drift look at every valid session
of the window, labelled or not (:mod:`efimero.collect.collect` says why). Feature drift compares
them with every training file of the live version and holds the share of drifted features,
weighted by the live model's importance, against ``feature_drift_threshold``; the unweighted
share is recorded beside it, and the detail says when importance was missing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from efimero.bundle import ModelBundle
from efimero.collect import CollectResult
from efimero.collect.collect import online_accuracy
from efimero.config import NegativeFeedbackTrigger, PerformanceTrigger, Triggers
from efimero.monitor.drift import ReferenceData
from efimero.monitor.drift.psi import psi_categorical
from efimero.schema import CSS_TASK

FIRED, NOT_FIRED, NOT_RUN, DISABLED = "fired", "not_fired", "not_run", "disabled"
STATUSES = (FIRED, NOT_FIRED, NOT_RUN, DISABLED)


@dataclass(frozen=True)
class Trigger:
    """One trigger's state, the value and threshold that decided it, and the reason in words."""

    name: str
    enabled: bool
    status: str  # one of STATUSES
    value: float | None
    threshold: float | None
    detail: str
    measures: dict[str, Any] = field(default_factory=dict)
    """Further numbers behind the value (e.g. both drift shares), for the run record."""

    @property
    def fired(self) -> bool:
        return self.status == FIRED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"fired": self.fired}


def _checked(name: str, enabled: bool, fires: bool, value: float, threshold: float, detail: str,
             **measures: Any) -> Trigger:
    """A trigger that could be evaluated: fired or not, unless disabled."""
    if not enabled:
        return Trigger(name, enabled, DISABLED, value, threshold, f"disabled in the config; {detail}", measures)
    return Trigger(name, enabled, FIRED if fires else NOT_FIRED, value, threshold, detail, measures)


def _not_run(name: str, enabled: bool, threshold: float | None, reason: str) -> Trigger:
    """A trigger that could not be evaluated, and why."""
    if not enabled:
        return Trigger(name, enabled, DISABLED, None, threshold, f"disabled in the config; {reason}")
    return Trigger(name, enabled, NOT_RUN, None, threshold, reason)


def days_since_training(bundle: ModelBundle, now: datetime) -> float:
    created = datetime.fromisoformat(bundle.metadata["created_at"])
    return max((now - created).total_seconds() / 86_400, 0.0)


def _performance(judged: pd.DataFrame, settings: PerformanceTrigger) -> Trigger:
    if judged.empty:
        return _not_run("performance", settings.enabled, settings.accuracy_threshold, "no valid session in the window")
    times = pd.to_datetime(judged["event_time"], utc=True)
    window = timedelta(hours=settings.monitoring_window_hours)
    recent = judged[times > times.max() - window]
    before = judged[(times <= times.max() - window) & (times > times.max() - 2 * window)]
    now, earlier = online_accuracy(recent), online_accuracy(before)
    assert now is not None, "the window always holds the newest session"
    drop = (earlier - now) / earlier if earlier else 0.0
    low, fell = now < settings.accuracy_threshold, drop > settings.max_drop_percentage
    detail = (f"online accuracy {now:.3f} over the last {settings.monitoring_window_hours:g} h "
              f"(threshold {settings.accuracy_threshold:g})")
    if earlier is not None:
        detail += (f", {earlier:.3f} the {settings.monitoring_window_hours:g} h before "
                   f"(drop {drop:+.1%}, max {settings.max_drop_percentage:.0%})")
    return _checked("performance", settings.enabled, low or fell, now, settings.accuracy_threshold, detail)


def _negative_feedback(judged: pd.DataFrame, settings: NegativeFeedbackTrigger) -> Trigger:
    threshold = settings.max_negative_share
    if judged.empty:
        return _not_run("negative_feedback", settings.enabled, threshold, "no valid session in the window")
    negative = int(judged["negative_feedback"].sum())
    share = negative / len(judged)
    return _checked("negative_feedback", settings.enabled, share > threshold, share, threshold,
                    f"{negative} of {len(judged)} sessions gave negative feedback (rated 1–2 or named another class)",
                    sessions=len(judged), negative=negative)


def _feature_drift(collected: CollectResult, triggers: Triggers) -> Trigger:
    settings = triggers.drift
    report = collected.drift
    if report is None:
        reason = collected.quality.drift_not_run or "the collection did not measure drift"
        return _not_run("feature_drift", settings.enabled, settings.feature_drift_threshold, reason)
    share = report.decision_share
    drifted = ", ".join(report.drifted_features) or "none"
    return _checked("feature_drift", settings.enabled, share > settings.feature_drift_threshold, share,
                    settings.feature_drift_threshold,
                    f"{report.share_text} of {len(report.features)} features over {report.current_rows} sessions; "
                    f"drifted: {drifted}",
                    unweighted_share=report.drift_share, weighted_share=report.weighted_drift_share,
                    share_basis=report.share_basis, drifted_features=report.drifted_features,
                    sessions=report.current_rows)


def _prediction_drift(bundle: ModelBundle, reference: ReferenceData | None, judged: pd.DataFrame,
                      triggers: Triggers) -> Trigger:
    """Largest PSI between the classes served now and those the model predicts on its training data."""
    settings = triggers.drift
    threshold = settings.prediction_drift_threshold
    if reference is None or reference.frame is None:
        reason = "no reference data was given" if reference is None else str(reference.problem)
        return _not_run("prediction_drift", settings.enabled, threshold, reason)
    if judged.empty:
        return _not_run("prediction_drift", settings.enabled, threshold, "no valid session in the window")
    expected = bundle.predict_frame(reference.frame)
    scores = {target: psi_categorical(expected[target].to_numpy(), judged[target].to_numpy())
              for target in CSS_TASK.class_target_names if target in judged}
    worst = max(scores, key=scores.__getitem__)
    psi = float(np.round(scores[worst], 6))
    return _checked("prediction_drift", settings.enabled, psi > threshold, psi, threshold,
                    f"largest PSI of served classes: {worst} {scores[worst]:.3f}")


def evaluate(
    triggers: Triggers, *, bundle: ModelBundle, collected: CollectResult, reference: ReferenceData | None,
    now: datetime | None = None,
) -> list[Trigger]:
    """Every trigger, in its state, with the value and threshold that decided it.

    ``collected`` should come from :func:`~efimero.collect.collect` with ``validate`` and the same
    ``reference`` (the live version's training data, :func:`~efimero.monitor.drift.reference_of`):
    its drift report is the feature-drift trigger's measurement.
    """
    now = now or datetime.now(UTC)
    age = days_since_training(bundle, now)
    time_based = triggers.time_based
    volume = triggers.data_volume
    rows = len(collected.frame)
    return [
        _checked("time", time_based.enabled, age >= time_based.max_days_since_last, age,
                 time_based.max_days_since_last, f"{age:.1f} days since {bundle.version} was trained"),
        _checked("data_volume", volume.enabled, rows >= volume.min_new_samples, rows, volume.min_new_samples,
                 f"{rows} usable new rows in the last {volume.collection_window_days} days"),
        _performance(collected.judged, triggers.performance),
        _negative_feedback(collected.judged, triggers.negative_feedback),
        _feature_drift(collected, triggers),
        _prediction_drift(bundle, reference, collected.judged, triggers),
    ]
