"""The store on a real PostgreSQL server, through the same code path as SQLite."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from efimero.serve import ServeSettings, create_app
from tests.serve.conftest import PHONE_AT_NIGHT, free_port, interaction

pytestmark = pytest.mark.postgres

SHARED_SERVER = os.environ.get("EFIMERO_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _reachable(url: str) -> bool:
    try:
        with create_engine(url).connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def _start_private_server(directory: Path) -> tuple[str, subprocess.Popen | None, str]:
    """initdb + postgres on a free port in ``directory``; returns (url, process, reason)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if not candidates:
        return "", None, "no PostgreSQL binaries under /usr/lib/postgresql (apt-get install postgresql)"
    bin_dir = candidates[0]
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(directory, user="postgres")
    data, port = directory / "data", free_port()
    try:
        subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                       check=True, capture_output=True, timeout=120)
    except (subprocess.SubprocessError, OSError) as exc:
        return "", None, f"initdb failed: {exc}"
    process = subprocess.Popen([*run_as, str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
                                "-k", str(directory), "-c", "listen_addresses=127.0.0.1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 30
    while not _reachable(url):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            return "", None, "the private PostgreSQL server did not start"
        time.sleep(0.2)
    return url, process, ""


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh schema on the shared server, or a private server in a temp dir when none answers."""
    process, directory = None, None
    url = SHARED_SERVER
    if not _reachable(url):
        directory = Path(tempfile.mkdtemp(prefix="efimero-pg-"))
        url, process, reason = _start_private_server(directory)
        if not url:
            print(f"skipping PostgreSQL tests: {reason}")
            pytest.skip(reason)
    schema = f"efimero_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in url else "?"
    yield f"{url}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()
    if process is not None:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


def test_predictions_and_interactions_land_in_postgres(postgres_url, registry_dir) -> None:
    settings = ServeSettings(models_dir=registry_dir[0], db_url=postgres_url)
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
