"""Tables of the interaction store: served predictions and the interactions they led to."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 2
"""2: signed prediction ids (64 chars), interactions unique per (prediction_id, session_id) and
free of a foreign key, so a log may be stored before its prediction (written by another worker)."""

PREDICTION_ID_LENGTH = 64


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON}


class Meta(Base):
    """Key/value facts about the store itself: schema version, the prediction-id signing key."""

    __tablename__ = "efimero_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class PredictionRecord(Base):
    """One served prediction with the context and features it was made from."""

    __tablename__ = "predictions"

    prediction_id: Mapped[str] = mapped_column(String(PREDICTION_ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    event_time: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), index=True, doc="When the visit happened, UTC, from the client's clock"
    )
    model_version: Mapped[str] = mapped_column(String(64), index=True)
    context: Mapped[dict[str, Any]]
    features: Mapped[dict[str, Any]]
    css_classes: Mapped[dict[str, Any]]
    css_variables: Mapped[dict[str, Any]]
    confidences: Mapped[dict[str, Any]]


class InteractionRecord(Base):
    """What the visitor did after a prediction was applied (the retraining guidelines' log).

    No foreign key to ``predictions``: predictions are logged fire-and-forget, possibly by
    another worker or host, so the interaction may be committed first. Readers join.
    """

    __tablename__ = "interactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prediction_id: Mapped[str] = mapped_column(String(PREDICTION_ID_LENGTH), index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    session_id: Mapped[str] = mapped_column(String(128))
    user_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    session_duration_ms: Mapped[int] = mapped_column(Integer)
    interactions_count: Mapped[int] = mapped_column(Integer)
    bounce_rate: Mapped[float] = mapped_column(Float)
    scroll_depth: Mapped[float] = mapped_column(Float)
    click_through_rate: Mapped[float] = mapped_column(Float)
    user_satisfaction: Mapped[int | None] = mapped_column(Integer)
    ui_preference_feedback: Mapped[str | None] = mapped_column(String(500))
    page_load_time_ms: Mapped[float] = mapped_column(Float)
    rendering_time_ms: Mapped[float] = mapped_column(Float)
    device_info: Mapped[dict[str, Any] | None]
    network_conditions: Mapped[dict[str, Any] | None]

    __table_args__ = (
        Index("ix_interactions_session", "session_id"),
        UniqueConstraint("prediction_id", "session_id", name="uq_interactions_prediction_session"),
    )
