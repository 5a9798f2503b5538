"""The first paint of the example app, measured in Debian's Chromium: shared by tests/client and
bench/bench_first_paint.py, so the benchmark's numbers and the tests' assertions come from one harness.

Four ways to bring the predicted style to a page (:data:`PATHS`), all on the same page, the example
app of ``client/example`` (its ``index.html`` is the new client; the others replace its marked
``<head>`` block):

- ``today``: the client as ``/`` uses it today, a module that calls ``adapt()`` after the page is parsed;
- ``hide-page``: today's client behind the page-hiding snippet that A/B tools ship (Google Optimize's
  pattern: ``<html>`` at opacity 0 until the style is applied, or 4 s);
- ``new``: ``<link rel="stylesheet" href="/v1/style.css">`` and the head snippet, then ``adapt()``;
- ``new-hide-regions``: the head snippet alone, which hides only the regions marked
  ``data-efimero-hide``, for at most :data:`REGION_HIDE_MS`, when it has no style to apply.

What the page does is recorded by :data:`PROBE`, installed before any of the page's scripts: on every
frame (``requestAnimationFrame``, which runs just before the browser paints) whether the page shows
content, whether it carries an efimero class on ``<html>``, the eight variables' computed values and
whether anything is hidden; layout shifts from a ``PerformanceObserver`` (all of them: see the
probe); hidden time from the User Timing measures whose name ends in ``:hidden``.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.staticfiles import StaticFiles

from efimero.css import DEFAULT_TOKENS
from efimero.serve import ServeSettings
from tests.serve.conftest import LiveServer

ROOT = Path(__file__).parents[2]
CLIENT = ROOT / "client"
IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")

DEVICES: dict[str, dict[str, Any]] = {
    "phone": dict(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True, has_touch=True,
                  color_scheme="dark", user_agent=IPHONE_UA),
    "desktop": dict(viewport={"width": 1920, "height": 1080}, device_scale_factor=1, is_mobile=False,
                    has_touch=False, color_scheme="light"),
}
"""Playwright device emulation; the phone sends an iPhone's user agent, so ``Sec-CH-UA-Mobile: ?1``."""

NETWORKS = {"phone": {"latency": 150, "mbps": 1.6}, "desktop": {"latency": 40, "mbps": 10.0}}
"""Round-trip latency (ms) and bandwidth added per device: Lighthouse's mobile profile, and a cable line."""

PATHS = ("today", "hide-page", "new", "new-hide-regions")
"""The pages compared, in table order: each is ``<path>.html`` on the example site."""

REGION_HIDE_MS = 1000
"""The longest the new client's head snippet hides the adapted regions (``new-hide-regions``)."""

HIDE_PAGE_MS = 4000
"""How long the page-hiding snippet waits at most: Google Optimize's default."""

HIDE_PAGE_SNIPPET = f"""<style>.async-hide {{ opacity: 0 !important }}</style>
  <script>(function (root, timeoutMs) {{
    root.classList.add("async-hide");
    performance.mark("hide-page:hide");
    function reveal() {{
      if (!root.classList.contains("async-hide")) return;
      root.classList.remove("async-hide");
      performance.measure("hide-page:hidden", "hide-page:hide");
    }}
    document.addEventListener("efimero:applied", reveal);
    setTimeout(reveal, timeoutMs);
  }})(document.documentElement, {HIDE_PAGE_MS});</script>"""
"""The page-hiding pattern of A/B tools, revealing when efimero says the style is applied."""

PROBE = """(() => {
  const VARIABLES = VARIABLE_NAMES;
  const GROUP = /^(densidad|fuente|tema)-/;
  const probe = window.__firstPaint = { frames: [], shifts: 0 };
  // Every shift counts, hadRecentInput or not: nobody touches these pages, and Chromium flags the
  // shifts of a phone's first half second as after input (its viewport was just set up), which
  // would hide the very re-styling measured here.
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) probe.shifts += entry.value;
  }).observe({ type: "layout-shift", buffered: true });
  function frame(t) {
    const root = document.documentElement;
    const computed = getComputedStyle(root);
    const region = document.querySelector("[data-efimero-hide]");
    probe.frames.push({
      t,
      content: Boolean(document.body && document.body.firstElementChild),
      styled: [...root.classList].some((name) => GROUP.test(name)),
      style: [...root.classList].filter((name) => GROUP.test(name)).sort().join(" ") + "|"
        + VARIABLES.map((name) => computed.getPropertyValue(name).trim()).join(" "),
      hidden: computed.opacity === "0" || (region !== null && getComputedStyle(region).visibility === "hidden"),
    });
    if (t < 10000) requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);
})();""".replace("VARIABLE_NAMES", json.dumps(DEFAULT_TOKENS.properties))
"""Installed before the page's own scripts: records every frame, layout shifts and nothing else."""

SUMMARY = """() => {
  const probe = window.__firstPaint;
  const shown = probe.frames.filter((f) => f.content && !f.hidden);
  const styled = shown.filter((f) => f.styled);
  let restyles = 0;
  styled.forEach((f, i) => { if (i > 0 && f.style !== styled[i - 1].style) restyles += 1; });
  const [paint] = performance.getEntriesByName("first-paint");
  const hidden = performance.getEntriesByType("measure").filter((m) => m.name.endsWith(":hidden"));
  return {
    default_frames: shown.length - styled.length,
    // A frame's time is when it began; no frame is painted before the first paint.
    first_styled_ms: styled.length ? Math.max(styled[0].t, paint ? paint.startTime : 0) : null,
    first_paint_ms: paint ? paint.startTime : null,
    restyles,
    cls: probe.shifts,
    hidden_ms: hidden.reduce((sum, m) => sum + m.duration, 0),
  };
}"""
"""Reduces the probe's frames to the numbers of one visit (frames before any content are blank, not counted)."""


