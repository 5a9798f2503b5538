"""`GET /v1/style.css`: the first visit's style from client hints, cacheable per hint combination."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from efimero.serve.routes.style import HINTS, Hints, context_from_hints, read_hints
from efimero.store import PredictionRecord

PHONE = {"Sec-CH-UA-Mobile": "?1", "Sec-CH-Viewport-Width": "390", "Sec-CH-Viewport-Height": "844",
         "Sec-CH-DPR": "3", "Sec-CH-Prefers-Color-Scheme": "dark", "Sec-CH-Prefers-Reduced-Motion": "no-preference"}
DESKTOP = {"Sec-CH-UA-Mobile": "?0", "Sec-CH-Viewport-Width": "1920", "Sec-CH-Viewport-Height": "1080",
           "Sec-CH-DPR": "1", "Sec-CH-Prefers-Color-Scheme": "light", "Sec-CH-Prefers-Reduced-Motion": "no-preference"}


def declarations(css: str) -> dict[str, str]:
    """The custom properties of the stylesheet's ``:root`` rule (the first one)."""
    root = css.split(":root {", 1)[1].split("}", 1)[0]
    return dict(re.findall(r"(--[\w-]+): ([^;]+);", root))


def test_phone_and_desktop_hints_get_their_own_cacheable_style(client) -> None:
    phone, desktop = (client.get("/v1/style.css", headers=headers) for headers in (PHONE, DESKTOP))
    for response in (phone, desktop):
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/css")
        assert [name.strip() for name in response.headers["vary"].split(",")] == list(HINTS)
        assert "max-age=300" in response.headers["cache-control"] and "public" in response.headers["cache-control"]
    phone_style, desktop_style = declarations(phone.text), declarations(desktop.text)
    assert phone_style["--efimero-density"] == "densidad-baja" and desktop_style["--efimero-density"] != "densidad-baja"
    assert phone_style["--efimero-groups"] == "density font theme"
    assert set(phone_style) == set(desktop_style) == {"--efimero-groups", "--efimero-density", "--efimero-font",
                                                      "--efimero-theme",
                                                      "--font-size-base", "--line-height-base", "--spacing-base",
                                                      "--border-radius-base", "--color-primary-h", "--color-primary-s",
                                                      "--color-primary-l", "--animation-duration"}
    assert "a phone, viewport 390x844, DPR 3, dark" in phone.text
    assert "@media (prefers-reduced-motion: reduce)" in phone.text


def test_the_same_hints_get_the_same_stylesheet_and_none_is_stored(client) -> None:
    first, second = (client.get("/v1/style.css", headers=PHONE).text for _ in range(2))
    assert first.split("*/")[1] == second.split("*/")[1]
    store = client.app.state.store
    store.flush()
    with Session(store.engine) as session:
        assert session.scalar(select(func.count()).select_from(PredictionRecord)) == 0
    assert 'route="/v1/style.css"' in client.get("/metrics").text


def test_groups_and_variables_choose_what_is_carried(client) -> None:
    response = client.get("/v1/style.css", params={"groups": "theme", "variables": "--font-size-base"}, headers=PHONE)
    assert set(declarations(response.text)) == {"--efimero-groups", "--efimero-theme", "--font-size-base"}
    assert "prefers-reduced-motion" not in response.text  # no animation variable, nothing to zero


@pytest.mark.parametrize(("params", "named"), [({"groups": "theme,colour"}, "colour"),
                                               ({"variables": "--font-size"}, "--font-size")])
def test_an_unknown_group_or_variable_is_a_422_that_names_it(client, params, named) -> None:
    response = client.get("/v1/style.css", params=params)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"][0] == "query" and named in error["msg"] and "Got" in error["msg"]


def test_no_hints_and_odd_hints_fall_back_to_documented_defaults(client) -> None:
    bare = client.get("/v1/style.css")
    assert bare.status_code == 200 and "a desktop, viewport 1366x768, DPR 1, no-preference" in bare.text
    odd_hints = {"Sec-CH-Viewport-Width": "NaN", "Sec-CH-DPR": "1e400", "Sec-CH-UA-Mobile": "maybe",
                 "Sec-CH-Prefers-Color-Scheme": '"plaid"'}
    odd = client.get("/v1/style.css", headers=odd_hints)
    assert odd.status_code == 200 and "a desktop, viewport 1366x768, DPR 1, no-preference" in odd.text


def test_read_hints_parses_structured_header_values() -> None:
    hints = read_hints({"sec-ch-viewport-width": "412", "sec-ch-viewport-height": "915.4", "sec-ch-dpr": "2.625",
                        "sec-ch-ua-mobile": "?1", "sec-ch-prefers-color-scheme": '"dark"',
                        "sec-ch-prefers-reduced-motion": "reduce", "ect": "3g"})
    assert hints == Hints(viewport_width=412, viewport_height=915, dpr=2.625, mobile=True, color_scheme="dark",
                          reduced_motion=True, effective_type="3g")
    assert read_hints({"sec-ch-viewport-width": "0", "sec-ch-dpr": "9", "ect": "5g"}) == Hints()
    assert context_from_hints(hints, datetime(2026, 1, 1)).connection_effective_type == "3g"


def test_context_fills_what_hints_cannot_tell() -> None:
    now = datetime(2026, 11, 25, 23, 5, 30, tzinfo=timezone(timedelta(hours=1)))
    phone = context_from_hints(Hints(mobile=True), now)
    assert (phone.viewport_width, phone.viewport_height, phone.device_pixel_ratio) == (390, 844, 3.0)
    assert (phone.max_touch_points, phone.pointer, phone.ua_mobile) == (5, "coarse", True)
    assert phone.local_time == datetime(2026, 11, 25, 23, 5, 30) and phone.timezone_offset_min == -60
    assert phone.history.visits == 0 and phone.connection_downlink_mbps is None
    narrow = context_from_hints(Hints(viewport_width=360), now)
    assert narrow.ua_mobile is True and narrow.viewport_height == 779
    desktop = context_from_hints(Hints(viewport_width=1280, viewport_height=720, dpr=2.0, mobile=False), now)
    assert (desktop.viewport_width, desktop.screen_width, desktop.device_pixel_ratio, desktop.pointer) == \
        (1280, 1280, 2.0, "fine")


def test_a_phone_reporting_the_prelayout_width_is_read_at_its_aspect_ratio() -> None:
    """Chromium sends 980 x 2120 for a 390 x 844 phone when its preload scanner fetches the stylesheet."""
    now = datetime(2026, 1, 1)
    context = context_from_hints(Hints(viewport_width=980, viewport_height=2120, mobile=True), now)
    assert (context.viewport_width, context.viewport_height) == (390, 844)
    tablet_like = context_from_hints(Hints(viewport_width=980, viewport_height=2120, mobile=False), now)
    assert tablet_like.viewport_width == 980


def test_without_a_model_the_stylesheet_is_a_503(client) -> None:
    client.app.state.holder.routing = None
    assert client.get("/v1/style.css", headers=PHONE).status_code == 503
