"""A registry trained well enough to tell contexts apart, and live services over it."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from efimero._api import train
from efimero.config import load_training_config
from efimero.data import write_table
from efimero.data.generate import generate_dataset
from efimero.serve import ServeSettings, create_app
from tests._postgres import free_port

PHONE_AT_NIGHT: dict[str, Any] = {
    "local_time": "2026-11-25T23:00:00", "viewport_width": 390, "viewport_height": 844,
    "screen_width": 390, "screen_height": 844, "device_pixel_ratio": 3, "max_touch_points": 5,
    "pointer": "coarse", "ua_mobile": True, "prefers_color_scheme": "dark",
    "connection_effective_type": "4g", "connection_downlink_mbps": 3.2,
    "history": {"visits": 2, "avg_session_duration_s": 80, "total_interactions": 12, "first_visit": "2026-11-20"},
}
DESKTOP_AT_NOON: dict[str, Any] = {
    "local_time": "2026-11-25T12:00:00", "viewport_width": 1920, "viewport_height": 1080,
    "screen_width": 1920, "screen_height": 1080, "device_pixel_ratio": 1, "max_touch_points": 0,
    "pointer": "fine", "ua_mobile": False, "prefers_color_scheme": "light",
    "history": {"visits": 300, "avg_session_duration_s": 400, "total_interactions": 900, "first_visit": "2025-01-02"},
}


def interaction(prediction_id: str, **changes: Any) -> dict[str, Any]:
    log = {
        "prediction_id": prediction_id, "session_id": "session-1", "session_duration": 135_000,
        "interactions_count": 9, "bounce_rate": 0.0, "scroll_depth": 0.82, "click_through_rate": 0.25,
        "page_load_time": 420.0, "rendering_time": 35.0,
    }
    return log | changes


@pytest.fixture(scope="session")
def served_registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Two versions trained on 3000 generated rows (no CV): realistic, and quick to build."""
    root = tmp_path_factory.mktemp("served") / "models"
    data = write_table(generate_dataset(3000, seed=21), root.parent / "train.csv")
    config = load_training_config(overrides={"training": {"data": {"cv_folds": 0}, "n_jobs": 1}})
    versions = [train(data, output=root, config=config).version for _ in range(2)]
    return root, versions


@pytest.fixture
def registry_dir(tmp_path: Path, served_registry: tuple[Path, list[str]]) -> tuple[Path, list[str]]:
    root, versions = served_registry
    shutil.copytree(root, tmp_path / "models")
    return tmp_path / "models", list(versions)


@pytest.fixture
def client(registry_dir: tuple[Path, list[str]], tmp_path: Path) -> Iterator[TestClient]:
    settings = ServeSettings(models_dir=registry_dir[0], db_url=f"sqlite:///{tmp_path}/store.db", poll_interval_s=0.05)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


class LiveServer:
    """A real uvicorn server in a thread, for browsers and concurrent HTTP clients."""

    def __init__(self, settings: ServeSettings) -> None:
        self.app = create_app(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def wait_for_version(self, version: str, timeout_s: float = 10.0) -> None:
        """Block until the server's hot swap has picked up ``version``."""
        deadline = time.monotonic() + timeout_s
        while getattr(self.app.state.holder.bundle, "version", None) != version:
            if time.monotonic() > deadline:
                raise AssertionError(f"the server never switched to {version}")
            time.sleep(0.02)

    def wait_for_traffic(self, split: Any, timeout_s: float = 10.0) -> None:
        """Block until the server routes by ``split`` (a TrafficSplit, or None for all traffic live)."""
        deadline = time.monotonic() + timeout_s
        def arms(traffic: Any) -> Any:
            return None if traffic is None else (traffic.arms, traffic.salt)

        while arms(getattr(self.app.state.holder.routing, "split", None)) != arms(split):
            if time.monotonic() > deadline:
                raise AssertionError(f"the server never followed the split {split}")
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(registry_dir: tuple[Path, list[str]], tmp_path: Path) -> Iterator[LiveServer]:
    settings = ServeSettings(models_dir=registry_dir[0], db_url=f"sqlite:///{tmp_path}/store.db", poll_interval_s=0.05)
    with LiveServer(settings) as server:
        yield server
