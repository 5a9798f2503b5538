"""Reading the store for data collection and monitoring: sessions joined to their predictions."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from efimero.errors import StoreError
from efimero.store.models import InteractionRecord, PredictionRecord

SESSION_COLUMNS = (
    "prediction_id", "event_time", "model_version", "context", "features", "css_classes", "css_variables",
    "session_id", "session_duration_ms", "interactions_count", "bounce_rate", "scroll_depth",
    "click_through_rate", "user_satisfaction", "ui_preference_feedback", "page_load_time_ms", "rendering_time_ms",
)


def sessions(engine: Engine, *, start: datetime, end: datetime, min_session_duration_ms: int = 0) -> pd.DataFrame:
    """Interactions whose visit happened in [start, end), each with the prediction it answered."""
    query = (
        select(
            PredictionRecord.prediction_id, PredictionRecord.event_time, PredictionRecord.model_version,
            PredictionRecord.context, PredictionRecord.features, PredictionRecord.css_classes,
            PredictionRecord.css_variables, InteractionRecord.session_id, InteractionRecord.session_duration_ms,
            InteractionRecord.interactions_count, InteractionRecord.bounce_rate, InteractionRecord.scroll_depth,
            InteractionRecord.click_through_rate, InteractionRecord.user_satisfaction,
            InteractionRecord.ui_preference_feedback, InteractionRecord.page_load_time_ms,
            InteractionRecord.rendering_time_ms,
        )
        .join(InteractionRecord, InteractionRecord.prediction_id == PredictionRecord.prediction_id)
        .where(PredictionRecord.event_time >= start, PredictionRecord.event_time < end,
               InteractionRecord.session_duration_ms >= min_session_duration_ms)
        .order_by(PredictionRecord.event_time, InteractionRecord.id)
    )
    try:
        with Session(engine) as session:
            rows = session.execute(query).all()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read sessions from the store: {exc}") from exc
    return pd.DataFrame([tuple(row) for row in rows], columns=list(SESSION_COLUMNS))


def latest_event_time(engine: Engine) -> datetime | None:
    """The newest visit in the store (the end of "the last N days" for simulated traffic)."""
    with Session(engine) as session:
        return session.scalar(select(func.max(PredictionRecord.event_time)))
