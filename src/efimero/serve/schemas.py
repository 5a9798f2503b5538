"""Request and response bodies of the HTTP API; every field documents itself in OpenAPI.

Request bodies refuse, with a 422 naming the field, everything the store could not keep:
PostgreSQL rejects NUL characters in text and JSON, no database can encode a lone UTF-16
surrogate as UTF-8, and JSON has no NaN or Infinity. Checking here, before any route runs,
makes SQLite and PostgreSQL answer alike and keeps an acknowledged log from being lost later.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from efimero.context import BrowserContext

MAX_DETAIL_ENTRIES = 50
"""Most keys in one object (or items in one array) of device_info and network_conditions."""

MAX_DETAIL_DEPTH = 4
"""Deepest nesting of device_info and network_conditions; the top-level object is level 1."""

MAX_DETAIL_TEXT = 500
"""Longest string, key or value, inside device_info and network_conditions."""

MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer a browser's JSON (IEEE doubles) represents exactly: Number.MAX_SAFE_INTEGER."""

_SHOWN_CHARS = 40
"""Characters of an offending value quoted in a message."""

_DETAIL_RULES = (
    f"a JSON object of at most {MAX_DETAIL_ENTRIES} keys per object (items per array), nested at most "
    f"{MAX_DETAIL_DEPTH} levels, strings (keys too) of at most {MAX_DETAIL_TEXT} characters without NUL or lone "
    f"surrogates, finite numbers, integers within ±{MAX_SAFE_INTEGER}"
)


def _shown(text: str) -> str:
    """An ASCII quotation of ``text`` short enough for a message."""
    quoted = ascii(text[:_SHOWN_CHARS])
    return quoted + "..." if len(text) > _SHOWN_CHARS else quoted


def _text_problem(text: str) -> str | None:
    """Why the store cannot keep ``text``, or None when it can."""
    if "\x00" in text:
        position = text.index("\x00")
        return f"must not contain NUL characters (\\u0000, found at position {position}): PostgreSQL cannot store them"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"must not contain lone surrogates (found at position {exc.start}): they have no UTF-8 encoding"
    return None


def _storable(text: str) -> str:
    if (problem := _text_problem(text)) is not None:
        raise PydanticCustomError(
            "storable_text", "String {rule}. Got {seen} instead.", {"rule": problem, "seen": _shown(text)}
        )
    return text


StoredText = Annotated[str, AfterValidator(_storable)]
"""A string the store can keep: no NUL characters and no lone surrogates."""


def _detail_problem(value: object, path: str, depth: int) -> tuple[str, str, str] | None:
    """The first (path, rule, value seen) that ``value`` at ``path`` breaks, or None.

    Depth-first, so the message names one concrete place; ``depth`` counts objects and
    arrays, and nothing deeper than MAX_DETAIL_DEPTH is entered.
    """
    if isinstance(value, dict | list):
        if depth > MAX_DETAIL_DEPTH:
            return path, f"must be nested at most {MAX_DETAIL_DEPTH} levels deep", f"level {depth}"
        if len(value) > MAX_DETAIL_ENTRIES:
            return path, f"must hold at most {MAX_DETAIL_ENTRIES} entries", f"{len(value)} entries"
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                if (problem := _detail_text_problem(key)) is not None:
                    return path, f"keys {problem}", _shown(key)
                child = f"{path}[{_shown(key)}]"
            else:
                child = f"{path}[{key}]"
            if (found := _detail_problem(item, child, depth + 1)) is not None:
                return found
        return None
    if isinstance(value, str):
        problem = _detail_text_problem(value)
        return None if problem is None else (path, problem, _shown(value))
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            rule = f"must lie within ±{MAX_SAFE_INTEGER} (Number.MAX_SAFE_INTEGER)"
            return path, rule, f"an integer of {value.bit_length()} bits"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, "must be a finite number", repr(value))
    return path, "must be a JSON string, number, boolean, null, object or array", type(value).__name__


def _detail_text_problem(text: str) -> str | None:
    """Why a string inside the details is refused: too long, or not storable."""
    if len(text) > MAX_DETAIL_TEXT:
        return f"must be at most {MAX_DETAIL_TEXT} characters long"
    return _text_problem(text)


class PredictRequest(BrowserContext):
    """The raw browser context of one page view, plus the client's session and visitor ids."""

    session_id: StoredText | None = Field(
        None, max_length=128, description="Client session id, echoed into the log; no NUL characters"
    )
    visitor_id: StoredText | None = Field(
        None, max_length=128,
        description="A random id the client keeps for the visitor (localStorage). While versions share the "
        "traffic it keeps the visitor on one of them across sessions (else the session id does, else nothing "
        "does); it is never stored. With `efimero serve --feature-store`, an HMAC of it keys the visitor's "
        "history in Redis, which then wins over the history sent here",
    )


