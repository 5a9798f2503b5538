"""Synthetic visitors: visits spread over simulated days, their browser contexts, their tastes.

There is no production traffic, so the simulator makes it. Each visit is a raw context drawn
by :func:`efimero.data.generate.sample_contexts` (the training data's own distributions),
placed on a simulated date and hour, and sent to the service as the JSON a browser would
send. Its hidden preference is the design rules' noise-free style (:func:`preferred_style`)
until the drift day; from then on two things change, one the drift detector should see and
one only engagement reveals:

* **feature shift** — traffic moves to the night: :data:`DRIFT_NIGHT_SHARE` of the visits
  fall in 21:00–05:59. Only the hour changes, so exactly :data:`SHIFTED_FEATURES` drift.
* **preference change** — at night visitors now want ``densidad-alta`` and ``fuente-serif``
  (whatever their device); the variables tied to those classes (font size, line height,
  spacing) follow the same design rules as in training.

Weekdays: a visit's weekday is the calendar weekday of its date (that is what the service
computes from ``local_time``), so each visit keeps the weekday ``sample_contexts`` drew and is
put on a date of the same weekday inside its phase (before or after the drift day). When a
phase is at least 7 days long every weekday is available and ``is_weekend`` keeps the
training mix in both phases; a shorter phase lacks some weekdays, so its visits take the
calendar weekday of a uniformly drawn day instead (and ``is_weekend`` may then drift too).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd

from efimero.data.generate import preferred_style, sample_contexts
from efimero.features import HOURLY_TRAFFIC, RAW_CONTEXT_COLUMNS, engineer_features

logger = logging.getLogger(__name__)

NIGHT_HOURS: tuple[int, ...] = (21, 22, 23, 0, 1, 2, 3, 4, 5)
"""Local hours counted as night, as in the design rules (21:00–05:59)."""

DRIFT_NIGHT_SHARE = 0.7
"""Share of the visits at night from the drift day on (about 0.22 under the normal traffic curve)."""

SHIFTED_FEATURES: tuple[str, ...] = ("hour_of_day", "is_business_hours", "time_intensity")
"""The model features the hour shift moves; every other feature keeps its distribution."""

DRIFT_PREFERENCE: dict[str, str] = {"css_class_density": "densidad-alta", "css_class_font": "fuente-serif"}
"""What night visitors prefer from the drift day on."""

_DESKTOP_CHROME_PX = (70, 140)
"""Browser toolbars and the OS taskbar: how much taller a desktop screen is than its viewport."""


def is_night(hour: np.ndarray | pd.Series) -> np.ndarray:
    """True for the local hours of :data:`NIGHT_HOURS`."""
    return np.isin(np.asarray(hour, dtype=int), NIGHT_HOURS)


def _shifted_hours(rng: np.random.Generator, size: int) -> np.ndarray:
    """Hours with :data:`DRIFT_NIGHT_SHARE` at night, each half following the traffic curve."""
    night = np.array(NIGHT_HOURS)
    day = np.setdiff1d(np.arange(24), night)
    at_night = rng.random(size) < DRIFT_NIGHT_SHARE
    night_hours = rng.choice(night, size, p=HOURLY_TRAFFIC[night] / HOURLY_TRAFFIC[night].sum())
    day_hours = rng.choice(day, size, p=HOURLY_TRAFFIC[day] / HOURLY_TRAFFIC[day].sum())
    return np.where(at_night, night_hours, day_hours)


def _phases(days: int, drift_day: int | None) -> list[tuple[int, int]]:
    return [(0, days)] if not drift_day else [(0, drift_day), (drift_day, days)]


def _place_on_days(
    rng: np.random.Generator, weekday: np.ndarray, *, days: int, drift_day: int | None, start_date: date
) -> tuple[np.ndarray, np.ndarray]:
    """A day offset per visit whose calendar weekday is the drawn one, within the visit's phase.

    Returns the day offsets and the weekdays they fall on (the drawn ones where possible).
    """
    day = rng.integers(0, days, weekday.size)
    weekday = weekday.copy()
    calendar = np.array([(start_date + timedelta(days=d)).weekday() for d in range(days)])
    for low, high in _phases(days, drift_day):
        in_phase = (day >= low) & (day < high)
        if high - low < 7:
            logger.warning(
                "phase of days %d-%d is shorter than a week: its visits keep the calendar weekday, "
                "so is_weekend may drift between phases", low, high - 1,
            )
            weekday[in_phase] = calendar[day[in_phase]]
            continue
        for wd in range(7):
            rows = in_phase & (weekday == wd)
            candidates = low + np.flatnonzero(calendar[low:high] == wd)
            day[rows] = rng.choice(candidates, int(rows.sum()))
    return day, weekday


def draw_visits(
    rng: np.random.Generator,
    *,
    visits: int,
    days: int,
    drift_day: int | None = None,
    start_date: date = date(2026, 11, 1),
    id_prefix: str = "visitor",
) -> pd.DataFrame:
    """Draw ``visits`` raw visits spread over ``days`` simulated days, in time order.

    Args:
        rng: the source of randomness (same state, same visits).
        visits: how many visits (each one a different visitor).
        days: simulated days, starting at ``start_date``.
        drift_day: first day (0-based) of the drifted world; ``None`` for no drift, 0 for a run
            that happens entirely after the drift.
        start_date: the date of day 0.
        id_prefix: prefix of the visitor ids (``<prefix>-000042``), stable for a seed.

    Returns:
        The columns of :data:`efimero.features.RAW_CONTEXT_COLUMNS` plus ``day``,
        ``local_time``, ``after_drift``, ``visitor_id`` and ``session_id``.

    Example:
        >>> frame = draw_visits(np.random.default_rng(1), visits=50, days=14, drift_day=7)
        >>> int(frame["after_drift"].sum()) > 0
        True
    """
    raw = sample_contexts(rng, visits)
    day, weekday = _place_on_days(
        rng, raw["weekday"].to_numpy(), days=days, drift_day=drift_day, start_date=start_date
    )
    after = np.zeros(visits, dtype=bool) if drift_day is None else day >= drift_day
    shifted = _shifted_hours(rng, visits)
    raw["local_hour"] = np.where(after, shifted, raw["local_hour"].to_numpy())
    raw["weekday"] = weekday
    minute, second = rng.integers(0, 60, visits), rng.integers(0, 60, visits)
    raw["day"] = day
    raw["local_time"] = [
        datetime.combine(start_date + timedelta(days=int(d)), time(int(h), int(m), int(s)))
        for d, h, m, s in zip(day, raw["local_hour"], minute, second, strict=True)
    ]
    raw["after_drift"] = after
    raw["visitor_id"] = [f"{id_prefix}-{k:06d}" for k in range(visits)]
    raw["session_id"] = [rng.bytes(16).hex() for _ in range(visits)]
    return raw.sort_values(["local_time", "visitor_id"], kind="stable").reset_index(drop=True)


def intended_features(visits: pd.DataFrame) -> pd.DataFrame:
    """The 19 model features the service should compute for each visit."""
    return engineer_features(visits[list(RAW_CONTEXT_COLUMNS)])


def _effective_types(downlink: np.ndarray) -> np.ndarray:
    """``navigator.connection.effectiveType`` as Chrome derives it from the downlink, per value."""
    return np.select([downlink < 0.05, downlink < 0.07, downlink < 0.7], ["slow-2g", "2g", "3g"], "4g")


def browser_context_columns(visits: pd.DataFrame, rng: np.random.Generator) -> dict[str, list[Any]]:
    """:func:`browser_contexts` column by column: each field (``history.visits`` for a nested one) as a list of
    plain Python values, one per visit, from the same draws (bulk writers format them without a dict per row)."""
    n = len(visits)
    chrome = rng.integers(*_DESKTOP_CHROME_PX, n)
    scheme = rng.choice(["light", "dark", "no-preference"], n, p=[0.6, 0.3, 0.1])
    access_kind = rng.choice(["motion", "contrast", "both"], n, p=[0.5, 0.3, 0.2])
    device = visits["device_type"].to_numpy()
    width = visits["viewport_width"].to_numpy().astype(int)
    height = visits["viewport_height"].to_numpy().astype(int)
    touch = visits["max_touch_points"].to_numpy().astype(int)
    access = visits["accessibility_needs"].to_numpy().astype(bool)
    downlink = visits["downlink_mbps"].to_numpy().astype(float)
    days_known = visits["days_since_first_visit"].to_numpy().astype(int)
    local = visits["local_time"].to_numpy().astype("datetime64[s]")
    desktop = device == "desktop"
    return {
        "local_time": np.datetime_as_string(local, unit="s").tolist(),
        "timezone_offset_min": [0] * n,
        "viewport_width": width.tolist(),
        "viewport_height": height.tolist(),
        "screen_width": width.tolist(),
        "screen_height": np.where(desktop, height + chrome, height).tolist(),
        "device_pixel_ratio": visits["device_pixel_ratio"].to_numpy().astype(float).tolist(),
        "max_touch_points": touch.tolist(),
        "pointer": np.where(desktop, "fine", "coarse").tolist(),
        "ua_mobile": ((device == "mobile") | ((device == "tablet") & (touch == 0))).tolist(),
        "prefers_color_scheme": scheme.tolist(),
        "prefers_reduced_motion": (access & np.isin(access_kind, ("motion", "both"))).tolist(),
        "prefers_contrast": np.where(access & np.isin(access_kind, ("contrast", "both")), "more",
                                     "no-preference").tolist(),
        "connection_effective_type": _effective_types(downlink).tolist(),
        "connection_downlink_mbps": downlink.tolist(),
        "history.visits": (1 + days_known // 7).tolist(),
        "history.avg_session_duration_s": visits["avg_session_duration"].to_numpy().astype(float).tolist(),
        "history.total_interactions": visits["total_interactions"].to_numpy().astype(int).tolist(),
        "history.first_visit": np.datetime_as_string(
            local.astype("datetime64[D]") - days_known.astype("timedelta64[D]"), unit="D").tolist(),
    }


def browser_contexts(visits: pd.DataFrame, rng: np.random.Generator) -> list[dict[str, object]]:
    """The JSON a browser would POST to ``/v1/predict`` for each visit (without session id).

    The context is made consistent with the drawn device so that the service infers the
    same raw visit: phones report a coarse pointer and ``ua_mobile``; tablets a coarse pointer
    (and ``ua_mobile`` only in the rare case without touch points, the one signal left that
    tells them from a desktop); desktops a fine pointer and a screen taller than the viewport.
    Accessibility needs appear as reduced motion, more contrast or both. Times are simulated
    local times with ``timezone_offset_min`` 0, so the stored event time is the simulated time.
    """
    columns = browser_context_columns(visits, rng)
    flat = [name for name in columns if not name.startswith("history.")]
    nested = [name for name in columns if name.startswith("history.")]
    contexts: list[dict[str, object]] = []
    for i in range(len(visits)):
        context: dict[str, object] = {name: columns[name][i] for name in flat}
        context["history"] = {name.removeprefix("history."): columns[name][i] for name in nested}
        contexts.append(context)
    return contexts


def preferences(features: pd.DataFrame, after_drift: bool | np.ndarray | pd.Series) -> pd.DataFrame:
    """Each visit's hidden true preference: the design rules' style, changed at night after drift.

    Args:
        features: model features, one row per visit.
        after_drift: whether the visit is on or after the drift day (one flag or one per row).

    Returns:
        Class labels and variable values (in the targets' units) per row, as
        :func:`efimero.data.generate.preferred_style`.

    Example:
        >>> night = intended_features(draw_visits(np.random.default_rng(0), visits=5, days=1))
        >>> preferences(night, after_drift=False).shape[1]
        11
    """
    style = preferred_style(features)
    changed = np.asarray(after_drift, dtype=bool) & is_night(features["hour_of_day"])
    changed = np.broadcast_to(changed, (len(features),))
    if not changed.any():
        return style
    imposed = {target: np.where(changed, label, style[target].to_numpy(dtype=object))
               for target, label in DRIFT_PREFERENCE.items()}
    return preferred_style(features, classes=imposed)
