"""The dashboard: its JSON views on real traffic, the admin actions behind the token, and the page in Chromium.

One served world is built per module (a production target with a rollout at 25 %, an hour of
visits through the real HTTP API, the monitor's alerts, a retraining check); the admin actions,
which change a target, each get a target of their own.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from efimero.config import load_environments_config, load_retraining_config
from efimero.deploy import deploy
from efimero.deploy.rollout import StageCheck, start, step
from efimero.deploy.rollout_state import RolloutPlan
from efimero.errors import ConfigError
from efimero.experiment import live as experiment
from efimero.monitor import check, record_and_notify
from efimero.pipeline.auto import auto_retrain
from efimero.registry import Registry
from efimero.serve import ServeSettings, create_app
from efimero.serve.dashboard import DashboardSources, ViewCache
from efimero.serve.routes.dashboard import get_sources
from tests.serve.conftest import DESKTOP_AT_NOON, PHONE_AT_NIGHT, LiveServer, interaction
from tests._browser import CHROMIUM, FLAGS

TOKEN = "s3cret-admin-token-for-tests"
START = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)
"""The simulated hour of traffic starts here, days before the wall clock: the dashboard's store clock."""
END = START + timedelta(hours=1)
VISITS = 480
MONITORING = {"window_minutes": 5, "min_sessions": 5, "min_predictions": 10}
TABLET: dict[str, Any] = DESKTOP_AT_NOON | {
    "viewport_width": 820, "viewport_height": 1180, "screen_width": 820, "screen_height": 1180,
    "device_pixel_ratio": 2, "max_touch_points": 5, "pointer": "coarse", "ua_mobile": False,
}


@dataclass
class Target:
    """A production environment fed from a source registry, with the configs the dashboard reads."""

    source: Path
    older: str
    newer: str
    prod: Path
    config_dir: Path
    db_url: str

    @property
    def environments(self):
        return load_environments_config(self.config_dir / "environments.yaml")

    def settings(self) -> ServeSettings:
        return ServeSettings(models_dir=self.prod, db_url=self.db_url, poll_interval_s=0.05)

    def sources(self, *, token: str | None = TOKEN, served: Path | None = None) -> DashboardSources:
        return DashboardSources(served or self.prod, self.db_url, admin_token=token,
                                retraining_config=self.config_dir / "retraining.yaml",
                                environments_config=self.config_dir / "environments.yaml")


def make_target(root: Path, served_registry: tuple[Path, list[str]]) -> Target:
    """Copy the served registry as the source, deploy its older version to production."""
    source = root / "models"
    shutil.copytree(served_registry[0], source)
    older, newer = served_registry[1]
    config_dir, prod, db = root / "config", root / "prod", root / "store.db"
    config_dir.mkdir()
    (config_dir / "environments.yaml").write_text(yaml.safe_dump({"environments": {
        "production": {"model_dir": str(prod), "validation_required": False, "backup_enabled": False},
        "staging": {"model_dir": str(root / "staging")},
    }}))
    (config_dir / "retraining.yaml").write_text(yaml.safe_dump({"retraining": {
        "models_dir": str(source), "monitoring": MONITORING,
        "data_collection": {"db_url": f"sqlite:///{db}", "output_dir": str(root / "collected")},
    }}))
    target = Target(source, older, newer, prod, config_dir, f"sqlite:///{db}")
    assert deploy(source, "production", version=older, environments=target.environments).status == "success"
    return target


def overridden(app: FastAPI, sources: DashboardSources) -> FastAPI:
    app.dependency_overrides[get_sources] = lambda: sources
    return app


