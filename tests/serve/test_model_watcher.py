"""The model watcher survives every error, re-verifies what it serves and falls back at start."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import xgboost as xgb
from fastapi.testclient import TestClient

from efimero.registry import Registry
from efimero.serve import ServeSettings, create_app
from efimero.serve.holder import ModelHolder
from tests.serve.conftest import PHONE_AT_NIGHT

MODEL_FILE = "models/css_variables.ubj"


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def flip_a_byte(path: Path) -> bytes:
    """Damage ``path`` in place, as bit rot or a stray write would; return the original bytes."""
    original = path.read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return original


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name} is not exported"
    return float(match.group(1))


def no_absolute_paths(text: str, root: Path) -> bool:
    return str(root.parent) not in text and "/tmp/" not in text and "pytest-of" not in text


@contextmanager
def serving(root: Path, tmp_path: Path, **settings: float) -> Iterator[TestClient]:
    config = ServeSettings(models_dir=root, db_url=f"sqlite:///{tmp_path}/store.db", poll_interval_s=0.05, **settings)
    with TestClient(create_app(config)) as client:
        yield client


def failing_until(release: threading.Event, real: Callable, error: Exception, *, when: Callable[..., bool]) -> Callable:
    """``real``, except that it raises ``error`` for the calls ``when`` picks until ``release`` is set."""

    def call(*args: object) -> object:
        if when(*args) and not release.is_set():
            raise error
        return real(*args)

    return call


@pytest.mark.parametrize(
    "error",
    [xgb.core.XGBoostError("[10:00:00] /src/io.cc:9: corrupt tree"), OSError(5, "Input/output error"),
     KeyError("models"), TypeError("list indices must be integers")],
    ids=["xgboost", "oserror", "keyerror", "typeerror"],
)
@pytest.mark.parametrize("step", ["load", "current"])
def test_the_watcher_survives_any_error_and_follows_current_again(registry_dir, step: str, error: Exception) -> None:
    root, (old, new) = registry_dir
    registry = Registry(root)
    holder = ModelHolder(registry, poll_interval_s=0.02)
    holder.start()
    try:
        assert holder.bundle is not None and holder.bundle.version == new
        release = threading.Event()
        if step == "load":
            registry.load = failing_until(release, registry.load, error, when=lambda version=None: version == old)
        else:
            registry.current = failing_until(release, registry.current, error, when=lambda: True)
        Registry(root).set_current(old)
        wait_until(lambda: holder.last_error and type(error).__name__ in holder.last_error, "the error is reported")
        assert holder.watching and holder.bundle.version == new
        release.set()
        wait_until(lambda: holder.bundle.version == old, "the watcher follows current again")
        assert holder.watching and holder.last_error is None and holder.swaps == 1
    finally:
        holder.stop()


def test_load_failures_show_in_v1_model_readyz_and_metrics(client, registry_dir) -> None:
    root, (old, new) = registry_dir
    holder = client.app.state.holder
    release = threading.Event()
    error = xgb.core.XGBoostError("[10:00:00] /src/io.cc:9: corrupt tree")
    holder.registry.load = failing_until(release, holder.registry.load, error, when=lambda version=None: version == old)
    Registry(root).set_current(old)
    wait_until(lambda: holder.last_error, "the failure is reported")

    model = client.get("/v1/model").json()
    assert model["version"] == new and "XGBoostError: [10:00:00]" in model["last_error"] and model["watcher_alive"]
    ready = client.get("/readyz")
    assert ready.status_code == 200 and "XGBoostError" in ready.json()["checks"]["model"]
    assert ready.json()["checks"]["watcher"] == "following current"
    text = client.get("/metrics").text
    assert metric(text, "efimero_model_load_failures_total") >= 1
    assert metric(text, "efimero_model_watcher_up") == 1.0
    assert metric(text, "efimero_model_watcher_check_age_seconds") < 5

    release.set()
    wait_until(lambda: client.get("/v1/model").json()["version"] == old, "the service follows current again")
    assert client.get("/v1/model").json()["last_error"] is None


def test_a_flipped_byte_in_the_served_files_is_reported_while_the_intact_bundle_serves(registry_dir, tmp_path) -> None:
    root, (_, new) = registry_dir
    with serving(root, tmp_path, verify_interval_s=0.05) as client:
        holder = client.app.state.holder
        original = flip_a_byte(root / new / MODEL_FILE)
        wait_until(lambda: holder.last_error and "checksum mismatch" in holder.last_error, "the damage is noticed")

        response = client.post("/v1/predict", json=PHONE_AT_NIGHT)
        assert response.status_code == 200 and response.json()["model_version"] == new
        ready = client.get("/readyz")
        check = ready.json()["checks"]["model"]
        assert ready.status_code == 200 and check.startswith(f"serving {new}; {new} is still served from memory")
        assert f"{new}: checksum mismatch in {MODEL_FILE}" in check and no_absolute_paths(check, root)
        model = client.get("/v1/model")
        assert "fail verification" in model.json()["last_error"] and no_absolute_paths(model.text, root)
        text = client.get("/metrics").text
        assert metric(text, "efimero_model_verify_failures_total") >= 1
        assert metric(text, "efimero_model_files_intact") == 0.0

        (root / new / MODEL_FILE).write_bytes(original)
        wait_until(lambda: holder.last_error is None, "the repaired files verify again")
        assert metric(client.get("/metrics").text, "efimero_model_files_intact") == 1.0


def test_a_damaged_current_at_start_falls_back_to_the_version_live_before_it(registry_dir, tmp_path) -> None:
    root, (old, new) = registry_dir
    original = flip_a_byte(root / new / MODEL_FILE)
    with serving(root, tmp_path) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["model"].startswith(f"serving {old} as a fallback: current names {new}")
        model = client.get("/v1/model").json()
        assert model["version"] == old and f"{old} was live before it" in model["fallback"]
        assert f"{new}: checksum mismatch in {MODEL_FILE}" in model["last_error"]
        prediction = client.post("/v1/predict", json=PHONE_AT_NIGHT)
        assert prediction.status_code == 200 and prediction.json()["model_version"] == old
        assert metric(client.get("/metrics").text, "efimero_model_fallback") == 1.0
        assert Registry(root).current() == new  # the server never moves the pointer

        (root / new / MODEL_FILE).write_bytes(original)
        wait_until(lambda: client.app.state.holder.bundle.version == new, "the repaired current is served")
        model = client.get("/v1/model").json()
        assert model["fallback"] is None and model["last_error"] is None and model["swaps"] == 1


def test_without_an_intact_version_the_503_names_versions_not_paths(registry_dir, tmp_path) -> None:
    root, (old, new) = registry_dir
    for version in (old, new):
        flip_a_byte(root / version / MODEL_FILE)
    with serving(root, tmp_path) as client:
        for response in (client.get("/readyz"), client.post("/v1/predict", json=PHONE_AT_NIGHT)):
            assert response.status_code == 503 and f"{new}: checksum mismatch in {MODEL_FILE}" in response.text
            assert no_absolute_paths(response.text, root), response.text


def test_a_current_symlinked_outside_the_registry_is_refused_without_showing_paths(registry_dir, tmp_path) -> None:
    root, (_, new) = registry_dir
    outside = tmp_path / "elsewhere"
    outside.write_text(new + "\n")
    (root / "current").unlink()
    (root / "current").symlink_to(outside)
    with serving(root, tmp_path) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "must stay inside the registry" in ready.text
        assert "…/elsewhere" in ready.text and no_absolute_paths(ready.text, root), ready.text


def test_v1_model_metadata_shows_no_absolute_paths(client, registry_dir) -> None:
    root, _ = registry_dir
    response = client.get("/v1/model")
    assert response.json()["metadata"]["data_file"] == "…/train.csv"
    assert no_absolute_paths(response.text, root), response.text
