"""Every route of the service through TestClient, every 422 rule, and the stored log."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from efimero.schema import CSS_TASK
from efimero.store import InteractionRecord, PredictionRecord
from tests.serve.conftest import DESKTOP_AT_NOON, PHONE_AT_NIGHT, interaction

LABELS = {t.name.removeprefix("css_class_"): set(t.labels) for t in CSS_TASK.class_targets}
UNITS = {
    "--font-size-base": r"\d+\.\d{3}rem", "--line-height-base": r"\d\.\d{3}", "--spacing-base": r"\d+\.\d{3}rem",
    "--border-radius-base": r"\d+\.\dpx", "--color-primary-h": r"\d+deg", "--color-primary-s": r"\d+\.\d%",
    "--color-primary-l": r"\d+\.\d%", "--animation-duration": r"\d+ms",
}


def counts(client) -> dict[str, int]:
    client.app.state.store.flush()
    return client.app.state.store.counts()


def test_predict_returns_css_ready_for_the_browser(client, registry_dir) -> None:
    response = client.post("/v1/predict", json=PHONE_AT_NIGHT)
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == registry_dir[1][-1]
    assert {group: label in LABELS[group] for group, label in body["css_classes"].items()} == dict.fromkeys(LABELS, True)
    assert set(body["css_variables"]) == set(UNITS)
    for name, value in body["css_variables"].items():
        assert re.fullmatch(UNITS[name], value), (name, value)
    assert all(0 < p <= 1 for p in body["confidences"].values())


def test_phone_at_night_and_desktop_at_noon_get_different_styles(client) -> None:
    phone = client.post("/v1/predict", json=PHONE_AT_NIGHT).json()
    desktop = client.post("/v1/predict", json=DESKTOP_AT_NOON).json()
    assert phone["css_classes"]["theme"] == "tema-oscuro" and desktop["css_classes"]["theme"] == "tema-claro"
    assert phone["css_classes"]["density"] == "densidad-baja" and desktop["css_classes"]["density"] != "densidad-baja"
    size = lambda p: float(p["css_variables"]["--font-size-base"].removesuffix("rem"))  # noqa: E731
    assert size(phone) > size(desktop)


def test_batch_predicts_in_order_with_one_log_each(client) -> None:
    response = client.post("/v1/predict/batch", json={"contexts": [PHONE_AT_NIGHT, DESKTOP_AT_NOON, PHONE_AT_NIGHT]})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    single = client.post("/v1/predict", json=DESKTOP_AT_NOON).json()
    assert [p["css_classes"]["theme"] for p in predictions][0] == predictions[2]["css_classes"]["theme"]
    assert predictions[1]["css_variables"] == single["css_variables"]
    assert len({p["prediction_id"] for p in predictions}) == 3
    assert counts(client)["predictions"] == 4


def test_interaction_is_stored_with_its_prediction_and_hashed_user(client) -> None:
    prediction = client.post("/v1/predict", json=PHONE_AT_NIGHT | {"session_id": "session-1"}).json()
    response = client.post("/v1/interactions", json=interaction(prediction["prediction_id"], user_id="ana@example.com",
                                                               user_satisfaction=5, ui_preference_feedback="calm"))
    assert response.status_code == 202 and response.json()["prediction_id"] == prediction["prediction_id"]
    assert counts(client) == {"predictions": 1, "interactions": 1}
    with Session(client.app.state.store.engine) as session:
        stored, served = session.execute(
            select(InteractionRecord, PredictionRecord).join(PredictionRecord, PredictionRecord.prediction_id == InteractionRecord.prediction_id)
        ).one()
    assert stored.session_duration_ms == 135_000 and stored.user_satisfaction == 5
    assert stored.user_hash and len(stored.user_hash) == 64 and "ana" not in stored.user_hash
    assert served.context["viewport_width"] == 390 and served.context["session_id"] == "session-1"
    assert served.features["is_mobile"] == 1 and served.features["hour_of_day"] == 23
    assert served.css_classes == prediction["css_classes"]


@pytest.mark.parametrize(
    ("route", "change", "field", "rule"),
    [
        ("/v1/predict", {"viewport_width": -390}, "viewport_width", "greater than 0"),
        ("/v1/predict", {"device_pixel_ratio": 0}, "device_pixel_ratio", "greater than 0"),
        ("/v1/predict", {"local_time": "2026-11-25T24:30:00"}, "local_time", "datetime"),
        ("/v1/predict", {"pointer": "pen"}, "pointer", "'fine', 'coarse' or 'none'"),
        ("/v1/predict", {"history": {"visits": -1}}, "visits", "greater than or equal to 0"),
        ("/v1/predict", {"screen_size": 5}, "screen_size", "Extra inputs are not permitted"),
        ("/v1/interactions", {"user_satisfaction": 7}, "user_satisfaction", "less than or equal to 5"),
        ("/v1/interactions", {"bounce_rate": 1.5}, "bounce_rate", "less than or equal to 1"),
        ("/v1/interactions", {"session_duration": -1}, "session_duration", "greater than or equal to 0"),
        ("/v1/interactions", {"prediction_id": "no-such-prediction"}, "prediction_id", "must name a prediction"),
    ],
)
def test_bad_input_is_a_422_naming_field_and_rule_and_stores_nothing(client, route, change, field, rule) -> None:
    known = client.post("/v1/predict", json=PHONE_AT_NIGHT).json()["prediction_id"]
    before = counts(client)
    body = (PHONE_AT_NIGHT if route == "/v1/predict" else interaction(known)) | change
    response = client.post(route, json=body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][-1] == field and rule in error["msg"]
    assert counts(client) == before


def test_oversized_body_is_refused_before_parsing(client) -> None:
    before = counts(client)
    response = client.post("/v1/predict", content=b"{" + b" " * 70_000 + b"}", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "at most 65536 bytes" in response.json()["detail"][0]["msg"]
    too_many = {"contexts": [PHONE_AT_NIGHT] * 1001}
    assert client.post("/v1/predict/batch", json=too_many).status_code == 422
    assert counts(client) == before


def test_model_health_readiness_and_metrics(client, registry_dir) -> None:
    model = client.get("/v1/model").json()
    assert model["version"] == registry_dir[1][-1] and model["swaps"] == 0
    assert model["metadata"]["algorithm"] == "xgboost" and "mean_accuracy" in model["metrics"]
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["store"] == "ok"
    client.post("/v1/predict", json=PHONE_AT_NIGHT)
    client.post("/v1/predict", json=PHONE_AT_NIGHT | {"device_pixel_ratio": 0})
    text = client.get("/metrics").text
    assert f'efimero_predictions_total{{arm="live",model_version="{model["version"]}"}} 1.0' in text
    assert 'efimero_predicted_class_total{css_class="tema-oscuro",group="theme"} 1.0' in text
    assert 'efimero_http_request_duration_seconds_bucket{le="0.005",route="/v1/predict"}' in text
    assert 'efimero_http_errors_total{route="/v1/predict",status="422"} 1.0' in text


def test_readyz_is_503_without_a_model(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from efimero.serve import ServeSettings, create_app

    settings = ServeSettings(models_dir=tmp_path / "empty", db_url=f"sqlite:///{tmp_path}/s.db")
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "has no current version" in ready.json()["checks"]["model"]
        assert client.post("/v1/predict", json=PHONE_AT_NIGHT).status_code == 503


def test_openapi_describes_every_field(client) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("PredictRequest", "InteractionRequest", "PredictResponse", "VisitorHistory"):
        undocumented = [f for f, spec in schemas[name]["properties"].items() if not spec.get("description")]
        assert undocumented == [], (name, undocumented)


def test_demo_page_and_client_are_served(client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "/static/efimero.js" in page.text
    script = client.get("/static/efimero.js")
    assert script.status_code == 200 and "sendBeacon" in script.text
    css = client.get("/static/demo.css").text
    for name in [label for labels in LABELS.values() for label in labels] + list(UNITS):
        assert name in css, name
