"""The Grafana dashboard (dashboards/grafana/efimero.json) against a real Prometheus scraping a live service.

Debian's ``prometheus`` (``make prometheus`` installs it) starts on a free port in a temp dir and
scrapes a :class:`~tests.serve.conftest.LiveServer` every second, while the test drives traffic:
predictions (one batch), interaction logs, refused requests, a hot swap and monitoring rounds
that measure prediction drift and record an alert. Then every query of the dashboard, its
Grafana variables replaced by concrete values, must return data through Prometheus's HTTP API.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from efimero.registry import Registry
from efimero.serve import ServeSettings, create_app
from tests._postgres import free_port
from tests.serve.conftest import PHONE_AT_NIGHT, LiveServer, interaction

DASHBOARD = Path(__file__).parents[2] / "dashboards" / "grafana" / "efimero.json"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
JOB = "efimero"
VALUES = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m", "job": JOB, "route": ".+"}
"""Concrete values for the Grafana variables of the queries."""


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def concrete(query: str) -> str:
    """``query`` with every ``$name`` and ``${name}`` replaced by its value in :data:`VALUES`."""
    def value(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        assert name in VALUES, f"unknown Grafana variable ${name} in {query}"
        return VALUES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, query)


def test_the_dashboard_is_an_importable_grafana_dashboard(client: TestClient) -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 36 and board["uid"] and board["title"]
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    datasource = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    # Every metric the queries name is one the service exports (a counter's family, its _total, a histogram's _bucket).
    exported = set()
    for name in re.findall(r"^# TYPE (\w+) ", client.get("/metrics").text, flags=re.M):
        exported |= {name, f"{name}_total", f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    for panel in panels():
        assert panel["datasource"] == datasource, panel["title"]
        assert panel["targets"] and {"h", "w", "x", "y"} <= panel["gridPos"].keys(), panel["title"]
        assert len({target["refId"] for target in panel["targets"]}) == len(panel["targets"]), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == datasource and target["expr"], panel["title"]
            named = set(re.findall(r"\befimero_\w+", target["expr"]))
            assert named and named <= exported, f"{panel['title']}: {named - exported} not in /metrics"
    sections = {panel["title"] for panel in board["panels"] if panel["type"] == "row"}
    assert sections == {"Traffic", "Predictions", "Interaction store", "Model", "Monitoring: drift and alerts"}


def test_the_monitoring_loop_exports_anomalies_alerts_and_drift(registry_dir: tuple[Path, list[str]],
                                                               tmp_path: Path) -> None:
    settings = ServeSettings(models_dir=registry_dir[0], db_url=f"sqlite:///{tmp_path}/store.db", poll_interval_s=0.05,
                             monitor_interval_s=0.1, monitor_clock="store")
    with TestClient(create_app(settings)) as client:
        metrics = client.app.state.metrics.registry
        drift = {"rule": "prediction_drift", "severity": "low"}
        # Every rule and outcome is exported at 0 before the first round.
        assert metrics.get_sample_value("efimero_monitor_alerts_total", drift) == 0
        assert metrics.get_sample_value("efimero_monitor_anomalies", {"rule": "error_rate", "severity": "high"}) == 0
        assert metrics.get_sample_value("efimero_monitor_rounds_total", {"outcome": "failed"}) == 0
        batch = {"contexts": [at(1, i % 60) for i in range(110)]}  # prediction drift needs 100 predictions
        assert client.post("/v1/predict/batch", json=batch).status_code == 200
        assert client.app.state.store.flush()
        version = client.post("/v1/predict", json=at(6)).json()["model_version"]  # closes the window 23:00-23:05
        psi = {"model_version": version, "arm": "live"}

        def sample(name: str, labels: dict[str, str]) -> float | None:
            return metrics.get_sample_value(name, labels)

        wait_until(lambda: sample("efimero_monitor_alerts_total", drift) == 1)
        rounds = sample("efimero_monitor_rounds_total", {"outcome": "ok"}) or 0
        wait_until(lambda: (sample("efimero_monitor_rounds_total", {"outcome": "ok"}) or 0) >= rounds + 2)
        assert sample("efimero_monitor_alerts_total", drift) == 1  # the same window again: no new alert
        assert sample("efimero_monitor_anomalies", drift) == 1
        assert (sample("efimero_monitor_prediction_drift_psi", psi) or 0) >= 0.15
        # The next window holds one visit: drift is not measured there, and its series goes.
        client.post("/v1/predict", json=at(11))
        wait_until(lambda: sample("efimero_monitor_prediction_drift_psi", psi) is None)
        assert sample("efimero_monitor_anomalies", drift) == 0


def wait_until(condition: Any, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


# -- a real Prometheus ---------------------------------------------------------------------------

class Prometheus:
    """Debian's prometheus in ``directory``, scraping ``target`` (host:port) every second."""

    def __init__(self, directory: Path, target: str) -> None:
        self.directory, self.port = directory, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (directory / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{target}']\n",
            encoding="utf-8",
        )
        self.log = (directory / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={directory / 'prometheus.yml'}", f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=directory,
        )
        self.http = httpx.Client(base_url=self.url, timeout=5)
        self.wait(lambda: self.http.get("/-/ready").status_code == 200, "prometheus did not become ready")

    def wait(self, condition: Any, message: str, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process.poll() is None, f"prometheus exited: {self.logs()}"
            try:
                if condition():
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{message}; its log: {self.logs()}"
            time.sleep(0.1)

    def logs(self) -> str:
        return (self.directory / "prometheus.log").read_text(encoding="utf-8", errors="replace")[-2000:]

    def last_scrape(self) -> float:
        """When the service was last scraped successfully (epoch seconds), 0 before that."""
        targets = self.http.get("/api/v1/targets").json()["data"]["activeTargets"]  # none until discovered
        if not targets or targets[0]["health"] != "up":
            return 0.0
        stamp = targets[0]["lastScrape"]  # RFC 3339 in UTC with nanoseconds; whole seconds are enough
        return datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()

    def scraped_after(self, moment: float, scrapes: int = 1) -> None:
        """Block until ``scrapes`` successful scrapes have begun after ``moment`` (epoch seconds)."""
        self.wait(lambda: self.last_scrape() >= math.floor(moment) + scrapes, "the service was not scraped")

    def query(self, expr: str) -> list[dict[str, Any]]:
        answer = self.http.get("/api/v1/query", params={"query": expr}).json()
        assert answer["status"] == "success", f"{expr}: {answer}"
        return answer["data"]["result"]

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.http.close()
        self.log.close()


@pytest.fixture
def prometheus_binary() -> str:
    if not Path(PROMETHEUS).exists():
        pytest.skip("no prometheus binary (make prometheus, or apt-get install prometheus)")
    return PROMETHEUS


@pytest.fixture
def scraped(prometheus_binary: str, registry_dir: tuple[Path, list[str]],
            tmp_path: Path) -> Iterator[tuple[LiveServer, Prometheus]]:
    """A live service whose monitoring loop runs every 0.2 s on the store clock, and a Prometheus scraping it."""
    settings = ServeSettings(models_dir=registry_dir[0], db_url=f"sqlite:///{tmp_path}/store.db", poll_interval_s=0.05,
                             monitor_interval_s=0.2, monitor_clock="store")
    with LiveServer(settings) as server:
        (tmp_path / "prometheus").mkdir()
        prometheus = Prometheus(tmp_path / "prometheus", f"127.0.0.1:{server.port}")
        try:
            yield server, prometheus
        finally:
            prometheus.close()


def at(minute: int, second: int = 0) -> dict[str, Any]:
    """The phone-at-night context at 23:mm:ss: the store clock of the monitoring loop follows these times."""
    return PHONE_AT_NIGHT | {"local_time": f"2026-11-25T23:{minute:02d}:{second:02d}"}


@pytest.mark.prometheus
@pytest.mark.slow
def test_every_query_of_the_dashboard_returns_data(scraped: tuple[LiveServer, Prometheus],
                                                   registry_dir: tuple[Path, list[str]]) -> None:
    server, prometheus = scraped
    state = server.app.state
    registry, (old, new) = Registry(registry_dir[0]), registry_dir[1]
    with httpx.Client(base_url=server.url, timeout=10) as http:
        # Every series starts before the scrapes that follow, so that the rates over them are not 0: a counter
        # whose first sample is already 120 shows no increase.
        http.post("/v1/predict", json=at(1))
        registry.set_current(old)
        server.wait_for_version(old)
        served = http.post("/v1/predict", json=at(1)).json()
        assert http.post("/v1/interactions", json=interaction(served["prediction_id"])).status_code == 202
        assert http.post("/v1/predict", json=at(1) | {"viewport_width": -1}).status_code == 422
        prometheus.scraped_after(time.time(), scrapes=2)

        # A hot swap back, 120 predictions of one context in the window 23:00-23:05 (their classes drift from
        # the training predictions), logs, refused requests, then a visit at 23:06 that closes the window.
        registry.set_current(new)
        server.wait_for_version(new)
        batch = http.post("/v1/predict/batch", json={"contexts": [at(2 + i // 60, i % 60) for i in range(120)]})
        assert batch.status_code == 200
        for i, prediction in enumerate(batch.json()["predictions"][:10]):
            log = interaction(prediction["prediction_id"], session_id=f"s{i}")
            assert http.post("/v1/interactions", json=log).status_code == 202
        assert http.post("/v1/predict", json=at(2) | {"pointer": "pen"}).status_code == 422
        assert http.get("/no-such-page").status_code == 404
        assert state.store.flush()
        http.post("/v1/predict", json=at(6))
        assert state.store.flush()

    def drift_alerted() -> bool:
        labels = {"rule": "prediction_drift", "severity": "low"}
        return bool(state.metrics.registry.get_sample_value("efimero_monitor_alerts_total", labels))

    prometheus.wait(drift_alerted, "the monitoring loop never alerted on prediction drift")
    prometheus.scraped_after(time.time(), scrapes=2)

    empty = []
    for panel in panels():
        for target in panel["targets"]:
            expr = concrete(target["expr"])
            samples = prometheus.query(expr)
            values = [float(sample["value"][1]) for sample in samples]
            if not any(math.isfinite(value) for value in values):
                empty.append(f"{panel['title']} [{target['refId']}]: {expr} -> {samples}")
    assert not empty, "queries without data:\n" + "\n".join(empty)

    # What the panels show is what happened.
    def value(expr: str) -> float:
        [sample] = prometheus.query(concrete(expr))
        return float(sample["value"][1])

    assert value("sum(increase(efimero_predictions_total[$__range]))") > 100
    assert value("sum(increase(efimero_model_swaps_total[$__range]))") >= 1
    assert value('sum(efimero_monitor_alerts_total{rule="prediction_drift", severity="low"})') >= 1
    assert value(f'max(efimero_monitor_prediction_drift_psi{{model_version="{new}", arm="live"}})') >= 0.15
    assert value('sum(efimero_http_errors_total{status="422"})') == 2

    # The Grafana variables' label_values() queries list values too.
    listed = {}
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
            assert match, variable["name"]
            answer = prometheus.http.get(f"/api/v1/label/{match[2]}/values", params={"match[]": concrete(match[1])})
            listed[variable["name"]] = answer.json()["data"]
    assert listed["job"] == [JOB] and "/v1/predict" in listed["route"]
