"""Tables of the interaction store: served predictions, the interactions they led to, failed
predictions and the monitor's alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 5
"""2: signed prediction ids (64 chars), interactions unique per (prediction_id, session_id) and
free of a foreign key, so a log may be stored before its prediction (written by another worker).
3: each prediction's traffic arm and server-side latency, failed predictions, the monitor's alerts.
4: each interaction's first styled paint and hidden time, as the browser client measured them.
5: each prediction's decisions: per class slot the label served, its propensity and the greedy label,
and the exploration policy that chose them (off-policy evaluation reads them)."""

PREDICTION_ID_LENGTH = 64
ARM_LENGTH = 32
ERROR_LENGTH = 200
MESSAGE_LENGTH = 500
LIVE_ARM = "live"
"""The arm of the current version (``efimero.registry.traffic.LIVE_ARM``); rows from before arms existed hold it."""


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
    arm: Mapped[str] = mapped_column(
        String(ARM_LENGTH), default=LIVE_ARM, server_default=LIVE_ARM,
        doc="The traffic arm that served it: 'live' for the current version, else a candidate's arm",
    )
    latency_ms: Mapped[float | None] = mapped_column(
        Float, doc="Server-side time from request to prediction (None for rows written before schema 3)"
    )
    context: Mapped[dict[str, Any]]
    features: Mapped[dict[str, Any]]
    css_classes: Mapped[dict[str, Any]]
    css_variables: Mapped[dict[str, Any]]
    confidences: Mapped[dict[str, Any]]
    decisions: Mapped[dict[str, Any] | None] = mapped_column(
        doc="How the served class labels were chosen: {policy_id, mode, holdout, propensity, slots: {target: "
        "{label, propensity, greedy}}} (None for rows written before schema 5)",
    )


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
    first_styled_paint_ms: Mapped[float | None] = mapped_column(
        Float, doc="From navigation start to the first paint in the served style (a guardrail of rollouts)")
    hidden_ms: Mapped[float | None] = mapped_column(Float, doc="How long the page hid adapted regions, if it did")
    device_info: Mapped[dict[str, Any] | None]
    network_conditions: Mapped[dict[str, Any] | None]

    __table_args__ = (
        Index("ix_interactions_session", "session_id"),
        UniqueConstraint("prediction_id", "session_id", name="uq_interactions_prediction_session"),
    )


class PredictionErrorRecord(Base):
    """A prediction the service failed to make: counted against the version and arm that failed it."""

    __tablename__ = "prediction_errors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    event_time: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), index=True,
        doc="The visit's time on the clock predictions use (their event_time), so the error rate of a window "
        "counts errors and predictions alike even when simulated time runs far from the wall clock",
    )
    model_version: Mapped[str] = mapped_column(String(64))
    arm: Mapped[str] = mapped_column(String(ARM_LENGTH))
    error: Mapped[str] = mapped_column(String(ERROR_LENGTH), doc="What failed, without visitor data")


class AlertRecord(Base):
    """An anomaly the monitor found in a window, what it calls for, and whether the webhook got it.

    One row per (window, rule, version, arm): checking the same window again records nothing new.
    """

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    severity: Mapped[str] = mapped_column(String(8), doc="high | medium | low")
    rule: Mapped[str] = mapped_column(String(32), doc="e.g. accuracy_drop, latency_increase, error_rate")
    model_version: Mapped[str] = mapped_column(String(64))
    arm: Mapped[str] = mapped_column(String(ARM_LENGTH))
    value: Mapped[float] = mapped_column(Float, doc="The version's metric in the window")
    baseline: Mapped[float | None] = mapped_column(Float, doc="What it was compared with (None for absolute rules)")
    threshold: Mapped[float] = mapped_column(Float)
    action: Mapped[str] = mapped_column(String(32), doc="What it calls for: rollback, traffic_halved or alert")
    message: Mapped[str] = mapped_column(String(MESSAGE_LENGTH))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivery_error: Mapped[str | None] = mapped_column(String(MESSAGE_LENGTH))

    __table_args__ = (
        UniqueConstraint("window_start", "window_end", "rule", "model_version", "arm", name="uq_alerts_window_rule"),
    )