def visit(client: httpx.Client, index: int) -> str:
    """One visitor at its moment of the hour: predict, then a log that confirms the style or bounces.

    The canary is made worse on purpose (45 % confirmed against 85 %), so the charts differ and
    the monitor raises accuracy alerts.
    """
    chance = random.Random(index)
    at = START + timedelta(seconds=index * 3600 / VISITS + 1)
    offset = chance.choice([-60, 0, 300])
    template = chance.choice([PHONE_AT_NIGHT, DESKTOP_AT_NOON, TABLET])
    context = template | {"local_time": (at - timedelta(minutes=offset)).strftime("%Y-%m-%dT%H:%M:%S"),
                          "timezone_offset_min": offset, "visitor_id": f"visitor-{index}"}
    served = client.post("/v1/predict", json=context).raise_for_status().json()
    if chance.random() < (0.45 if served["arm"] == "canary" else 0.85):
        log = interaction(served["prediction_id"], session_id=f"s{index}",
                          session_duration=chance.randint(130_000, 400_000), interactions_count=chance.randint(6, 15))
    else:
        log = interaction(served["prediction_id"], session_id=f"s{index}",
                          session_duration=chance.randint(3_000, 25_000), interactions_count=0, bounce_rate=0.9,
                          scroll_depth=0.1, click_through_rate=0.0)
    client.post("/v1/interactions", json=log).raise_for_status()
    return served["arm"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, served_registry) -> Iterator[tuple[LiveServer, Target]]:
    """Production serving the older version, the newer one at 25 % after a passed canary stage, an hour of visits."""
    target = make_target(tmp_path_factory.mktemp("world"), served_registry)
    plan = RolloutPlan(stages=(0.05, 0.25, 0.5, 1.0), hold_minutes=5)
    start(target.source, "production", version=target.newer, now=START, plan=plan, environments=target.environments,
          clock="store", db_url=target.db_url)
    passed = lambda state, begin, end: StageCheck("pass", "canary within every rule on 31 sessions")  # noqa: E731
    state = step("production", now=START + timedelta(minutes=6), judge=passed, environments=target.environments)
    with LiveServer(target.settings()) as server:
        overridden(server.app, target.sources())
        server.wait_for_traffic(state.split())
        with httpx.Client(base_url=server.url, timeout=10) as client, ThreadPoolExecutor(8) as pool:
            arms = list(pool.map(lambda index: visit(client, index), range(VISITS)))
        assert 0.15 < arms.count("canary") / VISITS < 0.35
        store = server.app.state.store
        assert store.flush()
        rules = load_retraining_config(target.config_dir / "retraining.yaml").retraining.monitoring
        for minutes in (30, 45, 60):
            report = check(store.engine, rules, now=START + timedelta(minutes=minutes), registry=Registry(target.prod))
            record_and_notify(store.engine, report.anomalies, None)
        auto_retrain(load_retraining_config(target.config_dir / "retraining.yaml"), mode="check")
        yield server, target


@pytest.fixture(scope="module")
def api(world) -> Iterator[httpx.Client]:
    server, _ = world
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def test_summary_shows_the_live_model_rollout_deployments_alerts_and_retraining(world, api) -> None:
    _, target = world
    summary = api.get("/v1/dashboard/summary").raise_for_status().json()
    assert summary["problems"] == []
    assert summary["live"]["version"] == target.older and summary["environment"] == "production"
    assert summary["live"]["metrics"]["mean_accuracy"] > 0.5
    assert summary["live"]["traffic"] == [
        {"arm": "canary", "version": target.newer, "share": 0.25, "served": True, "error": None}]
    rollout = summary["rollout"]
    assert (rollout["status"], rollout["stages"], rollout["stage_index"], rollout["share"]) == (
        "running", [0.05, 0.25, 0.5, 1.0], 1, 0.25)
    assert [event["event"] for event in rollout["events"]] == ["canary", "advanced"]
    assert rollout["clock"] == "store" and rollout["version"] == target.newer
    deployments = summary["deployments"]
    assert [(d["action"], d["status"]) for d in deployments] == [("rollout", "running"), ("deploy", "success")]
    assert any(step.startswith("✅ copy") for step in deployments[1]["steps"])
    assert str(target.source) not in str(summary)  # absolute server paths never leave it
    alerts = summary["alerts"]
    assert alerts and {alert["rule"] for alert in alerts} >= {"accuracy_drop"}
    assert all(alert["arm"] == "canary" for alert in alerts if alert["rule"] == "accuracy_drop")
    retraining = summary["retraining"]
    assert retraining["last_run"]["mode"] == "check" and retraining["last_run"]["outcome"] == "checked"
    assert {t["name"] for t in retraining["last_run"]["triggers"]} >= {"time", "data_volume", "performance"}
    schedule = retraining["schedule"]
    trained = datetime.fromisoformat(schedule["trained_at"])
    assert schedule["live_version"] == target.newer
    assert datetime.fromisoformat(schedule["due"]) - trained == timedelta(days=30)
    assert datetime.fromisoformat(schedule["earliest"]) - trained == timedelta(days=7)


