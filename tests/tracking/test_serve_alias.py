"""`efimero serve --models models:/<name>@<alias>`: serves what the alias names, verified, and follows it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from efimero import tracking
from efimero.deploy import deploy, rollback
from efimero.errors import ModelIntegrityError
from efimero.registry import Registry
from efimero.tracking.source import AliasSource, AliasSync
from tests._postgres import free_port
from tests.deploy.conftest import environments

pytestmark = pytest.mark.slow


def served_version(url: str, expected: str, timeout_s: float) -> dict:
    """/v1/model once it names ``expected`` (the hot swap has happened)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            model = httpx.get(f"{url}/v1/model", timeout=2).json()
            if model.get("version") == expected:
                return model
        except httpx.HTTPError:
            model = {}
        if time.monotonic() > deadline:
            raise AssertionError(f"the service never served {expected}; last seen: {model.get('version')}")
        time.sleep(0.2)


def test_serve_follows_the_production_alias_and_hot_swaps_when_it_moves(
        tracking_to_server: str, registry_copy, tmp_path: Path) -> None:
    root, (old, new) = registry_copy()
    config = environments(tmp_path)
    assert deploy(root, "production", version=old, environments=config).status == "success"  # alias → old
    port, cache = free_port(), tmp_path / "cache"
    command = [str(Path(sys.executable).parent / "efimero"), "serve",
               "--models", f"models:/css-{tracking_to_server}@production", "--mlflow-cache", str(cache),
               "--port", str(port), "--db", f"sqlite:///{tmp_path}/store.db", "--poll-interval", "0.2",
               "--monitor-interval", "0"]
    server = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)  # the MLflow URI comes from EFIMERO_TRACKING__URI
    url = f"http://127.0.0.1:{port}"
    try:
        served_version(url, old, timeout_s=90)
        assert deploy(root, "production", version=new, environments=config).status == "success"  # alias → new
        served_version(url, new, timeout_s=30)
        assert rollback("production", environments=config).status == "success"  # alias → old, from the cache
        model = served_version(url, old, timeout_s=30)
        assert model["swaps"] == 2
        assert set(Registry(cache).versions()) == {old, new}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        _, errors = server.communicate(timeout=30)
    assert b"Traceback" not in errors, errors.decode()[-3000:]


def test_a_download_that_fails_its_checksums_is_never_served(
        tracking_to_server: str, mlflow_server, client, registry_copy, tmp_path: Path) -> None:
    root, (old, _) = registry_copy()
    assert deploy(root, "staging", version=old, environments=environments(tmp_path)).steps[-1].ok
    source = AliasSource(f"css-{tracking_to_server}", "staging")
    run_id = client.get_model_version_by_alias(source.name, source.alias).run_id
    (booster, *_) = mlflow_server.root.glob(f"artifacts/**/{run_id}/artifacts/efimero/{old}/models/*.ubj")
    booster.write_bytes(booster.read_bytes() + b"tampered")  # the artefact store was changed behind MLflow's back
    sync = AliasSync(source, tmp_path / "cache", tracking.tracking_settings())
    with pytest.raises(ModelIntegrityError, match="checksum mismatch"):
        sync.sync()
    assert Registry(tmp_path / "cache").current() is None
