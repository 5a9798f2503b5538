"""The live pointer moves twice while clients keep predicting: no request fails."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx

from efimero.registry import Registry
from tests.serve.conftest import PHONE_AT_NIGHT


def test_zero_failed_requests_while_the_pointer_changes_twice(live_server, registry_dir) -> None:
    root, (old, new) = registry_dir
    registry = Registry(root)
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    versions: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=live_server.url, timeout=10) as http:
            while not stop.is_set():
                response = http.post("/v1/predict", json=PHONE_AT_NIGHT)
                with lock:
                    statuses[response.status_code] += 1
                    if response.status_code == 200:
                        versions.append(response.json()["model_version"])

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()

    def wait_for(version: str) -> None:
        deadline = time.monotonic() + 10
        while live_server.app.state.holder.bundle.version != version:
            assert time.monotonic() < deadline, f"the service never switched to {version}"
            time.sleep(0.01)
        time.sleep(0.3)  # keep traffic flowing on the new version

    time.sleep(0.3)
    registry.set_current(old)
    wait_for(old)
    registry.set_current(new)
    wait_for(new)
    stop.set()
    for thread in threads:
        thread.join()

    assert set(statuses) == {200}, statuses
    assert sum(statuses.values()) > 50
    switches = sum(1 for a, b in zip(versions, versions[1:]) if a != b)
    assert versions[0] == new and versions[-1] == new and old in versions and switches >= 2
    assert live_server.app.state.holder.swaps == 2


def test_a_corrupted_new_version_is_not_served(live_server, registry_dir) -> None:
    root, (old, new) = registry_dir
    (root / old / "models" / "css_class_theme.ubj").write_bytes(b"garbage")
    (root / "current").write_text(old + "\n")  # bypass set_current's own check, as a broken deploy would
    deadline = time.monotonic() + 5
    while live_server.app.state.holder.last_error is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    response = httpx.post(f"{live_server.url}/v1/predict", json=PHONE_AT_NIGHT)
    assert response.status_code == 200 and response.json()["model_version"] == new
    assert "checksum mismatch" in httpx.get(f"{live_server.url}/v1/model").json()["last_error"]
    Registry(root).set_current(new)  # the broken deploy is undone: nothing is wrong any more
    deadline = time.monotonic() + 5
    while live_server.app.state.holder.last_error is not None:
        assert time.monotonic() < deadline, "the error of an abandoned version is still reported"
        time.sleep(0.02)
