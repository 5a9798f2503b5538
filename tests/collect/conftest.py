"""Stores filled with crafted sessions: contexts drawn like the simulator's, behaviour chosen per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session

from efimero.context import BrowserContext, event_time, features_of
from efimero.css import css_variables
from efimero.simulate import browser_contexts, draw_visits, intended_features
from efimero.store import InteractionRecord, PredictionRecord, open_engine

WINDOW = (date(2026, 11, 1), date(2026, 11, 7))
"""The days :func:`draw_visits` spreads 7 days of visits over."""

SERVED = {"density": "densidad-media", "font": "fuente-sans", "theme": "tema-claro"}
SERVED_VALUES = {"font_size_base": 17.0, "line_height_base": 1.55, "spacing_base": 11.0,
                 "border_radius_base": 12.0, "color_primary_h": 250.0, "color_primary_s": 60.0,
                 "color_primary_l": 65.0, "animation_duration": 220.0}

ENGAGED = {"session_duration_ms": 150_000, "interactions_count": 8, "bounce_rate": 0.1, "scroll_depth": 0.8}
"""Behaviour that confirms the served style (a labelled row)."""
AMBIGUOUS = {"session_duration_ms": 60_000, "interactions_count": 3, "bounce_rate": 0.2, "scroll_depth": 0.5}
"""Behaviour that says nothing either way (no training row, still a session)."""


def contexts(visits: int, seed: int) -> list[dict[str, Any]]:
    """Browser contexts of ``visits`` visits over :data:`WINDOW`, drawn like the simulator's traffic."""
    rng = np.random.default_rng(seed)
    return browser_contexts(draw_visits(rng, visits=visits, days=7), rng)


def reference_features(rows: int, seed: int) -> pd.DataFrame:
    """Model features of visits from the same distribution (a training set's stand-in)."""
    return intended_features(draw_visits(np.random.default_rng(seed), visits=rows, days=7))


def fill_store(url: str, sessions: Iterable[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Write one served prediction and its interaction per (context, behaviour) pair."""
    engine = open_engine(url)
    now = datetime.now(timezone.utc)
    try:
        with Session(engine) as session:
            for context, behaviour in sessions:
                parsed = BrowserContext.model_validate(context)
                prediction_id = str(uuid.uuid4())
                session.add(PredictionRecord(
                    prediction_id=prediction_id, created_at=now, event_time=event_time(parsed), model_version="v_test",
                    context=context, features=features_of(parsed), css_classes=dict(SERVED),
                    css_variables=css_variables(SERVED_VALUES), confidences={}))
                session.flush()
                defaults = {"click_through_rate": 0.2, "user_satisfaction": None, "ui_preference_feedback": None,
                            "page_load_time_ms": 300.0, "rendering_time_ms": 20.0}
                session.add(InteractionRecord(
                    prediction_id=prediction_id, received_at=now, session_id=prediction_id, user_hash=None,
                    device_info=None, network_conditions=None, **(defaults | behaviour)))
            session.commit()
    finally:
        engine.dispose()


@pytest.fixture
def crafted_store(tmp_path: Path) -> Callable[[Iterable[tuple[dict[str, Any], dict[str, Any]]]], str]:
    """Factory: a new SQLite store holding the given (context, behaviour) sessions; returns its URL."""

    def make(sessions: Iterable[tuple[dict[str, Any], dict[str, Any]]]) -> str:
        url = f"sqlite:///{tmp_path}/store-{uuid.uuid4().hex[:8]}.db"
        fill_store(url, sessions)
        return url

    return make
