"""A site's own style tokens end to end: generate → train → serve → Chromium applies them → collect.

The tokens are ``config/tokens/editorial.yaml`` (layout and accent classes, four variables in ch,
unitless, rem and s), nothing like efimero's own; no code knows them.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from efimero._api import generate, train
from efimero.collect import collect
from efimero.config import load_training_config
from efimero.css import load_tokens
from efimero.serve import ServeSettings, create_app
from tests._browser import browser  # noqa: F401 - the fixture
from tests.serve.conftest import DESKTOP_AT_NOON, PHONE_AT_NIGHT, LiveServer, interaction

ROOT = Path(__file__).resolve().parents[2]
TOKENS = load_tokens(ROOT / "config" / "tokens" / "editorial.yaml")

SITE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Editorial</title>
<style>
  body { margin: 0; font: 18px/1.5 Georgia, serif; }
  main { max-width: var(--measure, 60ch); margin: 0 auto; padding: var(--gutter, 1rem); }
  h1 { font-size: calc(1rem * var(--type-scale, 1.2) * var(--type-scale, 1.2)); }
  img, .figure { transition: opacity var(--fade-in, 0.3s); }
  .layout-columns main { column-count: 2; column-gap: var(--gutter); }
  .layout-cards main { display: grid; grid-template-columns: repeat(2, 1fr); gap: var(--gutter); }
  .accent-ink { --accent: rgb(20, 30, 60); }
  .accent-sepia { --accent: rgb(112, 66, 20); }
  h1 { color: var(--accent, black); }
</style>
<script type="module">
  import { adapt } from "/static/efimero.js";
  window.served = await adapt();
</script></head>
<body><main><h1>The long read</h1><p>Paragraph one.</p><p>Paragraph two.</p><div class="figure">Figure</div></main>
</body></html>"""

PROBE = """() => {
  const root = document.documentElement, style = getComputedStyle(root);
  const h1 = getComputedStyle(document.querySelector('h1')), main = getComputedStyle(document.querySelector('main'));
  return {
    classes: [...root.classList].sort(),
    attributes: Object.fromEntries([...root.attributes].filter(a => a.name.startsWith('data-efimero-'))
                                   .map(a => [a.name, a.value])),
    variables: Object.fromEntries(['--measure', '--type-scale', '--gutter', '--fade-in', '--font-size-base',
                                   '--animation-duration'].map(n => [n, style.getPropertyValue(n).trim()])),
    served: window.served,
    panel: [...document.querySelectorAll('#style dt')].map(dt => dt.textContent),
    h1Colour: h1.color, h1Size: parseFloat(h1.fontSize), rootFontPx: parseFloat(style.fontSize),
    mainMaxWidth: main.maxWidth, columnCount: main.columnCount, display: main.display,
  };
}"""