def test_metrics_are_consecutive_windows_per_arm_with_intervals_on_the_store_clock(world, api) -> None:
    _, target = world
    view = api.get("/v1/dashboard/metrics").raise_for_status().json()
    assert view["clock"]["source"] == "store"  # the visits are days before the wall clock
    now = datetime.fromisoformat(view["clock"]["now"])
    assert END - timedelta(seconds=10) < now <= END
    assert (view["windows"], view["window_minutes"], view["min_sessions"]) == (12, 5, 5)
    series = {(s["arm"], s["model_version"]): s["points"] for s in view["series"]}
    assert set(series) == {("live", target.older), ("canary", target.newer)}
    assert [s["arm"] for s in view["series"]] == ["live", "canary"]
    for points in series.values():
        assert len(points) == 12
        ends = [datetime.fromisoformat(p["end"]) for p in points]
        assert ends[-1] == now and all(b - a == timedelta(minutes=5) for a, b in pairwise(ends))
    measured = [p for points in series.values() for p in points if p["accuracy"]["value"] is not None]
    assert len(measured) >= 16
    for point in measured:
        for name in ("accuracy", "session_duration_s"):
            m = point[name]
            assert m["low"] <= m["value"] <= m["high"] and m["count"] == point["sessions"] >= 5
        assert 0 <= point["accuracy"]["low"] and point["accuracy"]["high"] <= 1
    live = [p["accuracy"]["value"] for p in series[("live", target.older)] if p["accuracy"]["value"] is not None]
    canary = [p["accuracy"]["value"] for p in series[("canary", target.newer)] if p["accuracy"]["value"] is not None]
    assert sum(live) / len(live) > sum(canary) / len(canary) + 0.2
    assert all(p["latency_p95_ms"]["value"] is None or p["latency_p95_ms"]["value"] > 0 for p in measured)


def test_a_given_moment_and_window_sizes_are_honoured(api) -> None:
    view = api.get("/v1/dashboard/metrics", params={"at": "2026-11-25T22:10:00Z", "windows": 4,
                                                     "window_minutes": 5}).raise_for_status().json()
    assert view["clock"]["source"] == "given" and view["clock"]["now"].startswith("2026-11-25T22:10:00")
    for series in view["series"]:
        points = series["points"]
        assert [p["end"][11:16] for p in points] == ["21:55", "22:00", "22:05", "22:10"]
        # Before the traffic began the windows are empty, and say so instead of showing 0.
        assert points[0]["predictions"] == 0 and points[0]["accuracy"] == {
            "value": None, "count": 0, "low": None, "high": None, "reason": "no traffic in this window"}
        assert points[-1]["predictions"] > 0
    assert api.get("/v1/dashboard/metrics", params={"windows": 0}).status_code == 422


def test_drift_compares_every_feature_with_the_training_data(world, api) -> None:
    _, target = world
    view = api.get("/v1/dashboard/drift").raise_for_status().json()
    assert view["problem"] is None and view["version"] == target.older
    assert view["current_rows"] == VISITS and view["reference_rows"] > 1000
    assert len(view["features"]) == 19 and view["verdict"] in {"feature drift", "dataset drift"}
    drifted = [f["drifted"] for f in view["features"]]
    assert drifted == sorted(drifted, reverse=True)  # drifted first
    hour = next(f for f in view["features"] if f["feature"] == "hour_of_day")
    assert {"ks", "psi", "wasserstein", "jensen_shannon"} <= set(hour["stats"]) or "chi2" in hour["stats"]
    assert sum(f["importance"] for f in view["features"]) == pytest.approx(1.0)
    quiet = api.get("/v1/dashboard/drift", params={"at": "2026-11-25T21:00:00Z"}).raise_for_status().json()
    assert quiet["features"] == [] and quiet["problem"].startswith("0 sessions in the last 60 minutes")


def test_a_view_is_computed_once_however_many_ask_and_a_failure_is_not_kept() -> None:
    cache, calls = ViewCache(ttl_s=60), []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.2)
        return len(calls)

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(lambda _: cache.get("summary", slow), range(4))) == [1, 1, 1, 1]
    with pytest.raises(ZeroDivisionError):
        cache.get("broken", lambda: 1 / 0)
    assert cache.get("broken", lambda: 2) == 2
    cache.clear()
    assert cache.get("summary", slow) == 2
    assert ViewCache(ttl_s=0).get("summary", slow) == 3  # past its time a view is computed again


