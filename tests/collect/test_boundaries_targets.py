"""The numeric target rules of a rejected session at their boundaries (found by `make mutation`).

``efimero.collect.targets``: animation at most 100 ms when rendering took *over* 100 ms; font size
at least 19 px with accessibility needs. Served sizes travel in rem with 3 decimals (19 px is
served as 1.188rem, 19.008 px).
"""

from __future__ import annotations

import pytest

from efimero.collect.quality import check_log
from efimero.collect.targets import judge, targets
from efimero.css import css_variables
from tests.collect.conftest import SERVED_VALUES
from tests.serve.conftest import PHONE_AT_NIGHT

REJECTED = {"session_duration_ms": 10_000, "interactions_count": 0, "bounce_rate": 1.0, "scroll_depth": 0.0}


def row_of(*, rendering_time_ms: float = 20.0, served: dict[str, float] | None = None, behaviour: dict | None = None,
           **context) -> dict:
    """The target row of one session (rejected unless ``behaviour`` says otherwise)."""
    log = {
        "context": PHONE_AT_NIGHT | {"session_id": "s"} | context,
        "css_classes": {"density": "densidad-baja", "font": "fuente-sans", "theme": "tema-oscuro"},
        "css_variables": css_variables(SERVED_VALUES | (served or {})),
        "click_through_rate": 0.0, "user_satisfaction": None, "ui_preference_feedback": None,
        "page_load_time_ms": 300.0, "rendering_time_ms": rendering_time_ms,
    } | (behaviour or REJECTED)
    features, problems = check_log(log)
    assert problems == [], problems
    row, _ = targets(log, features, judge(log))
    return row


@pytest.mark.parametrize(("rendering_time_ms", "served", "expected"), [
    (99.9, 220.0, 220.0),
    (100.0, 220.0, 220.0),   # exactly 100 ms is not "over 100 ms"
    (100.1, 220.0, 100.0),
    (250.0, 80.0, 80.0),     # already faster than the cap: kept
])
def test_slow_rendering_caps_the_animation_only_over_100_ms(rendering_time_ms, served, expected) -> None:
    row = row_of(rendering_time_ms=rendering_time_ms, served={"animation_duration": served})
    assert row["animation_duration"] == expected


@pytest.mark.parametrize(("prefers_contrast", "served", "expected"), [
    ("more", 16.0, 19.0),            # raised to the floor
    ("more", 19.0, 19.008),          # served as 1.188rem, just over the floor: kept
    ("more", 20.0, 20.0),
    ("no-preference", 16.0, 16.0),   # no accessibility needs: no floor
])
def test_accessibility_needs_raise_the_font_size_to_at_least_19_px(prefers_contrast, served, expected) -> None:
    row = row_of(prefers_contrast=prefers_contrast, served={"font_size_base": served})
    assert row["font_size_base"] == expected


def test_the_font_floor_applies_to_rejected_sessions_only() -> None:
    confirmed = {"session_duration_ms": 150_000, "interactions_count": 8, "bounce_rate": 0.1, "scroll_depth": 0.8}
    row = row_of(prefers_contrast="more", served={"font_size_base": 16.0}, behaviour=confirmed)
    assert row["font_size_base"] == 16.0