class PredictResponse(BaseModel):
    prediction_id: str = Field(..., description="Id to quote when reporting the interaction")
    model_version: str = Field(..., description="Registry version that made the prediction")
    arm: str = Field("live", description="Traffic arm that served it: live, or a candidate's arm (canary ...)")
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
    """The interaction log of the retraining guidelines for one served prediction.

    Numbers are strict and finite like those of :class:`~efimero.context.BrowserContext`, and
    every string, including those inside device_info and network_conditions, must be storable.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    prediction_id: StoredText = Field(
        ..., min_length=1, max_length=64, description="Id returned by /v1/predict (signed: any worker verifies it)"
    )
    session_id: StoredText = Field(
        ..., min_length=1, max_length=128, description="Client session id; no NUL characters"
    )
    user_id: StoredText | None = Field(
        None, max_length=256,
        description="Optional user id; stored only as an HMAC under the deployment's secret pepper; no NUL characters",
    )
    session_duration: StrictInt = Field(..., ge=0, le=86_400_000, description="Session length, milliseconds")
    interactions_count: StrictInt = Field(..., ge=0, le=1_000_000, description="Clicks, taps and key presses")
    bounce_rate: StrictFloat = Field(..., ge=0, le=1, description="1 when the visitor left without interacting")
    scroll_depth: StrictFloat = Field(..., ge=0, le=1, description="Deepest scroll position / page height")
    click_through_rate: StrictFloat = Field(..., ge=0, le=1, description="Share of links and buttons clicked")
    user_satisfaction: StrictInt | None = Field(None, ge=1, le=5, description="Explicit rating, 1–5")
    ui_preference_feedback: StoredText | None = Field(
        None, max_length=500, description="Free-text feedback; no NUL characters"
    )
    page_load_time: StrictFloat = Field(..., ge=0, le=600_000, description="Page load time, milliseconds")
    rendering_time: StrictFloat = Field(..., ge=0, le=600_000, description="Time to apply the style, milliseconds")
    first_styled_paint: StrictFloat | None = Field(
        None, ge=0, le=600_000, description="Milliseconds from navigation start to the first paint in the served style"
    )
    hidden_time: StrictFloat | None = Field(
        None, ge=0, le=600_000, description="Milliseconds the page hid adapted regions (0 when it hid nothing)"
    )
    device_info: dict[str, Any] | None = Field(None, description=f"Optional device details: {_DETAIL_RULES}")
    network_conditions: dict[str, Any] | None = Field(None, description=f"Optional network details: {_DETAIL_RULES}")

    @field_validator("device_info", "network_conditions")
    @classmethod
    def _storable_details(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        """Walk the free-form details, which pydantic cannot type, for anything the store would refuse."""
        if value is not None and (found := _detail_problem(value, info.field_name or "details", 1)) is not None:
            path, rule, seen = found
            raise PydanticCustomError(
                "storable_details", "{path} {rule}. Got {seen} instead.", {"path": path, "rule": rule, "seen": seen}
            )
        return value


class InteractionAccepted(BaseModel):
    status: str = Field("accepted", description="The log is committed to the store (a replay is stored once)")
    prediction_id: str


class ArmInfo(BaseModel):
    """A candidate of the traffic split as this process serves it."""

    arm: str = Field(..., description="Arm name, stored with every prediction it serves")
    version: str
    share: float = Field(..., description="Share of visitors assigned to it")
    served: bool = Field(..., description="False while its version cannot be loaded: its visitors get the live one")
    error: str | None = Field(None, description="Why it is not served")


class ModelInfo(BaseModel):
    """The served version. Paths in it are relative to the registry, or base names: the
    server's directory layout is not the client's business, and the version, the file name
    and ``data_sha256`` identify everything."""

    version: str = Field(..., description="Registry version serving requests now")
    loaded_at: str = Field(..., description="When this process loaded it (UTC)")
    swaps: int = Field(..., description="Hot swaps since start")
    last_error: str | None = Field(
        None, description="What is wrong now: why current is not served, served files that changed on disk, "
        "a failing model watcher"
    )
    fallback: str | None = Field(
        None, description="Set when an earlier version is served because current cannot be loaded"
    )
    watcher_alive: bool = Field(..., description="Whether the service still follows the registry's current pointer")
    inference: str = Field(
        "xgboost", description="How single predictions run: 'compiled' (the version's trees compiled to machine code, "
        "checked against XGBoost at load) or 'xgboost (why not compiled)'"
    )
    metadata: dict[str, Any] = Field(..., description="The version's metadata; absolute paths reduced to base names")
    style_tokens: dict[str, Any] = Field(
        default_factory=dict, description="The style tokens the version predicts: class groups with their options, "
        "CSS variables with their ranges and units (the default tokens for a version trained before tokens existed)",
    )
    traffic: list[ArmInfo] = Field(
        default_factory=list, description="Candidate versions served beside the live one (empty: all traffic is live)"
    )
    metrics: dict[str, Any] = Field(..., description="Summary of the version's test metrics")
    exploration: dict[str, Any] | None = Field(
        None, description="How class labels are explored (the registry's exploration.json and its policy_id, logged "
        "with each decision); None: the model's labels are served greedily",
    )


class MonitorStatus(BaseModel):
    """The service's monitoring loop and its last round (``efimero monitor``'s report, as JSON)."""

    running: bool = Field(..., description="Whether the loop's thread runs")
    interval_s: float | None = Field(None, description="Seconds between rounds")
    clock: str | None = Field(None, description="wall, or store (the newest visit's time)")
    checked_at: str | None = Field(None, description="When the last round finished (UTC); none before the first")
    error: str | None = Field(None, description="Why the last round failed, or why the loop is off")
    report: dict[str, Any] | None = Field(None, description="The last report: window, versions, checks, anomalies")
    new_alerts: list[dict[str, Any]] = Field(default_factory=list, description="Alerts the last round recorded")


class Health(BaseModel):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)
