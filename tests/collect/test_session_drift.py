"""Collection measures drift on every session of the window, labelled or not, and says when it cannot."""

from __future__ import annotations

from efimero.collect import collect
from efimero.collect.targets import negative_feedback
from efimero.monitor import detect_drift
from efimero.monitor.drift import ReferenceData
from efimero.schema import CSS_TASK
from tests.collect.conftest import AMBIGUOUS, ENGAGED, SERVED, WINDOW, contexts, reference_features
from tests.collect.test_rules import session

DEVICE_FEATURES = {"is_mobile", "is_tablet", "is_desktop", "touch_enabled", "viewport_width", "viewport_height"}


def reference(frame) -> ReferenceData:
    return ReferenceData("test reference", [], frame, None)


def test_drift_is_measured_on_every_session_not_on_the_labelled_selection(crafted_store) -> None:
    # phones never give a label here: the labelled rows are desktops and tablets only
    visits = contexts(800, seed=12)
    url = crafted_store((context, AMBIGUOUS if context["ua_mobile"] else ENGAGED) for context in visits)
    result = collect(url, start_date=WINDOW[0], end_date=WINDOW[1], validate=True,
                     reference=reference(reference_features(2000, seed=11)))
    assert result.statuses["ambiguous"] > 100 and len(result.frame) < len(result.judged) == 800

    features = CSS_TASK.feature_names
    labelled = detect_drift(reference_features(2000, seed=11)[features], result.frame[features])
    assert DEVICE_FEATURES & set(labelled.drifted_features), "the selection must skew the device features"
    assert result.drift is not None and result.drift.current_rows == 800
    assert not DEVICE_FEATURES & set(result.drift.drifted_features), result.drift.summary
    assert result.quality.drift_share == result.drift.drift_share <= 0.1
    assert result.quality.recommendation == "proceed"


def test_drift_that_cannot_be_measured_says_why_and_asks_for_caution(crafted_store) -> None:
    url = crafted_store((context, ENGAGED) for context in contexts(60, seed=2))
    missing = ReferenceData("version v_1", [], None, None, "training data file a.csv of version v_1 is gone")
    result = collect(url, start_date=WINDOW[0], end_date=WINDOW[1], validate=True, reference=missing)
    assert result.drift is None and result.quality.drift_share is None
    assert result.quality.drift_not_run == "training data file a.csv of version v_1 is gone"
    assert result.quality.recommendation == "caution"
    assert result.quality.to_dict()["drift_not_run"] == missing.problem
    unvalidated = collect(url, start_date=WINDOW[0], end_date=WINDOW[1])
    assert unvalidated.quality.drift_not_run is None and unvalidated.quality.recommendation == "proceed"


def test_negative_feedback_is_a_low_rating_or_naming_another_class() -> None:
    served = {"css_classes": dict(SERVED)}
    assert negative_feedback(session(user_satisfaction=2) | served)
    assert negative_feedback(session(user_satisfaction=1) | served)
    assert not negative_feedback(session(user_satisfaction=3) | served)
    assert negative_feedback(session(ui_preference_feedback="quiero densidad-alta") | served)
    assert not negative_feedback(session(ui_preference_feedback="me gusta densidad-media") | served)
    assert not negative_feedback(session(bounce_rate=0.9) | served), "behaviour alone is not feedback"
