"""The real loop in Debian's Chromium: the page adapts, and its interaction log is stored."""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from efimero.store import InteractionRecord, PredictionRecord
from tests._browser import browser  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser

IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")

PHONE = dict(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True, has_touch=True,
             color_scheme="dark", user_agent=IPHONE_UA, timezone_id="UTC")
DESKTOP = dict(viewport={"width": 1920, "height": 1080}, device_scale_factor=1, is_mobile=False, has_touch=False,
               color_scheme="light", timezone_id="UTC")

STYLE_PROBE = """() => {
  const root = getComputedStyle(document.documentElement);
  const body = getComputedStyle(document.body);
  const cards = getComputedStyle(document.querySelector('.cards'));
  return {
    classes: [...document.documentElement.classList].sort(),
    fontSizeBase: root.getPropertyValue('--font-size-base').trim(),
    animation: root.getPropertyValue('--animation-duration').trim(),
    hue: root.getPropertyValue('--color-primary-h').trim(),
    rootFontPx: parseFloat(root.fontSize),
    background: body.backgroundColor,
    fontFamily: body.fontFamily,
    columns: cards.gridTemplateColumns.split(' ').length,
    version: document.documentElement.dataset.efimeroVersion || null,
  };
}"""


@pytest.fixture(scope="module")
def screenshots(request: pytest.FixtureRequest) -> Path:
    folder = Path(request.config.rootpath) / "test-output" / "browser"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def visit(browser, url: str, device: dict[str, Any], at: datetime, shot: Path, *, act=None) -> dict[str, Any]:
    context = browser.new_context(**device)
    page = context.new_page()
    page.clock.set_fixed_time(at)
    page.goto(url)
    page.wait_for_function("document.documentElement.dataset.efimeroVersion !== undefined")
    page.wait_for_timeout(300)  # let transitions settle before the screenshot
    style = page.evaluate(STYLE_PROBE)
    page.screenshot(path=str(shot), full_page=True)
    if act:
        act(page)
    page.close(run_before_unload=True)
    context.close()
    return style


def stored_logs(store, expected: int, timeout_s: float = 10.0) -> list[tuple[InteractionRecord, PredictionRecord]]:
    deadline = time.monotonic() + timeout_s
    while True:
        store.flush()
        with Session(store.engine) as session:
            rows = session.execute(select(InteractionRecord, PredictionRecord).join(PredictionRecord, PredictionRecord.prediction_id == InteractionRecord.prediction_id)).all()
        if len(rows) >= expected or time.monotonic() > deadline:
            return [tuple(row) for row in rows]
        time.sleep(0.1)


def test_phone_at_night_and_desktop_at_noon_differ_and_report_back(browser, live_server, screenshots) -> None:
    def read_and_rate(page) -> None:
        page.mouse.wheel(0, 2500)
        page.wait_for_timeout(200)
        page.click("text=Continue reading → >> nth=0")
        page.click("button[data-rate='4']")
        page.wait_for_timeout(200)

    phone = visit(browser, live_server.url, PHONE, datetime(2026, 11, 25, 23, 0, tzinfo=timezone.utc),
                  screenshots / "phone-2300-dark.png", act=read_and_rate)
    desktop = visit(browser, live_server.url, DESKTOP, datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc),
                    screenshots / "desktop-1200-light.png")

    assert "tema-oscuro" in phone["classes"] and "densidad-baja" in phone["classes"]
    assert "tema-claro" in desktop["classes"] and "densidad-baja" not in desktop["classes"]
    assert phone["background"] != desktop["background"]
    assert phone["columns"] == 1 and desktop["columns"] > 1
    assert phone["rootFontPx"] > desktop["rootFontPx"]
    assert phone["fontSizeBase"] != desktop["fontSizeBase"] and phone["hue"] != desktop["hue"]
    for shot in ("phone-2300-dark.png", "desktop-1200-light.png"):
        assert (screenshots / shot).stat().st_size > 10_000

    logs = stored_logs(live_server.app.state.store, expected=2)
    assert len(logs) == 2
    by_device = {served.features["is_mobile"]: (log, served) for log, served in logs}
    phone_log, phone_served = by_device[1]
    assert phone_served.context["local_time"].startswith("2026-11-25T23:00")
    assert phone_served.features["hour_of_day"] == 23 and phone_served.css_classes["theme"] == "tema-oscuro"
    assert phone_log.interactions_count >= 2 and phone_log.user_satisfaction == 4
    assert phone_log.scroll_depth > 0.5 and phone_log.bounce_rate == 0 and phone_log.click_through_rate > 0
    desktop_log, desktop_served = by_device[0]
    assert desktop_served.features["hour_of_day"] == 12 and desktop_log.interactions_count == 0
    assert desktop_log.session_duration_ms >= 0 and desktop_log.page_load_time_ms >= 0


def test_reduced_motion_is_honoured(browser, live_server, screenshots) -> None:
    device = DESKTOP | {"reduced_motion": "reduce"}
    style = visit(browser, live_server.url, device, datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc),
                  screenshots / "desktop-reduced-motion.png")
    assert style["animation"] == "0ms"


def test_page_keeps_its_default_style_when_the_service_is_down(browser, live_server, screenshots) -> None:
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    page.route("**/v1/predict", lambda route: route.abort())
    page.goto(live_server.url)
    page.wait_for_function("document.querySelector('#style').textContent.includes('did not answer')")
    style = page.evaluate(STYLE_PROBE)
    page.screenshot(path=str(screenshots / "service-down-default.png"), full_page=True)
    context.close()
    assert style["classes"] == [] and style["version"] is None
    assert style["fontSizeBase"] == "1rem" and style["columns"] == 2


def test_a_damaged_history_and_an_emoji_user_agent_still_adapt_and_log(browser, live_server, screenshots) -> None:
    """The client repairs what the strict API would refuse: strings in its stored history, a
    user agent whose 200th UTF-16 unit falls inside an emoji."""
    device = DESKTOP | {"user_agent": "M" * 199 + "\N{GRINNING FACE} tail"}
    context = browser.new_context(**device)
    context.add_init_script("localStorage.setItem('efimero.history', JSON.stringify("
                            "{visits: '3', avg_session_duration_s: 'abc', total_interactions: -5, first_visit: 'yesterday'}))")
    page = context.new_page()
    page.goto(live_server.url)
    page.wait_for_function("document.documentElement.dataset.efimeroVersion !== undefined")
    page.screenshot(path=str(screenshots / "damaged-history.png"), full_page=True)
    page.close(run_before_unload=True)
    context.close()
    logs = stored_logs(live_server.app.state.store, expected=1)
    assert len(logs) == 1
    log, served = logs[0]
    assert served.context["history"] == {"visits": 0, "avg_session_duration_s": 0.0, "total_interactions": 0,
                                         "first_visit": None}
    assert log.device_info["user_agent"].endswith("\N{GRINNING FACE}")
