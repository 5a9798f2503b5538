"""A PostgreSQL server for the tests: the shared one at 127.0.0.1:5432, or a private one in a temp dir."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a reachable server: the shared one, or a private one in a temp dir when none answers."""
    process, directory = None, None
    url = SHARED_SERVER
    if not _reachable(url):
        directory = Path(tempfile.mkdtemp(prefix="efimero-pg-"))
        url, process, reason = _start_private_server(directory)
        if not url:
            print(f"skipping PostgreSQL tests: {reason}")
            pytest.skip(reason)
    yield url
    if process is not None:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty schema on the server, dropped after the test."""
    schema = f"efimero_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres_server)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in postgres_server else "?"
    yield f"{postgres_server}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store: a SQLite file, then (marked postgres) a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return request.getfixturevalue("postgres_url")
