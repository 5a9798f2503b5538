"""The raw browser context a page sends, and its translation into model features.

The browser knows the local time, the viewport, the screen, touch and pointer capabilities,
the user's media preferences, the network estimate and the visitor's history (kept by the
client in localStorage). :func:`features_of` turns one such context into the 19 features with
the shared feature processor, so serving and production data collection see exactly what
training saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
)
from pydantic_core import PydanticCustomError

from efimero.features import compute_features

MOBILE_MAX_SCREEN_SIDE = 600
"""A touch device whose shorter screen side (CSS px) is below this is a phone, else a tablet."""

DOWNLINK_BY_EFFECTIVE_TYPE = {"slow-2g": 0.05, "2g": 0.25, "3g": 1.5, "4g": 10.0}
"""Mbit/s assumed for ``navigator.connection.effectiveType`` when ``downlink`` is absent."""

DEFAULT_DOWNLINK = {"mobile": 6.0, "tablet": 20.0, "desktop": 40.0}
"""Mbit/s assumed when the browser reports no network information (the generator's medians)."""

FIRST_YEAR, LAST_YEAR = 2000, 2100
"""Years a client's clock and its remembered first visit may name, both inclusive.

Any real clock, and any date kept in localStorage (which browsers gained in 2009), falls in
this window, and a year outside it is a broken or hostile client. The bound also keeps
:func:`event_time` far from datetime's limits: 9999-12-31T23:59 plus a 12-hour offset overflows.
"""


def _iso_text(value: object) -> object:
    """Refuse numbers before pydantic reads them as Unix timestamps.

    A timestamp names a UTC instant, not the visitor's wall-clock time, so accepting one would
    silently shift the hour the features see. Strings and date/datetime objects pass through.
    """
    if isinstance(value, (int, float)):
        raise PydanticCustomError(
            "iso_string_type", "Input should be an ISO 8601 string. Got the number {number} instead.",
            {"number": value},
        )
    return value


_Day = TypeVar("_Day", bound=date)


def _in_year_window(value: _Day) -> _Day:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise PydanticCustomError(
            "year_out_of_range", "Year must lie in {first}–{last}. Got {year} instead.",
            {"first": FIRST_YEAR, "last": LAST_YEAR, "year": value.year},
        )
    return value


LocalTime = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_in_year_window)]
"""A wall-clock time sent as an ISO 8601 string, in the years FIRST_YEAR–LAST_YEAR."""

VisitDate = Annotated[date, BeforeValidator(_iso_text), AfterValidator(_in_year_window)]
"""A calendar date sent as an ISO 8601 string, in the years FIRST_YEAR–LAST_YEAR."""


class VisitorHistory(BaseModel):
    """What the client remembers about the visitor between visits."""

    # Strict numbers: "12" or true where a count belongs is a client bug to surface, not to guess at.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    visits: StrictInt = Field(0, ge=0, le=10_000_000, description="Earlier visits to the site")
    avg_session_duration_s: StrictFloat = Field(
        0.0, ge=0, le=86_400, description="Mean length of earlier sessions, seconds"
    )
    total_interactions: StrictInt = Field(0, ge=0, le=10_000_000, description="Clicks and taps recorded so far")
    first_visit: VisitDate | None = Field(
        None,
        description=f"Date of the first visit (ISO 8601 string, years {FIRST_YEAR}–{LAST_YEAR}); none on a first visit",
    )


