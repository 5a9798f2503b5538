"""A real MLflow tracking server (sqlite backend, proxied artefacts) on a free local port, once per run."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from tests._postgres import free_port

START_TIMEOUT_S = 120.0  # the first start creates and migrates the sqlite schema; ~10-25 s on 2 busy cores


class Server(NamedTuple):
    url: str
    root: Path  # holds mlflow.db and artifacts/, the store behind the server's artefact proxy


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``mlflow server`` started for this test run, stopped (its whole process group) at the end."""
    root, port = tmp_path_factory.mktemp("mlflow"), free_port()
    log = (root / "server.log").open("wb")
    store, artefacts = f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri()
    command = [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", store,
               "--artifacts-destination", artefacts, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.25)
        yield Server(url, root)
    finally:
        with contextlib.suppress(ProcessLookupError):  # its group may be gone already (a failed start)
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()


@pytest.fixture
def tracking_to_server(mlflow_server: Server, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """Tracking on (as ``EFIMERO_TRACKING__*``), into an experiment and a registered model of this test's own."""
    name = request.node.name.replace("[", "-").replace("]", "")[:60]
    monkeypatch.setenv("EFIMERO_TRACKING__URI", mlflow_server.url)
    monkeypatch.setenv("EFIMERO_TRACKING__EXPERIMENT", name)
    monkeypatch.setenv("EFIMERO_TRACKING__MODEL_NAME", f"css-{name}")
    return name


@pytest.fixture
def client(mlflow_server: Server):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
