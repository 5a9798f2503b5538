"""Triggers and the decision of `auto-retrain`: minimum age, negative feedback, importance-weighted drift."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from efimero.collect import CollectResult, QualityReport, collect
from efimero.collect.collect import session_drift
from efimero.config import load_retraining_config
from efimero.monitor.drift import ReferenceData, feature_importance, reference_of
from efimero.registry import Registry
from efimero.pipeline import auto_retrain, read_runs
from efimero.pipeline.auto import decide
from efimero.retrain.triggers import Trigger, evaluate
from efimero.schema import CSS_TASK
from tests.collect.conftest import ENGAGED, WINDOW, contexts, crafted_store  # noqa: F401 - fixture
from tests.monitor.test_weighted_drift import shifted


def trigger(name: str, status: str, detail: str = "") -> Trigger:
    return Trigger(name, True, status, None, None, detail)


def test_scheduled_mode_leaves_a_version_younger_than_min_days_alone(registry_copy, crafted_store,  # noqa: F811
                                                                     tmp_path) -> None:
    root, versions = registry_copy()
    url = crafted_store((context, ENGAGED) for context in contexts(80, seed=4))
    config = load_retraining_config(overrides={"retraining": {
        "models_dir": str(root), "data_collection": {"db_url": url, "output_dir": str(tmp_path / "prod")},
        "triggers": {"data_volume": {"min_new_samples": 1}}}})
    run = auto_retrain(config, mode="scheduled")
    assert "data_volume" in run.fired
    assert run.outcome == "skipped" and run.new_version is None, run
    assert "younger than time_based.min_days_since_last (7 days)" in run.decision
    assert Registry(root).versions() == versions and Registry(root).current() == versions[-1]
    assert read_runs(root)[-1]["decision"] == run.decision


def test_the_decision_names_age_fired_and_unchecked_triggers() -> None:
    settings = load_retraining_config().retraining
    fired = [trigger("data_volume", "fired"), trigger("feature_drift", "not_run", "version v_1 records no sha256")]
    old = decide("scheduled", settings, fired, age_days=8.0)
    assert old.retrain and "fired: data_volume" in old.reason
    assert "could not check: feature_drift (version v_1 records no sha256)" in old.reason
    assert not decide("scheduled", settings, fired, age_days=6.9).retrain
    assert decide("force", settings, fired, age_days=0.0).retrain
    nothing = decide("scheduled", settings, [trigger("feature_drift", "not_run", "no session")], age_days=40.0)
    assert not nothing.retrain and nothing.reason.startswith("no trigger fired")
    assert "could not check: feature_drift" in nothing.reason
    untimed = load_retraining_config(overrides={"retraining": {"triggers": {"time_based": {"enabled": False}}}})
    assert decide("scheduled", untimed.retraining, fired, age_days=0.0).retrain


@pytest.mark.parametrize(("negative", "status"), [(24, "fired"), (16, "not_fired")])
def test_negative_feedback_fires_above_a_quarter_of_the_sessions(tiny_registry, crafted_store,  # noqa: F811
                                                                 negative, status) -> None:
    visits = contexts(80, seed=9)
    low_rating, other_class = negative // 2, negative - negative // 2
    behaviours = ([ENGAGED | {"user_satisfaction": 2}] * low_rating
                  + [ENGAGED | {"ui_preference_feedback": "mejor densidad-alta"}] * other_class
                  + [ENGAGED | {"user_satisfaction": 5, "ui_preference_feedback": "densidad-media"}] * (80 - negative))
    url = crafted_store(zip(visits, behaviours))
    collected = collect(url, start_date=WINDOW[0], end_date=WINDOW[1])
    settings = load_retraining_config().retraining.triggers
    triggers = evaluate(settings, bundle=Registry(tiny_registry[0]).load(), collected=collected, reference=None)
    [feedback] = [t for t in triggers if t.name == "negative_feedback"]
    assert feedback.status == status and feedback.value == pytest.approx(negative / 80)
    assert feedback.threshold == 0.25 and f"{negative} of 80 sessions" in feedback.detail
    assert {t.status for t in triggers if t.name.endswith("drift")} == {"not_run"}


def window_of(frame: pd.DataFrame, reference: ReferenceData) -> CollectResult:
    """A collection whose sessions have ``frame``'s features, drift measured against ``reference``."""
    judged = frame[CSS_TASK.feature_names + CSS_TASK.class_target_names].assign(
        event_time=datetime(2026, 11, 7, tzinfo=timezone.utc), status="confirmed", negative_feedback=False)
    quality = QualityReport(total=len(frame), valid=len(frame))
    drift = session_drift(reference, judged, quality)
    return CollectResult(datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 8, tzinfo=timezone.utc),
                         frame.iloc[:0], quality, judged=judged, drift=drift)


def test_feature_drift_weighs_features_by_the_live_models_importance(tiny_registry, small_frame) -> None:
    bundle = Registry(tiny_registry[0]).load()
    reference = reference_of(bundle)  # the tiny registry's own training file
    importance = feature_importance(bundle)
    ranked = sorted(importance, key=importance.__getitem__, reverse=True)
    settings = load_retraining_config().retraining.triggers
    assert settings.drift.feature_drift_threshold == 0.20

    def feature_drift(columns: list[str]) -> Trigger:
        triggers = evaluate(settings, bundle=bundle, collected=window_of(shifted(small_frame, columns), reference),
                            reference=reference)
        return next(t for t in triggers if t.name == "feature_drift")

    important = feature_drift(ranked[:3])
    assert important.measures["unweighted_share"] == pytest.approx(3 / 19)  # under 0.20 alone
    assert important.status == "fired" and important.value == important.measures["weighted_share"] > 0.20
    assert "importance-weighted drift share" in important.detail

    unused = feature_drift(ranked[-4:])
    assert unused.measures["unweighted_share"] == pytest.approx(4 / 19)  # over 0.20 alone
    assert unused.status == "not_fired" and unused.value < 0.05
    assert set(unused.measures["drifted_features"]) == set(ranked[-4:])