class BrowserContext(BaseModel):
    """One page view's context as the browser reports it.

    Numbers and booleans are strict (JSON integers where an int belongs, JSON numbers where a
    float does, only true/false for a flag) and floats must be finite, so a client that sends
    "390" or NaN learns of it instead of being served a style computed from a guess.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    local_time: LocalTime = Field(
        ..., description=(
            "The visitor's wall-clock time, ISO 8601 string without offset, e.g. 2026-11-25T23:05:00; "
            f"years {FIRST_YEAR}–{LAST_YEAR}"
        ),
    )
    timezone_offset_min: StrictInt = Field(
        0, ge=-840, le=720, description="Date.getTimezoneOffset(): minutes from local time to UTC (CET is -60)"
    )
    viewport_width: StrictInt = Field(..., gt=0, le=20_000, description="window.innerWidth, CSS px")
    viewport_height: StrictInt = Field(..., gt=0, le=20_000, description="window.innerHeight, CSS px")
    screen_width: StrictInt = Field(..., gt=0, le=20_000, description="screen.width, CSS px")
    screen_height: StrictInt = Field(..., gt=0, le=20_000, description="screen.height, CSS px")
    device_pixel_ratio: StrictFloat = Field(..., gt=0, le=8, description="window.devicePixelRatio")
    max_touch_points: StrictInt = Field(0, ge=0, le=256, description="navigator.maxTouchPoints")
    pointer: Literal["fine", "coarse", "none"] = Field(
        "fine", description="Primary pointer, from (pointer: …) media queries"
    )
    ua_mobile: StrictBool | None = Field(None, description="navigator.userAgentData.mobile when the browser offers it")
    prefers_color_scheme: Literal["light", "dark", "no-preference"] = Field(
        "no-preference", description="(prefers-color-scheme)"
    )
    prefers_reduced_motion: StrictBool = Field(False, description="(prefers-reduced-motion: reduce)")
    prefers_contrast: Literal["no-preference", "more", "less", "custom"] = Field(
        "no-preference", description="(prefers-contrast)"
    )
    connection_effective_type: Literal["slow-2g", "2g", "3g", "4g"] | None = Field(
        None, description="navigator.connection.effectiveType when known"
    )
    connection_downlink_mbps: StrictFloat | None = Field(
        None, ge=0, le=10_000, description="navigator.connection.downlink (Mbit/s) when known"
    )
    history: VisitorHistory = Field(default_factory=VisitorHistory, description="The visitor's history")


def event_time(context: BrowserContext) -> datetime:
    """The visit's moment in UTC: local wall-clock time plus ``getTimezoneOffset()`` minutes.

    Real clients report their own clock; the visitor simulator reports simulated time, which
    is how two simulated weeks land on two weeks of dates in the store.
    """
    local = context.local_time.replace(tzinfo=None)
    return (local + timedelta(minutes=context.timezone_offset_min)).replace(tzinfo=UTC)


def device_type(context: BrowserContext) -> str:
    """Phone, tablet or desktop from the user-agent hint, touch, pointer and screen size."""
    shorter_side = min(context.screen_width, context.screen_height)
    touch_first = context.max_touch_points > 0 and context.pointer != "fine"
    if context.ua_mobile or touch_first:
        return "mobile" if shorter_side < MOBILE_MAX_SCREEN_SIDE else "tablet"
    return "desktop"


def downlink_mbps(context: BrowserContext, device: str) -> float:
    if context.connection_downlink_mbps:
        return max(context.connection_downlink_mbps, 0.01)
    if context.connection_effective_type:
        return DOWNLINK_BY_EFFECTIVE_TYPE[context.connection_effective_type]
    return DEFAULT_DOWNLINK[device]


def raw_visit(context: BrowserContext) -> dict[str, object]:
    """The raw visit row of :mod:`efimero.features` for one browser context."""
    device = device_type(context)
    local = context.local_time.replace(tzinfo=None)
    first_visit = context.history.first_visit
    return {
        "local_hour": local.hour,
        "weekday": local.weekday(),
        "device_type": device,
        "max_touch_points": context.max_touch_points,
        "device_pixel_ratio": context.device_pixel_ratio,
        "viewport_width": context.viewport_width,
        "viewport_height": context.viewport_height,
        "avg_session_duration": context.history.avg_session_duration_s,
        "total_interactions": context.history.total_interactions,
        "days_since_first_visit": max((local.date() - first_visit).days, 0) if first_visit else 0,
        "downlink_mbps": downlink_mbps(context, device),
        "accessibility_needs": int(context.prefers_reduced_motion or context.prefers_contrast == "more"),
    }


def features_of(context: BrowserContext) -> dict[str, float]:
    """The 19 model features of one browser context.

    Example:
        >>> ctx = BrowserContext(local_time="2026-11-25T23:00:00", viewport_width=390,
        ...     viewport_height=844, screen_width=390, screen_height=844, device_pixel_ratio=3,
        ...     max_touch_points=5, pointer="coarse")
        >>> features_of(ctx)["is_mobile"]
        1
    """
    columns = {name: [value] for name, value in raw_visit(context).items()}
    return {name: values[0].item() for name, values in compute_features(columns).items()}


def features_of_many(contexts: Sequence[BrowserContext]) -> list[dict[str, float]]:
    """The 19 model features of many contexts in one vectorised pass: the same values as
    :func:`features_of` on each, at a fraction of the cost for a batch."""
    visits = [raw_visit(context) for context in contexts]
    columns = {name: [visit[name] for visit in visits] for name in visits[0]} if visits else {}
    if not columns:
        return []
    computed = compute_features(columns)
    names = list(computed)
    return [dict(zip(names, row, strict=True))
            for row in zip(*(computed[name].tolist() for name in names), strict=True)]
