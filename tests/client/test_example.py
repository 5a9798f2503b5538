"""The example app in Debian's Chromium: the first paint in the predicted style, consent, hooks.

The page is client/example's build (``make client``), served beside the service on one origin;
network latency and bandwidth are emulated per device (``first_paint.NETWORKS``), so a style that
arrives after the first paint shows up as frames in the default style.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from efimero.store import InteractionRecord
from tests.client.first_paint import (
    REGION_HIDE_MS,
    SUMMARY,
    Visit,
    example_server,
    open_context,
    throttle,
    visit_twice,
    write_site,
)
from tests._browser import browser  # noqa: F401 - the fixture
from tests.serve.conftest import LiveServer

pytestmark = pytest.mark.browser

APPLIED = "document.documentElement.dataset.efimeroVersion !== undefined"


@pytest.fixture(scope="module")
def site(built_client: Path, served_registry: tuple[Path, list[str]],
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("example")
    with example_server(served_registry[0], f"sqlite:///{folder}/store.db", write_site(folder / "site")) as server:
        yield server


@pytest.fixture(scope="module")
def screenshots(request: pytest.FixtureRequest) -> Path:
    folder = Path(request.config.rootpath) / "test-output" / "client"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def interactions(server: LiveServer) -> int:
    server.app.state.store.flush()
    with Session(server.app.state.store.engine) as session:
        return session.scalar(select(func.count()).select_from(InteractionRecord)) or 0


def wait_for_interactions(server: LiveServer, expected: int, timeout_s: float = 10.0) -> int:
    deadline = time.monotonic() + timeout_s
    while (count := interactions(server)) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return count


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_first_and_returning_visits_paint_only_the_predicted_style(browser, site, screenshots, device) -> None:
    first, returning = visit_twice(browser, site.url, "new", device, screenshots=screenshots)
    for seen in (first, returning):
        assert seen.default_frames == 0 and seen.hidden_ms == 0, seen
        assert seen.cls < 0.1 and seen.first_styled_ms == seen.first_paint_ms, seen
    for which in ("first", "returning"):
        assert (screenshots / f"new-{device}-{which}.png").stat().st_size > 10_000


def test_today_paints_the_default_style_first_and_hiding_the_page_costs_time(browser, site) -> None:
    """The two patterns the new client replaces, measured by the same probe."""
    today, _ = visit_twice(browser, site.url, "today", "phone")
    assert today.default_frames > 0 and today.first_styled_ms > today.first_paint_ms, today
    hidden, _ = visit_twice(browser, site.url, "hide-page", "phone")
    assert hidden.default_frames == 0 and hidden.hidden_ms > 0, hidden


def test_adapted_regions_are_hidden_no_longer_than_the_bound(browser, site, screenshots) -> None:
    """A first visit without the stylesheet, and a service that never answers: the regions show after the bound."""
    context = open_context(browser, "desktop")
    page = context.new_page()
    throttle(context, page, "desktop")
    page.route("**/v1/predict", lambda route: None)  # never answered: adapt() gives up after its timeout
    page.goto(f"{site.url}/example/new-hide-regions.html")
    page.wait_for_function("performance.getEntriesByName('efimero:hidden').length > 0", timeout=10_000)
    page.wait_for_timeout(300)
    seen = Visit(**page.evaluate(SUMMARY))
    page.screenshot(path=str(screenshots / "regions-revealed-after-the-bound.png"), full_page=True)
    context.close()
    assert REGION_HIDE_MS <= seen.hidden_ms < REGION_HIDE_MS + 250, seen
    assert seen.default_frames > 0 and seen.first_styled_ms is None  # the page is shown, in its own style


def test_nothing_is_stored_or_logged_until_the_visitor_agrees(browser, site, screenshots) -> None:
    context = open_context(browser, "desktop", consent=False)
    bodies: list[dict[str, Any]] = []
    context.on("request", lambda request: bodies.append(request.post_data_json)
               if request.url.endswith("/v1/predict") else None)
    before = interactions(site)

    page = context.new_page()
    page.goto(f"{site.url}/example/")
    page.wait_for_function(APPLIED)
    page.screenshot(path=str(screenshots / "consent-banner.png"))
    assert page.is_visible("#consent")
    assert page.evaluate("Object.keys(localStorage).filter((key) => key.startsWith('efimero.'))") == []
    assert page.evaluate("Object.keys(sessionStorage)") == []
    assert bodies[0]["visitor_id"] is None and bodies[0]["session_id"] is None and bodies[0]["history"]["visits"] == 0
    page.close(run_before_unload=True)
    time.sleep(0.5)
    assert interactions(site) == before

    page = context.new_page()
    page.goto(f"{site.url}/example/")
    page.wait_for_function(APPLIED)
    page.click("#consent [data-consent='yes']")
    stored = page.evaluate("Object.fromEntries(Object.entries(localStorage))")
    assert {"efimero.visitor", "efimero.style"} <= set(stored)
    page.evaluate("dispatchEvent(new Event('pagehide'))")  # the end of the visit, while the page can still be read
    events = page.evaluate("window.dataLayer.map((entry) => entry.event)")
    assert events[0] == "efimero_applied" and "efimero_log" in events
    page.close(run_before_unload=True)
    assert wait_for_interactions(site, before + 1) == before + 1
    with Session(site.app.state.store.engine) as session:  # the paint timings land in the log, for the guardrails
        log = session.scalars(select(InteractionRecord).order_by(InteractionRecord.id.desc())).first()
    assert log is not None and 0 < log.first_styled_paint_ms < 10_000 and log.hidden_ms == 0

    page = context.new_page()
    page.goto(f"{site.url}/example/")
    page.wait_for_function(APPLIED)
    assert not page.is_visible("#consent")
    page.close()
    returning = bodies[-1]
    assert returning["visitor_id"] == stored["efimero.visitor"].strip('"') and returning["history"]["visits"] == 1
    context.close()


def test_withdrawing_consent_deletes_what_the_client_stored(browser, site) -> None:
    context = open_context(browser, "phone", consent=False)
    page = context.new_page()
    page.goto(f"{site.url}/example/")
    page.wait_for_function(APPLIED)
    page.click("#consent [data-consent='yes']")
    assert page.evaluate("localStorage.getItem('efimero.visitor')") is not None
    page.evaluate("localStorage.removeItem('trailhead.consent')")  # the site asks again
    page.reload()
    page.wait_for_function(APPLIED)
    page.click("#consent [data-consent='no']")
    assert page.evaluate("Object.keys(localStorage).filter((key) => key.startsWith('efimero.'))") == []
    assert page.evaluate("sessionStorage.getItem('efimero.session')") is None
    context.close()


def test_apply_style_sets_only_the_chosen_groups_and_only_what_differs(browser, site) -> None:
    context = open_context(browser, "desktop")
    page = context.new_page()
    page.route("**/v1/predict", lambda route: route.abort())  # the page keeps its own style
    page.goto(f"{site.url}/example/today.html")
    result = page.evaluate("""async () => {
      const { applyStyle } = await import("/static/efimero.js");
      const prediction = { prediction_id: "p", model_version: "v", arm: "live", confidences: {},
        css_classes: { density: "densidad-alta", font: "fuente-serif", theme: "tema-oscuro" },
        css_variables: { "--font-size-base": "1.200rem", "--spacing-base": "0.600rem" } };
      const choice = { groups: ["theme"], variables: ["--font-size-base"] };
      const first = applyStyle(prediction, { prefers_reduced_motion: false }, choice);
      const again = applyStyle(prediction, { prefers_reduced_motion: false }, choice);
      const root = document.documentElement;
      return { first: first.changed, again: again.changed, remembered: first.style, classes: [...root.classList],
               spacing: root.style.getPropertyValue("--spacing-base") };
    }""")
    context.close()
    assert result["first"] == ["theme", "--font-size-base"] and result["again"] == []
    assert result["remembered"] == {"classes": {"theme": "tema-oscuro"}, "variables": {"--font-size-base": "1.200rem"}}
    assert result["classes"] == ["tema-oscuro"] and result["spacing"] == ""