@dataclass(frozen=True)
class Visit:
    """What one page load showed."""

    default_frames: int
    """Frames with content in the page's default style (no efimero class on ``<html>``), not hidden."""
    first_styled_ms: float | None
    """Navigation start to the first frame that showed content in a predicted style."""
    first_paint_ms: float | None
    """Navigation start to the first paint (Paint Timing ``first-paint``)."""
    restyles: int
    """Times the shown style changed after the first styled frame (the refinement's visible changes)."""
    cls: float
    """Cumulative layout shift of the visit."""
    hidden_ms: float
    """Time anything was hidden, from the User Timing measures ending in ``:hidden``."""


def build_client() -> None:
    """``make client``: ``npm ci`` from the lock file, the package, its types checked, the example app."""
    built = subprocess.run(["make", "-s", "client"], cwd=ROOT, capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise RuntimeError(f"`make client` failed ({built.returncode}):\n{built.stdout}\n{built.stderr}")


def head_snippet(hide_ms: int = 0) -> str:
    """The package's head snippet, minified, as a site's build would get it (node, from the built package)."""
    script = ("import { headSnippet } from 'efimero'; import { transform } from 'esbuild';"
              f"process.stdout.write((await transform(headSnippet({{ hideMs: {hide_ms} }}), {{ minify: true }})).code)")
    return subprocess.run(["node", "--input-type=module", "-e", script], cwd=CLIENT, check=True,
                          capture_output=True, text=True).stdout.strip()


def write_site(folder: Path) -> Path:
    """The example app's build with one page per path of :data:`PATHS`, in ``folder``."""
    shutil.copytree(CLIENT / "example" / "dist", folder, dirs_exist_ok=True)
    page = (folder / "index.html").read_text(encoding="utf-8")
    start, end = "<!-- efimero:first-paint -->", "<!-- /efimero:first-paint -->"
    before, rest = page.split(start)
    block, after = rest.split(end)
    heads = {
        "today": "",
        "hide-page": HIDE_PAGE_SNIPPET,
        "new": block.strip(),
        "new-hide-regions": f"<script>{head_snippet(REGION_HIDE_MS)}</script>",
    }
    for path, head in heads.items():
        (folder / f"{path}.html").write_text(f"{before}{start}\n  {head}\n  {end}{after}", encoding="utf-8")
    return folder


@contextmanager
def example_server(models: Path, db_url: str, site: Path) -> Iterator[LiveServer]:
    """The service on ``models`` with the example site mounted at ``/example/``: one origin, as a site
    that proxies ``/v1`` to the service has."""
    server = LiveServer(ServeSettings(models_dir=models, db_url=db_url, poll_interval_s=0.05))
    server.app.mount("/example", StaticFiles(directory=site, html=True), name="example")
    with server:
        yield server


def open_context(browser: Any, device: str, *, consent: bool = True) -> Any:
    """A fresh browser profile for ``device``: empty cache and storage, the probe installed, the site's
    consent already given (as a consent platform would remember it) unless ``consent`` is False."""
    context = browser.new_context(**DEVICES[device])
    if consent:
        context.add_init_script("localStorage.getItem('trailhead.consent') || "
                                "localStorage.setItem('trailhead.consent', 'yes')")
    context.add_init_script(PROBE)
    return context


def throttle(context: Any, page: Any, device: str) -> None:
    """Add the device's network latency and bandwidth (Chromium DevTools protocol) to every request."""
    network = NETWORKS[device]
    session = context.new_cdp_session(page)
    session.send("Network.enable")
    bytes_per_s = network["mbps"] * 1_000_000 / 8
    session.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": network["latency"],
        "downloadThroughput": bytes_per_s, "uploadThroughput": bytes_per_s,
    })


def visit(context: Any, url: str, device: str, *, screenshot: Path | None = None, settle_ms: int = 600) -> Visit:
    """Load ``url`` in a new page of ``context``, wait until the client has answered and the page has
    settled, and reduce what the probe saw; the page is closed, so its interaction log is sent."""
    page = context.new_page()
    throttle(context, page, device)
    page.goto(url)
    page.wait_for_function("document.documentElement.dataset.efimeroVersion !== undefined", timeout=15_000)
    page.wait_for_timeout(settle_ms)
    summary = page.evaluate(SUMMARY)
    if screenshot is not None:
        page.screenshot(path=str(screenshot), full_page=True)
    page.close(run_before_unload=True)
    return Visit(**summary)


def visit_twice(browser: Any, base: str, path: str, device: str, *, screenshots: Path | None = None) -> list[Visit]:
    """A first visit and a returning one (same profile: the remembered style, the cached stylesheet),
    each screenshot as ``<path>-<device>-<first|returning>.png`` in ``screenshots`` when given."""
    context = open_context(browser, device)
    try:
        url = f"{base}/example/{path}.html"
        shots = {which: screenshots / f"{path}-{device}-{which}.png" if screenshots else None
                 for which in ("first", "returning")}
        return [visit(context, url, device, screenshot=shot) for shot in shots.values()]
    finally:
        context.close()


def median_visit(visits: list[Visit]) -> Visit:
    """The per-field median of repeated visits (None when any run had no styled frame)."""
    def middle(values: list[Any]) -> Any:
        return None if any(v is None for v in values) else statistics.median(values)

    fields = Visit.__dataclass_fields__
    return Visit(**{name: middle([getattr(v, name) for v in visits]) for name in fields})
