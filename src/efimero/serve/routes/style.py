"""`GET /v1/style.css`: a first visit's style as a stylesheet, predicted from HTTP client hints.

A page that waits for a script before it is styled first paints in its default style and then
re-styles itself. A ``<link rel="stylesheet">`` in ``<head>`` is the one thing a browser waits for
before its first paint without running any script, so a style that arrives this way is never
preceded by a paint in the default style. The browser's client hints say enough to predict it:
the viewport (``Sec-CH-Viewport-Width``, ``Sec-CH-Viewport-Height``), the pixel density
(``Sec-CH-DPR``), whether the device is a phone (``Sec-CH-UA-Mobile``), two media preferences
(``Sec-CH-Prefers-Color-Scheme``, ``Sec-CH-Prefers-Reduced-Motion``) and the connection's class
(``ECT``: four values, where the exact ``Downlink`` hint would change between visits and split
the cache for a few kbit/s). A page asks for them with ``Accept-CH`` (:data:`ACCEPT_CH`, as a
header or a ``<meta http-equiv>``), and the browser sends them with the stylesheet's request on
the very first visit. ``Critical-CH`` is not needed: it makes the
browser retry the navigation itself, which only a page whose HTML depends on the hints requires.

What headers cannot tell is filled with documented values (:func:`context_from_hints`): the local
time is the server's, the visit is a first one, the screen is the viewport. The JS client
(``efimero.js``) refines the style with what only the browser knows and changes only what differs.

A stylesheet cannot put classes on ``<html>``, so the response carries them as custom properties
(``--efimero-theme: tema-oscuro``, with ``--efimero-groups`` naming the groups) that the client's
head snippet applies before the first paint; the variables apply by themselves. Groups and variables
are those of the live version's style tokens (:mod:`efimero.css`). The answer depends only on the
hints (and the hour), so it is cacheable per hint combination: ``Vary`` names the hints,
``Cache-Control`` bounds how stale the hour may get.

Nothing is recorded in the store. The page's prediction of record is the client's
``/v1/predict``, which the interaction log refers to; a stylesheet served from a shared cache never
reaches the service, so recording the ones that do would count a biased sample of visits as
predictions nobody can log an interaction for. Its requests are counted in ``/metrics`` like every
route's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from efimero.context import DOWNLINK_BY_EFFECTIVE_TYPE, MOBILE_MAX_SCREEN_SIDE, BrowserContext, features_of
from efimero.css import class_key, tokens_of
from efimero.serve.deps import get_routing
from efimero.serve.holder import Routing

router = APIRouter(prefix="/v1", tags=["predict"])

HINTS = (
    "Sec-CH-Viewport-Width", "Sec-CH-Viewport-Height", "Sec-CH-DPR", "Sec-CH-UA-Mobile",
    "Sec-CH-Prefers-Color-Scheme", "Sec-CH-Prefers-Reduced-Motion", "ECT",
)
"""The client hints the stylesheet is predicted from: every one is in ``Vary``."""

ACCEPT_CH = ", ".join(HINTS)
"""The ``Accept-CH`` value a page sends (header or ``<meta http-equiv>``) so that browsers send :data:`HINTS`."""

MAX_AGE_S = 300
"""How long a cache may serve one answer as fresh: the predicted hour is at most this stale."""

STALE_S = 86_400
"""How long after that a browser may still use it while it fetches a fresh one (``stale-while-revalidate``).

A returning visitor's first paint is the head snippet's remembered style, which overrides the
stylesheet, so an hour-old stylesheet costs nothing there, while waiting for a new one would
delay the first paint by a round trip.
"""

PRELAYOUT_WIDTH = 980
"""The layout width a mobile browser reports before ``<meta name="viewport">`` applies.

