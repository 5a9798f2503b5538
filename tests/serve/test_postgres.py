"""The store on a real PostgreSQL server, through the same code path as SQLite."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from efimero.serve import ServeSettings, create_app
from tests.serve.conftest import PHONE_AT_NIGHT, interaction

pytestmark = pytest.mark.postgres


def test_predictions_and_interactions_land_in_postgres(postgres_url, registry_dir) -> None:
    settings = ServeSettings(models_dir=registry_dir[0], db_url=postgres_url,
                             user_id_pepper_file=registry_dir[0].parent / "pepper")
    with TestClient(create_app(settings)) as client:
        assert client.app.state.store.engine.dialect.name == "postgresql"
        prediction = client.post("/v1/predict", json=PHONE_AT_NIGHT).json()
        assert client.post("/v1/interactions", json=interaction(prediction["prediction_id"], user_id="u-1")).status_code == 202
        assert client.post("/v1/interactions", json=interaction("missing")).status_code == 422
        assert client.get("/readyz").status_code == 200
        client.app.state.store.flush()
        assert client.app.state.store.counts() == {"predictions": 1, "interactions": 1}
    engine = create_engine(postgres_url)
    with engine.connect() as connection:
        row = connection.execute(text(
            "SELECT p.features->>'is_mobile', p.css_classes->>'theme', i.scroll_depth, i.user_hash "
            "FROM interactions i JOIN predictions p USING (prediction_id)"
        )).one()
    engine.dispose()
    assert row[0] == "1" and row[1] == prediction["css_classes"]["theme"] and row[2] == 0.82 and len(row[3]) == 64


@pytest.mark.parametrize("body", [
    b'{"session_id": "s\\u0000", "FIELDS"}',
    b'{"session_id": "s", "ui_preference_feedback": "calm\\u0000", "FIELDS"}',
    b'{"session_id": "s", "device_info": {"gpu": NaN}, "FIELDS"}',
])
def test_what_postgres_would_refuse_is_a_422_and_the_writer_keeps_up(postgres_url, registry_dir, body) -> None:
    settings = ServeSettings(models_dir=registry_dir[0], db_url=postgres_url,
                             user_id_pepper_file=registry_dir[0].parent / "pepper")
    with TestClient(create_app(settings)) as client:
        prediction_id = client.post("/v1/predict", json=PHONE_AT_NIGHT).json()["prediction_id"]
        fields = interaction(prediction_id)
        del fields["session_id"]
        raw = body.replace(b"\"FIELDS\"", json.dumps(fields)[1:-1].encode())
        refused = client.post("/v1/interactions", content=raw, headers={"content-type": "application/json"})
        assert refused.status_code == 422
        assert client.post("/v1/interactions", json=interaction(prediction_id)).status_code == 202
        assert client.app.state.store.flush() and client.app.state.store.pending == 0
        assert client.app.state.store.counts() == {"predictions": 1, "interactions": 1}