@pytest.fixture(scope="module")
def site_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A version trained on 2000 generated rows of the editorial tokens."""
    root = tmp_path_factory.mktemp("site")
    data = generate(2000, output=root / "editorial.csv", seed=3, tokens=TOKENS, validate=True).output
    config = load_training_config(overrides={"training": {"data": {"cv_folds": 0}, "n_jobs": 1}})
    train(data, output=root / "models", config=config, tokens=TOKENS)
    return root / "models"


@pytest.fixture
def models(site_registry: Path, tmp_path: Path) -> Path:
    shutil.copytree(site_registry, tmp_path / "models")
    return tmp_path / "models"


def test_the_version_carries_its_tokens_and_the_api_answers_in_them(models: Path, tmp_path: Path) -> None:
    settings = ServeSettings(models_dir=models, db_url=f"sqlite:///{tmp_path}/store.db", poll_interval_s=0.05)
    with TestClient(create_app(settings)) as client:
        info = client.get("/v1/model").json()
        assert info["style_tokens"]["name"] == "editorial"
        assert [group["group"] for group in info["style_tokens"]["classes"]] == ["layout", "accent"]
        served = [client.post("/v1/predict", json=context).json() for context in (PHONE_AT_NIGHT, DESKTOP_AT_NOON)]
        for answer in served:
            assert set(answer["css_classes"]) == {"layout", "accent"}
            assert answer["css_classes"]["layout"] in TOKENS.classes[0].options
            assert answer["css_classes"]["accent"] in TOKENS.classes[1].options
            assert set(answer["css_variables"]) == {"--measure", "--type-scale", "--gutter", "--fade-in"}
            assert re.fullmatch(r"\d+ch", answer["css_variables"]["--measure"])
            assert re.fullmatch(r"\d+\.\d{3}rem", answer["css_variables"]["--gutter"])
            assert re.fullmatch(r"\d+\.\d{2}s", answer["css_variables"]["--fade-in"])
            assert set(answer["confidences"]) == {"layout", "accent"}
        sheet = client.get("/v1/style.css").text
        assert "--efimero-groups: layout accent;" in sheet and "--measure:" in sheet
        assert "prefers-reduced-motion" not in sheet  # no animation variable among these tokens
        refused = client.get("/v1/style.css", params={"groups": "theme"})
        assert refused.status_code == 422 and "layout, accent" in refused.text
        batch = client.post("/v1/predict/batch", json={"contexts": [PHONE_AT_NIGHT] * 3}).json()["predictions"]
        assert all(set(answer["css_classes"]) == {"layout", "accent"} for answer in batch)


def _visit(browser, url: str, device: dict[str, Any], shot: Path, page_html: str | None = None) -> dict[str, Any]:
    context = browser.new_context(**device)
    page = context.new_page()
    if page_html is not None:
        page.route(url, lambda route: route.fulfill(status=200, content_type="text/html", body=page_html))
    page.goto(url)
    page.wait_for_function("document.documentElement.dataset.efimeroVersion !== undefined")
    page.wait_for_timeout(200)
    probe = page.evaluate(PROBE)
    page.screenshot(path=str(shot), full_page=True)
    page.close(run_before_unload=True)  # sends the interaction log
    context.close()
    return probe


@pytest.mark.browser
def test_chromium_applies_the_sites_tokens_and_collect_learns_them(browser, models: Path, tmp_path: Path) -> None:
    shots = ROOT / "test-output" / "site-tokens"
    shots.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{tmp_path}/store.db"
    phone = dict(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True, has_touch=True,
                 color_scheme="dark", timezone_id="UTC")
    desktop = dict(viewport={"width": 1600, "height": 1000}, device_scale_factor=1, timezone_id="UTC")
    with LiveServer(ServeSettings(models_dir=models, db_url=db, poll_interval_s=0.05)) as server:
        site = f"{server.url}/editorial.html"
        looks = [_visit(browser, site, device, shots / f"editorial-{name}.png", SITE_PAGE)
                 for name, device in (("phone", phone), ("desktop", desktop))]
        demo = _visit(browser, server.url + "/", desktop, shots / "demo-page.png")
        store = server.app.state.store
        client = TestClient(server.app)
        for look in looks:  # an engaged visit confirms what was served
            assert client.post("/v1/interactions", json=interaction(look["served"]["prediction_id"])).status_code == 202
        store.flush()

    # efimero's demo page follows whatever tokens the version serves: their classes on <html>, listed in its panel
    assert demo["panel"][:3] == ["model", "layout", "accent"] and "--measure" in demo["panel"]
    assert sorted(demo["classes"]) == sorted([demo["attributes"]["data-efimero-layout"],
                                              demo["attributes"]["data-efimero-accent"]])
    for look in looks:
        served = look["served"]["css_classes"]
        assert set(served) == {"layout", "accent"}
        assert sorted(served.values()) == look["classes"]  # exactly the served classes, nothing of efimero's own
        assert look["attributes"] == {"data-efimero-layout": served["layout"], "data-efimero-accent": served["accent"],
                                      "data-efimero-version": look["served"]["model_version"],
                                      "data-efimero-prediction": look["served"]["prediction_id"]}
        assert {name: value for name, value in look["variables"].items() if value} == look["served"]["css_variables"]
    for look in looks:  # the site's CSS reads the tokens
        accent = {"accent-ink": "rgb(20, 30, 60)", "accent-sepia": "rgb(112, 66, 20)"}
        assert look["h1Colour"] == accent[look["served"]["css_classes"]["accent"]]
        scale = float(look["variables"]["--type-scale"])
        assert look["h1Size"] == pytest.approx(look["rootFontPx"] * scale * scale, rel=0.02)
        layout = look["served"]["css_classes"]["layout"]
        assert (look["columnCount"] == "2") == (layout == "layout-columns")
        assert (look["display"] == "grid") == (layout == "layout-cards")

    collected = collect(db, days_back=3650, tokens=TOKENS, output=tmp_path / "collected.csv")
    assert len(collected.frame) == 2
    assert set(TOKENS.task.columns) <= set(collected.frame.columns)
    assert not any(column.startswith(("css_class_theme", "font_size")) for column in collected.frame.columns)
    assert set(collected.frame["css_class_accent"]) <= set(TOKENS.classes[1].options)
    served_measures = sorted(float(look["served"]["css_variables"]["--measure"][:-2]) for look in looks)
    assert sorted(collected.frame["measure"]) == served_measures
