"""`efimero serve` as real processes: SIGKILL after acknowledgements, several workers, several servers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests._postgres import free_port
from tests.serve.conftest import DESKTOP_AT_NOON, PHONE_AT_NIGHT, interaction

pytestmark = pytest.mark.slow


class ServeProcess:
    """`efimero serve` in its own process group, so a SIGKILL takes every worker with it."""

    def __init__(self, models: Path, db_url: str, *, workers: int = 1, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [str(Path(sys.executable).parent / "efimero"), "serve", "--models", str(models), "--db", db_url,
                   "--port", str(self.port), "--workers", str(workers), "--no-access-log",
                   "--pepper-file", str(models.parent / "pepper")]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        start_new_session=True, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"efimero serve did not start: {self.process.stderr.read()[-2000:]!r}")
            time.sleep(0.2)
        time.sleep(1.0 if workers > 1 else 0)  # every worker listening, not only the first

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


def interactions_in(db_url: str) -> int:
    engine = create_engine(db_url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM interactions")).scalar_one()
    engine.dispose()
    return count


def log_visits(urls: list[str], visits: int, *, clients: int) -> tuple[int, int]:
    """Predict at one server, report at the next, each on a new connection; (acknowledged, refused)."""
    no_reuse = httpx.Limits(max_keepalive_connections=0)  # a new connection per request reaches any worker

    def visit(http: httpx.Client, n: int) -> int:
        predict_url, log_url = urls[n % len(urls)], urls[(n + 1) % len(urls)]
        context = PHONE_AT_NIGHT if n % 2 else DESKTOP_AT_NOON
        prediction_id = http.post(f"{predict_url}/v1/predict", json=context).json()["prediction_id"]
        return http.post(f"{log_url}/v1/interactions", json=interaction(prediction_id, session_id=f"s-{n}")).status_code

    with httpx.Client(limits=no_reuse, timeout=30) as http, ThreadPoolExecutor(clients) as pool:
        codes = list(pool.map(lambda n: visit(http, n), range(visits)))
    return codes.count(202), len(codes) - codes.count(202)


@pytest.mark.parametrize("clients", [1, 8])
def test_sigkill_loses_no_acknowledged_interaction(registry_dir, tmp_path, clients) -> None:
    db_url = f"sqlite:///{tmp_path}/store.db"
    server = ServeProcess(registry_dir[0], db_url)
    try:
        acknowledged, refused = log_visits([server.url], 300, clients=clients)
    finally:
        server.kill()
    assert refused == 0
    assert interactions_in(db_url) == acknowledged == 300


def test_sigkill_while_the_database_is_stuck_loses_nothing_acknowledged(registry_dir, tmp_path) -> None:
    """Logs sent while a commit cannot happen are not acknowledged, so killing the server then loses none."""
    db_path = tmp_path / "store.db"
    server = ServeProcess(registry_dir[0], f"sqlite:///{db_path}")
    with httpx.Client(timeout=30) as http:
        ids = [http.post(f"{server.url}/v1/predict", json=PHONE_AT_NIGHT).json()["prediction_id"] for _ in range(20)]
        time.sleep(0.5)  # the predictions are written
        lock = sqlite3.connect(db_path, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        answers: list[int] = []

        def send(n: int) -> None:
            try:
                answers.append(http.post(f"{server.url}/v1/interactions",
                                         json=interaction(ids[n], session_id=f"s-{n}")).status_code)
            except httpx.TransportError:
                answers.append(0)  # the server died before answering: nothing was promised

        with ThreadPoolExecutor(20) as pool:
            pending = [pool.submit(send, n) for n in range(20)]
            time.sleep(1.5)
            server.kill()
            for future in pending:
                future.result()
        lock.execute("ROLLBACK")
        lock.close()
    assert interactions_in(f"sqlite:///{db_path}") >= answers.count(202)


def test_two_workers_accept_every_valid_interaction(registry_dir, store_url) -> None:
    server = ServeProcess(registry_dir[0], store_url, workers=2)
    try:
        acknowledged, refused = log_visits([server.url], 200, clients=4)
    finally:
        server.stop()
    assert (acknowledged, refused) == (200, 0)
    assert interactions_in(store_url) == 200


def test_two_servers_on_one_database_accept_each_others_predictions(registry_dir, store_url) -> None:
    first = ServeProcess(registry_dir[0], store_url)
    try:
        second = ServeProcess(registry_dir[0], store_url)
        try:
            acknowledged, refused = log_visits([first.url, second.url], 200, clients=4)
        finally:
            second.stop()
    finally:
        first.stop()
    assert (acknowledged, refused) == (200, 0)
    assert interactions_in(store_url) == 200


def _counter(url: str, name: str) -> float:
    """The sum of a counter's samples in one scrape, over a new connection (any worker may answer)."""
    from prometheus_client.parser import text_string_to_metric_families

    scrape = httpx.get(f"{url}/metrics", headers={"Connection": "close"}, timeout=10).text
    return sum(sample.value for family in text_string_to_metric_families(scrape) for sample in family.samples
               if sample.name == f"{name}_total")


def test_every_worker_counts_in_every_scrape_and_follows_current(registry_dir, tmp_path) -> None:
    """Two workers: /metrics sums both (multiprocess files, one per worker) and both hot-swap."""
    from efimero.registry import Registry

    root, versions = registry_dir
    shared = tmp_path / "metrics"
    server = ServeProcess(root, f"sqlite:///{tmp_path}/store.db", workers=2,
                          env={"PROMETHEUS_MULTIPROC_DIR": str(shared)})
    try:
        no_reuse = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(limits=no_reuse, timeout=30) as http, ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda _: http.post(f"{server.url}/v1/predict", json=PHONE_AT_NIGHT).status_code,
                                  range(60)))
        assert codes == [200] * 60
        assert len({path.name for path in shared.glob("counter_*.db")}) == 2  # both workers answered
        assert [_counter(server.url, "efimero_predictions") for _ in range(6)] == [60.0] * 6
        written = 0.0
        for _ in range(50):  # each worker copies its store counts at least every second
            written = _counter(server.url, "efimero_store_records_written")
            if written == 60:
                break
            time.sleep(0.2)
        assert written == 60

        Registry(root).set_current(versions[0])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            served = {httpx.get(f"{server.url}/v1/model", headers={"Connection": "close"}).json()["version"]
                      for _ in range(10)}
            if served == {versions[0]}:
                break
            time.sleep(0.2)
        assert served == {versions[0]}
    finally:
        server.stop()
    assert list(shared.glob("gauge_live*")) == []  # each worker took its gauges with it on the way out