def test_openapi_documents_the_dashboard_and_admin_routes(api) -> None:
    schema = api.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/v1/dashboard/summary", "/v1/dashboard/metrics", "/v1/dashboard/drift"):
        assert paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    for path in ADMIN_ROUTES:
        assert paths[path]["post"]["security"] == [{"HTTPBearer": []}]
        assert "401" in paths[path]["post"]["responses"]
    assert "Wilson" in schema["components"]["schemas"]["WindowPoint"]["properties"]["accuracy"]["description"]
    assert "/dashboard" not in paths


def test_the_page_and_its_vendored_chart_library_are_served(api) -> None:
    page = api.get("/dashboard")
    assert page.status_code == 200 and "/static/dashboard.js" in page.text and "http" not in page.text.split("<body")[0]
    assert "export { uPlot as default }" in api.get("/static/vendor/uplot/uPlot.esm.js").text
    assert "MIT License" in api.get("/static/vendor/uplot/LICENSE").text


# -- admin actions ------------------------------------------------------------------------------------


@pytest.fixture
def target(tmp_path: Path, served_registry) -> Target:
    return make_target(tmp_path, served_registry)


@pytest.fixture
def admin(target: Target) -> Iterator[TestClient]:
    with TestClient(overridden(create_app(target.settings()), target.sources())) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ADMIN_ROUTES = ("/v1/admin/rollout/start", "/v1/admin/rollout/abort", "/v1/admin/rollback", "/v1/admin/experiment/stop")


def test_admin_actions_need_the_token(admin) -> None:
    for path in ADMIN_ROUTES:
        for headers in ({}, bearer("wrong-token-of-some-length"), {"Authorization": f"Basic {TOKEN}"}):
            response = admin.post(path, json={"version": "latest"}, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "Bearer <EFIMERO_ADMIN_TOKEN>" in response.json()["detail"]


def test_without_a_configured_token_admin_actions_answer_401_naming_the_variable(target) -> None:
    with TestClient(overridden(create_app(target.settings()), target.sources(token=None))) as client:
        response = client.post("/v1/admin/rollback", json={}, headers=bearer(TOKEN))
        assert response.status_code == 401 and "EFIMERO_ADMIN_TOKEN is not set" in response.json()["detail"]
        assert client.get("/v1/dashboard/summary").status_code == 200  # reading stays open


@pytest.mark.parametrize("token", ["changeme", "CHANGE-ME", "admin", "password", "secret", "token", "test",
                                   "short-but-real"])
def test_a_placeholder_or_short_admin_token_stops_the_start(target, monkeypatch, token) -> None:
    monkeypatch.setenv("EFIMERO_ADMIN_TOKEN", token)
    with pytest.raises(ConfigError, match="EFIMERO_ADMIN_TOKEN must be a secret of at least 16 characters"):
        create_app(target.settings())


def test_the_token_of_the_environment_is_the_one_checked(target, monkeypatch) -> None:
    monkeypatch.setenv("EFIMERO_ADMIN_TOKEN", TOKEN)
    assert create_app(target.settings()).state.dashboard.admin_token == TOKEN


def test_abort_with_the_token_sends_everyone_back(target, admin) -> None:
    start(target.source, "production", version=target.newer, now=START, environments=target.environments,
          db_url=target.db_url)
    assert admin.get("/v1/dashboard/summary").json()["rollout"]["status"] == "running"
    response = admin.post("/v1/admin/rollout/abort", json={"reason": "operator said so"}, headers=bearer(TOKEN))
    assert response.status_code == 200
    assert response.json()["status"] == "aborted" and response.json()["events"][-1]["reason"] == "operator said so"
    assert Registry(target.prod).traffic() is None
    assert admin.get("/v1/dashboard/summary").json()["rollout"]["status"] == "aborted"  # not the cached view
    again = admin.post("/v1/admin/rollout/abort", json={}, headers=bearer(TOKEN))
    assert again.status_code == 409 and "already aborted" in again.json()["detail"]


def test_start_with_the_token_stages_the_candidate_and_refuses_a_second(target, admin) -> None:
    body = {"version": target.newer, "stages": [0.1, 1.0], "clock": "wall"}
    response = admin.post("/v1/admin/rollout/start", json=body, headers=bearer(TOKEN))
    assert response.status_code == 201, response.text
    assert (response.json()["share"], response.json()["stages"]) == (0.1, [0.1, 1.0])
    assert Registry(target.prod).traffic().arm("canary").version == target.newer
    assert admin.post("/v1/admin/rollout/start", json=body, headers=bearer(TOKEN)).status_code == 409
    unknown = admin.post("/v1/admin/rollout/start", json={"version": "v_20000101_000000"}, headers=bearer(TOKEN))
    assert unknown.status_code == 404
    bad = admin.post("/v1/admin/rollout/start", json=body | {"stages": [0.5, 0.2]}, headers=bearer(TOKEN))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "stages"]


