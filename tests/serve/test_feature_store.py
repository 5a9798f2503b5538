"""`--feature-store redis://`: the visitor's history kept server-side, and a Redis outage that degrades, never fails.

Every test starts its own redis-server on a free port in a temp dir (never the shared 6379 one),
since several stop it; the Makefile installs Debian's redis-server for CI.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from efimero.serve import ServeSettings, create_app
from efimero.store import PredictionRecord
from tests._postgres import free_port
from tests.serve.conftest import DESKTOP_AT_NOON, PHONE_AT_NIGHT, interaction

redis = pytest.importorskip("redis")

pytestmark = pytest.mark.redis

DAY_S = 86_400


class RedisServer:
    """A private redis-server without persistence, which a test may stop and start again on the same port."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed (make test installs Debian's)")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client().ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def client(self) -> Any:
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def settings_for(registry_dir: tuple[Path, list[str]], tmp_path: Path, feature_store: str | None) -> ServeSettings:
    return ServeSettings(models_dir=registry_dir[0], db_url=f"sqlite:///{tmp_path}/store.db", poll_interval_s=0.05,
                         monitor_interval_s=0, feature_store=feature_store)


@pytest.fixture
def client(registry_dir: tuple[Path, list[str]], tmp_path: Path, redis_server: RedisServer) -> Iterator[TestClient]:
    settings = settings_for(registry_dir, tmp_path, f"{redis_server.url}?breaker_s=0.2")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def predict(client: TestClient, context: dict[str, Any], **ids: Any) -> str:
    response = client.post("/v1/predict", json=context | ids)
    assert response.status_code == 200, response.text
    return response.json()["prediction_id"]


