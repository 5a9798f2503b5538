"""Each data-quality rule and each target rule of collection, on crafted logs."""

from __future__ import annotations

import pytest

from efimero.collect.quality import QualityReport, check_log
from efimero.collect.targets import WEIGHTS, judge, targets
from efimero.css import css_variables
from tests.collect.conftest import SERVED_VALUES
from tests.serve.conftest import PHONE_AT_NIGHT


def session(**changes) -> dict:
    base = {
        "context": PHONE_AT_NIGHT | {"session_id": "s"},
        "css_classes": {"density": "densidad-baja", "font": "fuente-sans", "theme": "tema-oscuro"},
        "css_variables": css_variables(SERVED_VALUES),
        "session_duration_ms": 60_000, "interactions_count": 3, "bounce_rate": 0.0, "scroll_depth": 0.5,
        "click_through_rate": 0.1, "user_satisfaction": None, "ui_preference_feedback": None,
        "page_load_time_ms": 300.0, "rendering_time_ms": 20.0,
    }
    return base | changes


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"session_duration_ms": -1}, "session_duration_ms must be ≥ 0"),
        ({"interactions_count": -2}, "interactions_count must be ≥ 0"),
        ({"page_load_time_ms": -5.0}, "page_load_time_ms must be ≥ 0"),
        ({"rendering_time_ms": -5.0}, "rendering_time_ms must be ≥ 0"),
        ({"bounce_rate": 1.2}, "bounce_rate must lie in [0, 1]"),
        ({"scroll_depth": -0.1}, "scroll_depth must lie in [0, 1]"),
        ({"click_through_rate": 2.0}, "click_through_rate must lie in [0, 1]"),
        ({"user_satisfaction": 9}, "user_satisfaction must lie in 1–5"),
        ({"context": PHONE_AT_NIGHT | {"viewport_width": 0}}, "context.viewport_width"),
        ({"context": PHONE_AT_NIGHT | {"device_pixel_ratio": -1}}, "context.device_pixel_ratio"),
        ({"context": {"viewport_width": 390}}, "context.local_time: Field required"),
    ],
)
def test_each_quality_rule_rejects_its_log(change, problem) -> None:
    features, problems = check_log(session(**change))
    assert features is None
    assert any(p.startswith(problem) for p in problems), problems


def test_a_valid_log_gives_the_services_features() -> None:
    features, problems = check_log(session())
    assert problems == [] and features["hour_of_day"] == 23 and features["is_mobile"] == 1


@pytest.mark.parametrize(
    ("share", "recommendation"), [(None, "proceed"), (0.1, "proceed"), (0.3, "proceed"), (0.31, "caution"), (0.51, "abort")]
)
def test_recommendation_follows_the_drift_share(share, recommendation) -> None:
    assert QualityReport(total=10, valid=10, drift_share=share).recommendation == recommendation


def test_engaged_or_satisfied_sessions_confirm_the_served_style() -> None:
    engaged = session(session_duration_ms=200_000, interactions_count=9, scroll_depth=0.9, bounce_rate=0.0)
    for log in (engaged, session(user_satisfaction=4)):
        verdict = judge(log)
        assert verdict.status == "confirmed"
        row, weight = targets(log, check_log(log)[0], verdict)
        assert row["css_class_density"] == "densidad-baja" and weight == WEIGHTS["confirmed"]
        assert row["font_size_base"] == pytest.approx(17.0, abs=0.01)


def test_rejected_sessions_get_the_heuristics_and_night_is_18_to_6() -> None:
    log = session(bounce_rate=1.0, interactions_count=0, rendering_time_ms=250.0,
                  css_classes={"density": "densidad-alta", "font": "fuente-mono", "theme": "tema-claro"})
    verdict = judge(log)
    assert verdict.status == "rejected"
    row, weight = targets(log, check_log(log)[0], verdict)
    assert (row["css_class_density"], row["css_class_theme"], row["css_class_font"]) == (
        "densidad-media", "tema-oscuro", "fuente-sans")
    assert row["animation_duration"] == 100 and weight == WEIGHTS["heuristic"]


def test_ambiguous_sessions_are_left_out_unless_the_visitor_said_what_they_want() -> None:
    assert not judge(session()).usable
    log = session(ui_preference_feedback="more like densidad-alta please, and fuente-serif")
    verdict = judge(log)
    assert verdict.usable and verdict.feedback == {"density": "densidad-alta", "font": "fuente-serif"}
    row, weight = targets(log, check_log(log)[0], verdict)
    assert (row["css_class_density"], row["css_class_font"], row["css_class_theme"]) == (
        "densidad-alta", "fuente-serif", "tema-oscuro")
    assert weight == WEIGHTS["feedback"]


def _rejected_at(local_time: str, **context) -> dict:
    return session(bounce_rate=1.0, interactions_count=0,
                   context=PHONE_AT_NIGHT | {"session_id": "s", "local_time": local_time} | context)


@pytest.mark.parametrize(("local_time", "theme"), [
    ("2026-11-25T17:59:00", "tema-claro"), ("2026-11-25T18:00:00", "tema-oscuro"),
    ("2026-11-25T23:59:00", "tema-oscuro"), ("2026-11-26T00:00:00", "tema-oscuro"),
    ("2026-11-26T05:59:00", "tema-oscuro"), ("2026-11-26T06:00:00", "tema-claro"),
])
def test_the_night_rule_holds_at_its_boundaries(local_time, theme) -> None:
    log = _rejected_at(local_time)
    row, _ = targets(log, check_log(log)[0], judge(log))
    assert row["css_class_theme"] == theme


def test_accessibility_needs_win_over_the_hour() -> None:
    log = _rejected_at("2026-11-25T12:00:00", prefers_contrast="more")
    row, _ = targets(log, check_log(log)[0], judge(log))
    assert (row["css_class_theme"], row["css_class_font"]) == ("tema-alto-contraste", "fuente-grande")


ENGAGED = {"session_duration_ms": 120_001, "interactions_count": 6, "scroll_depth": 0.71, "bounce_rate": 0.29}


@pytest.mark.parametrize("at_the_boundary", [
    {"session_duration_ms": 120_000}, {"interactions_count": 5}, {"scroll_depth": 0.7}, {"bounce_rate": 0.3},
])
def test_engagement_needs_every_threshold_strictly_passed(at_the_boundary) -> None:
    assert judge(session(**ENGAGED)).status == "confirmed"
    assert judge(session(**ENGAGED | at_the_boundary)).status != "confirmed"


@pytest.mark.parametrize(("rating", "status"), [(5, "confirmed"), (4, "confirmed"), (3, "ambiguous"),
                                                (2, "rejected"), (1, "rejected")])
def test_ratings_decide_at_their_boundaries(rating, status) -> None:
    assert judge(session(user_satisfaction=rating)).status == status


@pytest.mark.parametrize(("change", "status"), [
    ({"bounce_rate": 0.5}, "rejected"), ({"bounce_rate": 0.49}, "ambiguous"),
    ({"session_duration_ms": 29_999, "interactions_count": 0}, "rejected"),
    ({"session_duration_ms": 30_000, "interactions_count": 0}, "ambiguous"),
    ({"session_duration_ms": 29_999, "interactions_count": 1}, "ambiguous"),
])
def test_rejection_rules_hold_at_their_boundaries(change, status) -> None:
    assert judge(session(**change)).status == status