def test_rollback_with_the_token_restores_the_previous_version(target, admin) -> None:
    deployed = deploy(target.source, "production", version=target.newer, environments=target.environments)
    assert deployed.status == "success"
    response = admin.post("/v1/admin/rollback", json={}, headers=bearer(TOKEN))
    assert response.status_code == 200, response.text
    record = response.json()
    assert (record["action"], record["version"], record["previous_version"], record["status"]) == (
        "rollback", target.older, target.newer, "success")
    assert Registry(target.prod).current() == target.older


def test_stop_experiment_with_the_token_ends_it_and_404_when_none_runs(target, admin) -> None:
    assert admin.post("/v1/admin/experiment/stop", json={}, headers=bearer(TOKEN)).status_code == 404
    prod = Registry(target.prod)
    prod.adopt(Registry(target.source).path(target.newer))
    engine = admin.app.state.store.engine
    experiment.start(prod, engine, treatment=target.newer, now=START, db_url=target.db_url, allocation=0.2)
    assert admin.get("/v1/dashboard/summary").json()["experiment"]["status"] == "running"
    response = admin.post("/v1/admin/experiment/stop", json={"reason": "enough"}, headers=bearer(TOKEN))
    assert response.status_code == 200, response.text
    stopped = response.json()
    assert (stopped["status"], stopped["stop_reason"], stopped["treatment"]) == ("stopped", "enough", target.newer)
    assert stopped["final"]["decision"] and prod.traffic() is None


def test_a_served_directory_that_is_no_environment_answers_409(target) -> None:
    with TestClient(overridden(create_app(target.settings()), target.sources(served=target.source))) as client:
        response = client.post("/v1/admin/rollback", json={}, headers=bearer(TOKEN))
        assert response.status_code == 409 and "must be the model_dir of an environment" in response.json()["detail"]
        assert str(target.source.parent) not in response.json()["detail"]
        assert client.get("/v1/dashboard/summary").json()["environment"] is None


# -- the page in Chromium ------------------------------------------------------------------------------

DESKTOP = dict(viewport={"width": 1280, "height": 900}, device_scale_factor=1, timezone_id="UTC")
PHONE = dict(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True,
             timezone_id="UTC")


@pytest.mark.browser
@pytest.mark.parametrize(("name", "device"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_the_dashboard_draws_every_section_in_chromium(world, request, name, device) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    server, target = world
    shot = Path(request.config.rootpath) / "test-output" / f"dashboard-{name}.png"
    shot.parent.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        context = browser.new_context(**device)
        page = context.new_page()
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("request", lambda req: errors.append(f"off-site request {req.url}")
                if not req.url.startswith(server.url) else None)
        page.goto(f"{server.url}/dashboard")
        page.wait_for_function("document.querySelectorAll('.charts canvas').length === 4")
        page.wait_for_function("document.querySelectorAll('#drift tbody tr').length === 19")
        page.wait_for_timeout(300)
        page.screenshot(path=str(shot), full_page=True)
        text = page.text_content("main")
        stages = page.eval_on_selector_all("ol.stages li", "items => items.map(i => [i.textContent, i.className])")
        widths = page.eval_on_selector_all(".charts canvas", "items => items.map(c => c.getBoundingClientRect().width)")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        browser.close()
    assert errors == []
    assert stages == [["5 %", "done"], ["25 %", "current"], ["50 %", "todo"], ["100 %", "todo"]]
    for expected in (target.older, target.newer, "accuracy_drop", "Timeline", "advanced", "time trigger due"):
        assert expected in text, expected
    assert overflow <= 0 and all(width > 200 for width in widths)
    assert shot.stat().st_size > 30_000