Chromium computes ``Sec-CH-Viewport-Width`` for a stylesheet that its preload scanner fetches
before the page's viewport meta tag takes effect, so a phone reports 980 (and a height scaled to
its aspect ratio). A mobile hint of exactly this width is read as the phone's default width at
the same aspect ratio.
"""

DEFAULT_VIEWPORT = {True: (390, 844), False: (1366, 768)}
"""Viewport (CSS px) assumed per "is a phone" when the hints do not say: the most common sizes."""

DEFAULT_DPR = {True: 3.0, False: 1.0}
"""Device pixel ratio assumed per "is a phone" when ``Sec-CH-DPR`` is absent."""


@dataclass(frozen=True)
class Hints:
    """The client hints of one request, parsed; None where a hint is absent or unreadable."""

    viewport_width: int | None = None
    viewport_height: int | None = None
    dpr: float | None = None
    mobile: bool | None = None
    color_scheme: str | None = None
    reduced_motion: bool | None = None
    effective_type: str | None = None


def _token(headers: Mapping[str, str], name: str) -> str | None:
    """A structured-header item without its quotes (Chromium sends tokens, the spec allows strings)."""
    value = headers.get(name)
    return value.strip().strip('"').lower() if value else None


def _number(headers: Mapping[str, str], name: str, low: float, high: float) -> float | None:
    """A finite number within [low, high], or None: an odd hint falls back to a default, never to an error."""
    try:
        value = float(_token(headers, name) or "nan")
    except ValueError:
        return None
    return value if low <= value <= high else None


def read_hints(headers: Mapping[str, str]) -> Hints:
    """Parse the client hints of a request (header names are case-insensitive in Starlette's mapping).

    Example:
        >>> read_hints({"sec-ch-ua-mobile": "?1", "sec-ch-viewport-width": "390"}).mobile
        True
    """
    width = _number(headers, "sec-ch-viewport-width", 1, 20_000)
    height = _number(headers, "sec-ch-viewport-height", 1, 20_000)
    dpr = _number(headers, "sec-ch-dpr", 0.1, 8)
    mobile = {"?1": True, "?0": False}.get(_token(headers, "sec-ch-ua-mobile") or "")
    scheme = _token(headers, "sec-ch-prefers-color-scheme")
    motion = _token(headers, "sec-ch-prefers-reduced-motion")
    ect = _token(headers, "ect")
    return Hints(
        viewport_width=None if width is None else round(width),
        viewport_height=None if height is None else round(height),
        dpr=dpr,
        mobile=mobile,
        color_scheme=scheme if scheme in ("light", "dark") else None,
        reduced_motion={"reduce": True, "no-preference": False}.get(motion or ""),
        effective_type=ect if ect in DOWNLINK_BY_EFFECTIVE_TYPE else None,
    )


def _viewport(hints: Hints, phone: bool) -> tuple[int, int]:
    """The viewport the hints name, corrected for the pre-layout width, else the device's default."""
    default_width, default_height = DEFAULT_VIEWPORT[phone]
    width = hints.viewport_width or default_width
    height = hints.viewport_height or round(width * default_height / default_width)
    if phone and width == PRELAYOUT_WIDTH:
        width, height = default_width, max(1, round(height * default_width / PRELAYOUT_WIDTH))
    return width, height


def context_from_hints(hints: Hints, now: datetime) -> BrowserContext:
    """The browser context the hints describe, with documented values for what they cannot tell.

    - phone: ``Sec-CH-UA-Mobile``, else a viewport narrower than a tablet's shorter side;
      touch and a coarse pointer for a phone, none and a fine pointer otherwise;
    - viewport: the hints, else :data:`DEFAULT_VIEWPORT`; the screen is taken to be the viewport;
    - pixel ratio: the hint, else :data:`DEFAULT_DPR`;
    - local time: ``now``, the server's clock (a site whose visitors live elsewhere runs the
      service in their time zone, ``TZ``); the client corrects it;
    - history: none, as on a first visit; network: the ``ECT`` class's downlink, else the device's median;
    - contrast: no preference (no browser sends ``Sec-CH-Prefers-Contrast`` yet).

    Example:
        >>> context = context_from_hints(Hints(mobile=True), datetime(2026, 11, 25, 23, 0))
        >>> (context.viewport_width, context.pointer)
        (390, 'coarse')
    """
    phone = hints.mobile if hints.mobile is not None else (
        hints.viewport_width is not None and hints.viewport_width < MOBILE_MAX_SCREEN_SIDE)
    width, height = _viewport(hints, phone)
    offset = now.utcoffset()
    return BrowserContext(
        local_time=now.replace(tzinfo=None, microsecond=0),
        timezone_offset_min=-round(offset.total_seconds() / 60) if offset is not None else 0,
        viewport_width=width, viewport_height=height, screen_width=width, screen_height=height,
        device_pixel_ratio=hints.dpr or DEFAULT_DPR[phone],
        max_touch_points=5 if phone else 0,
        pointer="coarse" if phone else "fine",
        ua_mobile=phone,
        prefers_color_scheme=hints.color_scheme or "no-preference",
        prefers_reduced_motion=bool(hints.reduced_motion),
        connection_effective_type=hints.effective_type,
    )


def _chosen(value: str | None, known: list[str], name: str) -> list[str]:
    """The comma-separated names of a query parameter, all of them when absent; unknown names are a 422."""
    if value is None:
        return known
    chosen = [part.strip() for part in value.split(",") if part.strip()]
    unknown = [part for part in chosen if part not in known]
    if unknown:
        raise RequestValidationError([{
            "type": "unknown_name", "loc": ("query", name),
            "msg": f"{name} must name some of {', '.join(known)}. Got {', '.join(unknown[:5])} instead.",
        }])
    return chosen


def stylesheet(
    classes: Mapping[str, str], variables: Mapping[str, str], *, version: str, described: str,
) -> str:
    """The CSS text: classes as ``--efimero-<group>`` (and the groups as ``--efimero-groups``) and the
    variables, on ``:root``.

    Reduced motion is honoured as the JS client honours it (``--animation-duration: 0ms``), in a
    media query, so it holds whether or not the browser sent the hint.
    """
    declarations = [f"--efimero-groups: {' '.join(classes)};"] if classes else []
    declarations += [f"--efimero-{group}: {label};" for group, label in classes.items()]
    declarations += [f"{name}: {value};" for name, value in variables.items()]
    body = "\n".join(f"  {line}" for line in declarations)
    css = f"/* efimero {version}: the style for {described}. efimero.js refines it. */\n:root {{\n{body}\n}}\n"
    if "--animation-duration" in variables:
        css += "@media (prefers-reduced-motion: reduce) {\n  :root { --animation-duration: 0ms; }\n}\n"
    return css


def _described(context: BrowserContext) -> str:
    """What the stylesheet was predicted for, in its comment (only numbers and fixed words: no header text)."""
    device = "a phone" if context.ua_mobile else "a desktop"
    return (f"{device}, viewport {context.viewport_width}x{context.viewport_height}, "
            f"DPR {context.device_pixel_ratio:g}, {context.prefers_color_scheme}, "
            f"{'reduced motion' if context.prefers_reduced_motion else 'motion'}, first visit at "
            f"{context.local_time:%H:%M} server time")


@router.get(
    "/style.css", summary="A first visit's style as a stylesheet, from client hints",
    response_class=Response, responses={200: {"content": {"text/css": {}}, "description": "The stylesheet"}},
)
async def style_css(
    request: Request,
    routing: Annotated[Routing, Depends(get_routing)],
    groups: Annotated[str | None, Query(
        description="Comma-separated class groups to carry, of the live version's style tokens (density, font, "
        "theme with the default tokens; GET /v1/model lists them); all by default")] = None,
    variables: Annotated[str | None, Query(
        description="Comma-separated CSS variables to set, of the live version's style tokens "
        "(--font-size-base ... with the default tokens); all by default")] = None,
) -> Response:
    """Predict the visitor's style from the request's client hints with the live version and answer it as CSS.

    Put ``<link rel="stylesheet" href="/v1/style.css">`` in ``<head>`` of a page that sends
    ``Accept-CH`` (see the module's documentation), then the client's head snippet.
    """
    live = routing.live
    tokens = tokens_of(live.metadata)
    chosen_groups = _chosen(groups, tokens.groups, "groups")
    chosen_variables = _chosen(variables, tokens.properties, "variables")
    context = context_from_hints(read_hints(request.headers), datetime.now().astimezone())
    prediction = live.predict(features_of(context))
    classes = {class_key(target): choice.label for target, choice in prediction.classes.items()}
    values = tokens.format_variables(prediction.values)
    css = stylesheet(
        {group: classes[group] for group in chosen_groups if group in classes},
        {name: values[name] for name in chosen_variables if name in values},
        version=prediction.model_version or "", described=_described(context),
    )
    return Response(css, media_type="text/css", headers={
        "Cache-Control": f"public, max-age={MAX_AGE_S}, stale-while-revalidate={STALE_S}", "Vary": ", ".join(HINTS),
    })