def served(client: TestClient, prediction_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The history in the logged context, and the features, the prediction was made with."""
    assert client.app.state.store.flush()
    with Session(client.app.state.store.engine) as session:
        record = session.get(PredictionRecord, prediction_id)
        assert record is not None
        return record.context["history"], record.features


def metric(client: TestClient, name: str) -> float:
    """The value of one sample of /metrics (0 when absent)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def log(client: TestClient, prediction_id: str, **changes: Any) -> None:
    response = client.post("/v1/interactions", json=interaction(prediction_id, **changes))
    assert response.status_code == 202, response.text


def test_history_follows_the_visitor_across_devices_and_cleared_browsers(client, redis_server) -> None:
    phone = predict(client, PHONE_AT_NIGHT, visitor_id="visitor-1")
    assert served(client, phone)[0] == PHONE_AT_NIGHT["history"]  # nothing kept yet: the client's history
    log(client, phone)  # 135 s, 9 interactions

    # Another device with a history of its own: the server's (the phone's, plus its visit) wins.
    desktop = predict(client, DESKTOP_AT_NOON, visitor_id="visitor-1")
    history, features = served(client, desktop)
    assert history == {"visits": 3, "avg_session_duration_s": pytest.approx((2 * 80 + 135) / 3, abs=1e-3),
                       "total_interactions": 21, "first_visit": "2026-11-20"}
    assert features["total_interactions"] == 21 and features["days_since_first_visit"] == 5
    assert features["avg_session_duration"] == pytest.approx(98.333, abs=1e-3)
    log(client, desktop, session_duration=40_000, interactions_count=1)

    # A cleared browser sends an empty history: the server still knows the visitor.
    cleared = predict(client, PHONE_AT_NIGHT | {"history": {}}, visitor_id="visitor-1")
    history, features = served(client, cleared)
    assert history["visits"] == 4 and history["total_interactions"] == 22 and history["first_visit"] == "2026-11-20"
    assert history["avg_session_duration_s"] == pytest.approx((2 * 80 + 135 + 40) / 4, abs=1e-3)
    assert features["user_density_group"] == 0 and features["days_since_first_visit"] == 5
    assert metric(client, 'efimero_feature_store_lookups_total{outcome="hit"}') == 2
    assert metric(client, 'efimero_feature_store_lookups_total{outcome="miss"}') == 1


def test_a_visitor_the_server_does_not_know_gets_the_client_history(client, redis_server) -> None:
    known = predict(client, PHONE_AT_NIGHT, visitor_id="known")
    log(client, known)
    stranger = predict(client, DESKTOP_AT_NOON, visitor_id="stranger")
    anonymous = predict(client, DESKTOP_AT_NOON)  # no visitor id (no consent): Redis is not asked
    assert served(client, stranger)[0] == served(client, anonymous)[0] == DESKTOP_AT_NOON["history"]
    assert served(client, stranger)[1]["total_interactions"] == 900
    assert metric(client, 'efimero_feature_store_lookups_total{outcome="miss"}') == 2
    log(client, anonymous)  # a log without a visitor is stored and counts nowhere
    assert redis_server.client().keys("efimero:visitor:*") == [client.app.state.feature_store.visitor_key("known")]


def test_redis_keeps_a_keyed_hash_of_the_visitor_with_a_ttl_and_counts_a_replayed_log_once(
    client, redis_server, registry_dir, tmp_path
) -> None:
    prediction_id = predict(client, PHONE_AT_NIGHT, visitor_id="ana@example.com")
    db = redis_server.client()
    [pending] = db.keys("efimero:pending:*")
    assert pending == f"efimero:pending:{prediction_id}" and 0 < db.ttl(pending) <= DAY_S
    log(client, prediction_id)
    log(client, prediction_id)  # the same log again: 202, stored once, counted once
    assert db.keys("efimero:pending:*") == []
    [key] = db.keys("*")
    assert key.startswith("efimero:visitor:") and len(key) == len("efimero:visitor:") + 32
    assert "ana" not in key and "example" not in key
    assert not any("ana" in value for value in db.hgetall(key).values())
    assert db.hgetall(key)["visits"] == "3"
    assert 180 * DAY_S - 60 < db.ttl(key) <= 180 * DAY_S
    assert key == client.app.state.feature_store.visitor_key("ana@example.com")
    assert key != client.app.state.store.hash_user("ana@example.com")[:32]

    # Another deployment's pepper gives other keys: without the pepper, ids cannot be tested against them.
    other = settings_for(registry_dir, tmp_path / "other", f"{redis_server.url}?ttl_days=2")
    (tmp_path / "other").mkdir()
    with TestClient(create_app(other)) as second:
        assert second.app.state.feature_store.visitor_key("ana@example.com") != key
        log(second, predict(second, PHONE_AT_NIGHT, visitor_id="ana@example.com"))
        assert 2 * DAY_S - 60 < db.ttl(second.app.state.feature_store.visitor_key("ana@example.com")) <= 2 * DAY_S


def test_batches_read_and_feed_the_server_history(client, redis_server) -> None:
    first = predict(client, PHONE_AT_NIGHT, visitor_id="visitor-b")
    log(client, first)
    body = {"contexts": [DESKTOP_AT_NOON | {"visitor_id": "visitor-b"}, DESKTOP_AT_NOON,
                         PHONE_AT_NIGHT | {"visitor_id": "new-visitor"}]}
    response = client.post("/v1/predict/batch", json=body)
    assert response.status_code == 200
    ids = [p["prediction_id"] for p in response.json()["predictions"]]
    assert served(client, ids[0])[0]["visits"] == 3  # the server's
    assert served(client, ids[1])[0] == DESKTOP_AT_NOON["history"]  # no visitor id
    assert served(client, ids[2])[0] == PHONE_AT_NIGHT["history"]  # not known yet
    log(client, ids[0])
    log(client, ids[2])
    store = client.app.state.feature_store
    db = redis_server.client()
    assert db.hget(store.visitor_key("visitor-b"), "visits") == "4"
    assert db.hget(store.visitor_key("new-visitor"), "visits") == "3"


def test_stopping_redis_degrades_to_the_client_history_and_restarting_it_resumes_writes(
    client, redis_server
) -> None:
    log(client, predict(client, PHONE_AT_NIGHT, visitor_id="visitor-o"))
    assert client.get("/readyz").json()["checks"]["feature_store"] == "ok"
    redis_server.stop()

    started = time.perf_counter()
    during = [predict(client, DESKTOP_AT_NOON, visitor_id="visitor-o") for _ in range(20)]
    elapsed = time.perf_counter() - started
    for prediction_id in during[:3]:
        log(client, prediction_id)  # 202: the log is stored, the visit is not counted
    assert served(client, during[0])[0] == DESKTOP_AT_NOON["history"]  # the client's history, no 5xx
    assert elapsed < 5, elapsed  # the breaker skips Redis between probes
    errors = metric(client, 'efimero_feature_store_errors_total{op="read"}')
    assert 1 <= errors <= 20  # fewer when requests come faster than the breaker's 0.2 s
    assert metric(client, "efimero_feature_store_up") == 0
    assert metric(client, 'efimero_feature_store_lookups_total{outcome="unavailable"}') == 20
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["checks"]["feature_store"].startswith("degraded since ")
    assert "client's history" in ready.json()["checks"]["feature_store"]

    redis_server.start()  # empty: nothing was persisted
    time.sleep(0.25)  # past the breaker: the next call probes Redis
    after = predict(client, PHONE_AT_NIGHT, visitor_id="visitor-o")
    assert client.get("/readyz").json()["checks"]["feature_store"] == "ok"
    log(client, after)
    key = client.app.state.feature_store.visitor_key("visitor-o")
    assert redis_server.client().hgetall(key) == {
        "visits": "3", "avg_session_duration_s": "98.333", "total_interactions": "21", "first_visit": "2026-11-20",
    }
    assert metric(client, "efimero_feature_store_up") == 1


def test_a_redis_that_stops_answering_costs_one_timeout_then_nothing(registry_dir, tmp_path, redis_server) -> None:
    settings = settings_for(registry_dir, tmp_path, f"{redis_server.url}?timeout_ms=50&breaker_s=30")
    with TestClient(create_app(settings)) as client:
        predict(client, PHONE_AT_NIGHT, visitor_id="slow")
        redis_server.client().execute_command("CLIENT", "PAUSE", "3000", "ALL")
        timings = []
        for _ in range(10):
            started = time.perf_counter()
            prediction_id = predict(client, PHONE_AT_NIGHT, visitor_id="slow")
            timings.append(time.perf_counter() - started)
        log(client, prediction_id)
        assert max(timings) < 1.0 and sorted(timings)[5] < 0.1, timings
        assert metric(client, 'efimero_feature_store_errors_total{op="read"}') == 1
        assert client.get("/readyz").json()["checks"]["feature_store"].startswith("degraded")


def test_a_redis_down_at_start_only_degrades_the_service(registry_dir, tmp_path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with TestClient(create_app(settings_for(registry_dir, tmp_path, url))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"]["feature_store"].startswith("degraded")
        prediction_id = predict(client, PHONE_AT_NIGHT, visitor_id="visitor")
        log(client, prediction_id)
        assert served(client, prediction_id)[0] == PHONE_AT_NIGHT["history"]
        assert metric(client, 'efimero_feature_store_errors_total{op="ping"}') == 1


def test_without_a_feature_store_nothing_changes(registry_dir, tmp_path) -> None:
    with TestClient(create_app(settings_for(registry_dir, tmp_path, None))) as client:
        prediction_id = predict(client, PHONE_AT_NIGHT, visitor_id="visitor")
        log(client, prediction_id)
        assert served(client, prediction_id)[0] == PHONE_AT_NIGHT["history"]
        assert "feature_store" not in client.get("/readyz").json()["checks"]
        assert "efimero_feature_store" not in client.get("/metrics").text
