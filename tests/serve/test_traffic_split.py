"""Several versions in one service: stable arms per visitor, followed without a restart, fail-safe."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from efimero.registry import Registry, TrafficArm, TrafficSplit
from efimero.store import PredictionRecord, open_engine
from efimero.store.models import PredictionErrorRecord
from tests.serve.conftest import PHONE_AT_NIGHT


def wait_for(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def split_to(candidate: str, share: float, *, salt: str = "test") -> TrafficSplit:
    return TrafficSplit(arms=(TrafficArm(name="canary", version=candidate, share=share),), salt=salt)


@pytest.fixture
def split_client(client, registry_dir):
    """The test client with half the visitors on the older version (arm canary)."""
    root, (older, live) = registry_dir
    Registry(root).set_traffic(split_to(older, 0.5))
    wait_for(lambda: client.get("/v1/model").json()["traffic"])
    return client, older, live


def test_each_visitor_keeps_one_arm_and_the_arm_serves_its_version(split_client) -> None:
    client, older, live = split_client
    seen: dict[str, tuple[str, str]] = {}
    for round_ in range(2):
        for i in range(60):
            body = client.post("/v1/predict", json=PHONE_AT_NIGHT | {"visitor_id": f"v{i}", "session_id": f"s{round_}"})
            assert body.status_code == 200
            served = (body.json()["arm"], body.json()["model_version"])
            assert seen.setdefault(f"v{i}", served) == served
    assert set(seen.values()) == {("canary", older), ("live", live)}
    assert 15 <= Counter(arm for arm, _ in seen.values())["canary"] <= 45
    info = client.get("/v1/model").json()
    assert info["version"] == live
    assert info["traffic"] == [{"arm": "canary", "version": older, "share": 0.5, "served": True, "error": None}]


def test_without_a_visitor_id_the_session_keeps_the_arm(split_client) -> None:
    client, _, _ = split_client
    for i in range(20):
        arms = {client.post("/v1/predict", json=PHONE_AT_NIGHT | {"session_id": f"s{i}"}).json()["arm"] for _ in range(3)}
        assert len(arms) == 1


def test_every_record_stores_its_arm_version_and_latency(split_client, tmp_path) -> None:
    client, older, live = split_client
    contexts = [PHONE_AT_NIGHT | {"visitor_id": f"v{i}"} for i in range(40)]
    singles = [client.post("/v1/predict", json=context).json() for context in contexts[:20]]
    batch = client.post("/v1/predict/batch", json={"contexts": contexts[20:]}).json()["predictions"]
    assert client.app.state.store.flush()
    with open_engine(f"sqlite:///{tmp_path}/store.db", create=False).connect() as connection:
        rows = {row.prediction_id: row for row in connection.execute(select(PredictionRecord))}
    for response in singles + batch:
        row = rows[response["prediction_id"]]
        assert (row.arm, row.model_version) == (response["arm"], response["model_version"])
        assert 0 < row.latency_ms < 1000
        assert "visitor_id" not in row.context
    assert {row.arm for row in rows.values()} == {"canary", "live"}


def test_a_failing_candidate_answers_500_and_is_recorded_as_its_arms_error(split_client, tmp_path) -> None:
    client, older, _ = split_client
    routing = client.app.state.holder.routing

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the candidate cannot predict")

    routing.candidates["canary"].predict = broken
    canary_visitor = next(f"v{i}" for i in range(100) if routing.split.assign(f"v{i}") == "canary")
    with pytest.raises(RuntimeError):
        client.post("/v1/predict", json=PHONE_AT_NIGHT | {"visitor_id": canary_visitor})
    assert client.app.state.store.flush()
    with open_engine(f"sqlite:///{tmp_path}/store.db", create=False).connect() as connection:
        errors = connection.execute(select(PredictionErrorRecord)).all()
    assert [(e.arm, e.model_version) for e in errors] == [("canary", older)]
    assert "the candidate cannot predict" in errors[0].error


def test_a_candidate_that_cannot_load_sends_its_visitors_to_the_live_version(client, registry_dir) -> None:
    root, (older, live) = registry_dir
    registry = Registry(root)
    registry.set_traffic(split_to(older, 1.0))
    wait_for(lambda: client.get("/v1/model").json()["traffic"])
    client.app.state.holder.routing = None  # as after a restart: the candidate must load from disk
    (root / older / "preprocessing.json").write_text("{}")
    client.app.state.holder.refresh()
    info = client.get("/v1/model").json()
    assert info["traffic"][0]["served"] is False and "checksum" in info["traffic"][0]["error"]
    assert f"arm 'canary' ({older}) is not served" in info["last_error"]
    response = client.post("/v1/predict", json=PHONE_AT_NIGHT | {"visitor_id": "anyone"}).json()
    assert (response["arm"], response["model_version"]) == ("live", live)
    assert client.get("/readyz").status_code == 200


def test_the_split_is_followed_without_a_restart_and_removing_it_sends_everyone_live(split_client, registry_dir) -> None:
    client, older, live = split_client
    Registry(registry_dir[0]).set_traffic(split_to(older, 1.0))
    wait_for(lambda: client.get("/v1/model").json()["traffic"][0]["share"] == 1.0)
    assert {client.post("/v1/predict", json=PHONE_AT_NIGHT | {"visitor_id": f"v{i}"}).json()["arm"]
            for i in range(10)} == {"canary"}
    Registry(registry_dir[0]).set_traffic(None)
    wait_for(lambda: client.get("/v1/model").json()["traffic"] == [])
    assert {client.post("/v1/predict", json=PHONE_AT_NIGHT | {"visitor_id": f"v{i}"}).json()["model_version"]
            for i in range(10)} == {live}


def test_a_torn_split_file_keeps_the_split_in_memory_and_says_so(split_client, registry_dir) -> None:
    client, _, _ = split_client
    (registry_dir[0] / "traffic.json").write_text('{"arms": [')
    wait_for(lambda: "traffic.json cannot be used" in (client.get("/v1/model").json()["last_error"] or ""))
    assert client.get("/v1/model").json()["traffic"][0]["share"] == 0.5
