"""Retraining triggers of the guidelines: time, new-data volume, online performance, drift."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from efimero.collect import CollectResult
from efimero.collect.collect import online_accuracy
from efimero.config import Triggers
from efimero.monitor import detect_drift
from efimero.monitor.drift.psi import psi_categorical
from efimero.schema import CSS_TASK
from efimero.training import ModelBundle


@dataclass(frozen=True)
class Trigger:
    name: str
    enabled: bool
    fired: bool
    value: float | None
    threshold: float | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def days_since_training(bundle: ModelBundle, now: datetime) -> float:
    created = datetime.fromisoformat(bundle.metadata["created_at"])
    return max((now - created).total_seconds() / 86_400, 0.0)


def _performance(judged: pd.DataFrame, settings: Any) -> Trigger:
    if judged.empty:
        return Trigger("performance", settings.enabled, False, None, settings.accuracy_threshold, "no sessions to judge")
    times = pd.to_datetime(judged["event_time"], utc=True)
    window = timedelta(hours=settings.monitoring_window_hours)
    recent = judged[times > times.max() - window]
    before = judged[(times <= times.max() - window) & (times > times.max() - 2 * window)]
    now, earlier = online_accuracy(recent), online_accuracy(before)
    drop = (earlier - now) / earlier if earlier else 0.0
    low, fell = now < settings.accuracy_threshold, drop > settings.max_drop_percentage
    detail = (f"online accuracy {now:.3f} over the last {settings.monitoring_window_hours:g} h "
              f"(threshold {settings.accuracy_threshold:g})")
    if earlier is not None:
        detail += f", {earlier:.3f} the {settings.monitoring_window_hours:g} h before (drop {drop:+.1%}, max {settings.max_drop_percentage:.0%})"
    return Trigger("performance", settings.enabled, settings.enabled and (low or fell), now, settings.accuracy_threshold, detail)


def _prediction_drift(bundle: ModelBundle, reference: pd.DataFrame, judged: pd.DataFrame) -> tuple[float, str]:
    """Largest PSI between the classes served now and those the model predicts on its training data."""
    expected = bundle.predict_frame(reference)
    scores = {target: psi_categorical(expected[target].to_numpy(), judged[target].to_numpy())
              for target in CSS_TASK.class_target_names if target in judged}
    worst = max(scores, key=scores.get)
    return scores[worst], f"largest PSI of served classes: {worst} {scores[worst]:.3f}"


def evaluate(
    triggers: Triggers, *, bundle: ModelBundle, collected: CollectResult, reference: pd.DataFrame | None, now: datetime | None = None,
) -> list[Trigger]:
    """Every trigger, fired or not, with the value and threshold that decided it."""
    now = now or datetime.now(timezone.utc)
    age = days_since_training(bundle, now)
    time_based = triggers.time_based
    result = [Trigger("time", time_based.enabled, time_based.enabled and age >= time_based.max_days_since_last, age,
                      time_based.max_days_since_last, f"{age:.1f} days since {bundle.version} was trained")]
    volume = triggers.data_volume
    rows = len(collected.frame)
    result.append(Trigger("data_volume", volume.enabled, volume.enabled and rows >= volume.min_new_samples, rows,
                          volume.min_new_samples, f"{rows} usable new rows in the last {volume.collection_window_days} days"))
    result.append(_performance(collected.judged, triggers.performance))
    drift = triggers.drift
    if reference is None or collected.frame.empty:
        result += [Trigger(name, drift.enabled, False, None, None, "no reference data or no new rows")
                   for name in ("feature_drift", "prediction_drift")]
        return result
    report = detect_drift(reference[CSS_TASK.feature_names], collected.frame[CSS_TASK.feature_names], prediction_columns=[])
    share = report.drift_share
    result.append(Trigger("feature_drift", drift.enabled, drift.enabled and share > drift.feature_drift_threshold, share,
                          drift.feature_drift_threshold,
                          f"{share:.0%} of features drifted: {', '.join(report.drifted_features) or 'none'}"))
    psi, detail = _prediction_drift(bundle, reference, collected.judged)
    result.append(Trigger("prediction_drift", drift.enabled, drift.enabled and psi > drift.prediction_drift_threshold,
                          float(np.round(psi, 6)), drift.prediction_drift_threshold, detail))
    return result
