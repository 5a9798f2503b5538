"""The service explores as its registry says, from the next poll, and logs every decision with its propensity."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from efimero.registry import ExplorationPolicy, Guardrail, Registry
from efimero.schema import CSS_CLASS_TARGETS
from efimero.store import PredictionRecord, open_engine
from tests.serve.conftest import PHONE_AT_NIGHT
from tests.serve.test_traffic_split import wait_for

CONTRAST = Guardrail(slot="css_class_theme", when={"prefers_contrast": "more"},
                     rank={"tema-claro": 0, "tema-oscuro": 0, "tema-alto-contraste": 1})
LABELS = {target.name: len(target.labels) for target in CSS_CLASS_TARGETS}


def stored(client, tmp_path) -> dict[str, PredictionRecord]:
    assert client.app.state.store.flush()
    with open_engine(f"sqlite:///{tmp_path}/store.db", create=False).connect() as connection:
        return {row.prediction_id: row for row in connection.execute(select(PredictionRecord))}


def test_greedy_serving_logs_each_slot_with_propensity_one(client, tmp_path) -> None:
    body = client.post("/v1/predict", json=PHONE_AT_NIGHT).json()
    assert client.get("/v1/model").json()["exploration"] is None
    row = stored(client, tmp_path)[body["prediction_id"]]
    assert row.decisions["policy_id"] == "greedy" and row.decisions["propensity"] == 1.0
    assert {slot.removeprefix("css_class_"): choice["label"] for slot, choice in row.decisions["slots"].items()} \
        == body["css_classes"]
    assert all(choice["label"] == choice["greedy"] for choice in row.decisions["slots"].values())


def test_an_exploring_deployment_serves_other_labels_and_logs_their_true_propensity(
    client, registry_dir, tmp_path
) -> None:
    policy = ExplorationPolicy(mode="epsilon_greedy", epsilon=0.6, holdout_share=0.1, salt="t", guardrails=(CONTRAST,))
    Registry(registry_dir[0]).set_exploration(policy)
    wait_for(lambda: client.get("/v1/model").json()["exploration"] is not None)
    info = client.get("/v1/model").json()["exploration"]
    assert info["policy_id"] == policy.policy_id and info["epsilon"] == 0.6 and "salt" not in info
    singles = [client.post("/v1/predict", json=PHONE_AT_NIGHT | {"visitor_id": f"v{i}"}).json() for i in range(150)]
    batch = client.post("/v1/predict/batch", json={"contexts": [PHONE_AT_NIGHT | {"visitor_id": f"b{i}"}
                                                                for i in range(150)]}).json()["predictions"]
    rows = stored(client, tmp_path)
    explored = held_out = 0
    for response in singles + batch:
        decisions = rows[response["prediction_id"]].decisions
        assert decisions["policy_id"] == policy.policy_id
        for slot, choice in decisions["slots"].items():
            assert response["css_classes"][slot.removeprefix("css_class_")] == choice["label"]
            expected = 0.6 / LABELS[slot] + (0.4 if choice["label"] == choice["greedy"] else 0.0)
            assert choice["propensity"] == pytest.approx(1.0 if decisions["holdout"] else expected)
        explored += any(c["label"] != c["greedy"] for c in decisions["slots"].values())
        held_out += decisions["holdout"]
    assert 0.6 < explored / 300 < 0.95 and 10 <= held_out <= 55


def test_guardrails_hold_for_visitors_who_asked_for_more_contrast(client, registry_dir, tmp_path) -> None:
    Registry(registry_dir[0]).set_exploration(
        ExplorationPolicy(mode="epsilon_greedy", epsilon=1.0, holdout_share=0.0, salt="t", guardrails=(CONTRAST,)))
    wait_for(lambda: client.get("/v1/model").json()["exploration"] is not None)
    for i in range(60):
        client.post("/v1/predict", json=PHONE_AT_NIGHT | {"prefers_contrast": "more", "visitor_id": f"v{i}"})
    rank = CONTRAST.rank
    for row in stored(client, tmp_path).values():
        theme = row.decisions["slots"]["css_class_theme"]
        allowed = [label for label in rank if rank[label] >= rank[theme["greedy"]]]
        assert rank[theme["label"]] >= rank[theme["greedy"]]
        assert theme["propensity"] == pytest.approx(1 / len(allowed))
        assert row.decisions["slots"]["css_class_density"]["propensity"] == pytest.approx(1 / 3)  # unguarded


def test_a_broken_policy_file_keeps_the_policy_in_memory_and_says_so(client, registry_dir) -> None:
    policy = ExplorationPolicy(mode="epsilon_greedy", epsilon=0.2, salt="t")
    Registry(registry_dir[0]).set_exploration(policy)
    wait_for(lambda: client.get("/v1/model").json()["exploration"] is not None)
    (registry_dir[0] / "exploration.json").write_text("{torn")
    wait_for(lambda: "exploration.json cannot be used" in (client.get("/v1/model").json()["last_error"] or ""))
    assert client.get("/v1/model").json()["exploration"]["policy_id"] == policy.policy_id
    assert client.post("/v1/predict", json=PHONE_AT_NIGHT).status_code == 200
    Registry(registry_dir[0]).set_exploration(None)
    wait_for(lambda: client.get("/v1/model").json()["exploration"] is None)
    assert client.get("/v1/model").json()["last_error"] is None
