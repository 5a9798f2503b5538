"""Request and response bodies of the HTTP API; every field documents itself in OpenAPI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from efimero.context import BrowserContext


class PredictRequest(BrowserContext):
    """The raw browser context of one page view, plus the client's session id."""

    session_id: str | None = Field(None, max_length=128, description="Client session id, echoed into the log")


class PredictResponse(BaseModel):
    prediction_id: str = Field(..., description="Id to quote when reporting the interaction")
    model_version: str = Field(..., description="Registry version that made the prediction")
    css_classes: dict[str, str] = Field(
        ..., description="Class per group (density, font, theme), to put on <html>",
        examples=[{"density": "densidad-baja", "font": "fuente-sans", "theme": "tema-oscuro"}],
    )
    css_variables: dict[str, str] = Field(
        ..., description="CSS custom properties with units", examples=[{"--font-size-base": "1.050rem"}]
    )
    confidences: dict[str, float] = Field(..., description="Probability of the chosen class per group")


class BatchPredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contexts: list[PredictRequest] = Field(..., min_length=1, description="Contexts to predict, in order")


class BatchPredictResponse(BaseModel):
    predictions: list[PredictResponse] = Field(..., description="One prediction per context, same order")


class InteractionRequest(BaseModel):
    """The interaction log of the retraining guidelines for one served prediction."""

    model_config = ConfigDict(extra="forbid")

    prediction_id: str = Field(..., min_length=1, max_length=36, description="Id returned by /v1/predict")
    session_id: str = Field(..., min_length=1, max_length=128, description="Client session id")
    user_id: str | None = Field(None, max_length=256, description="Optional user id; stored only as a salted hash")
    session_duration: int = Field(..., ge=0, le=86_400_000, description="Session length, milliseconds")
    interactions_count: int = Field(..., ge=0, le=1_000_000, description="Clicks, taps and key presses")
    bounce_rate: float = Field(..., ge=0, le=1, description="1 when the visitor left without interacting")
    scroll_depth: float = Field(..., ge=0, le=1, description="Deepest scroll position / page height")
    click_through_rate: float = Field(..., ge=0, le=1, description="Share of links and buttons clicked")
    user_satisfaction: int | None = Field(None, ge=1, le=5, description="Explicit rating, 1–5")
    ui_preference_feedback: str | None = Field(None, max_length=500, description="Free-text feedback")
    page_load_time: float = Field(..., ge=0, le=600_000, description="Page load time, milliseconds")
    rendering_time: float = Field(..., ge=0, le=600_000, description="Time to apply the style, milliseconds")
    device_info: dict[str, Any] | None = Field(None, description="Optional device details")
    network_conditions: dict[str, Any] | None = Field(None, description="Optional network details")


class InteractionAccepted(BaseModel):
    status: str = Field("accepted", description="The log is queued for the store")
    prediction_id: str


class ModelInfo(BaseModel):
    version: str = Field(..., description="Live registry version")
    loaded_at: str = Field(..., description="When this process loaded it (UTC)")
    swaps: int = Field(..., description="Hot swaps since start")
    last_error: str | None = Field(None, description="Why the newest pointer target is not served, if so")
    metadata: dict[str, Any]
    metrics: dict[str, Any] = Field(..., description="Summary of the version's test metrics")


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
