"""Does the service keep its promises under faults, and what does durable logging cost?

Trains a small registry version in a temporary folder, then against real `efimero serve`
processes on loopback (SQLite store, no access log):

  durable logs   POST /v1/interactions answered only after commit (group commit), from 1 and 8
                 concurrent clients, beside the plain alternative: a FastAPI endpoint that commits
                 each log before answering (bench/_commit_per_request_app.py, same SQLite settings)
  kill -9        logs acknowledged by efimero, then SIGKILL: acknowledged vs rows in the store
  two workers    `--workers 2`: predictions and interactions on new connections, so they reach
                 different workers: interactions refused (422) out of those sent
  health         GET /healthz latency idle and while 4 clients send batches of 1,000 contexts

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import efimero
import httpx
from efimero._api import train
from efimero.config import load_training_config

from _common import print_environment, print_load_after, print_table

HOST = "127.0.0.1"
CONTEXT = {"local_time": "2026-11-25T23:00:00", "viewport_width": 390, "viewport_height": 844, "screen_width": 390,
           "screen_height": 844, "device_pixel_ratio": 3.0, "max_touch_points": 5, "pointer": "coarse",
           "ua_mobile": True, "prefers_color_scheme": "dark",
           "history": {"visits": 2, "avg_session_duration_s": 80.0, "total_interactions": 12, "first_visit": "2026-11-20"}}
LOG = {"session_duration": 135_000, "interactions_count": 9, "bounce_rate": 0.0, "scroll_depth": 0.82,
       "click_through_rate": 0.25, "page_load_time": 420.0, "rendering_time": 35.0}
NO_REUSE = httpx.Limits(max_keepalive_connections=0)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Server:
    """A server process in its own process group (SIGKILL reaches every worker)."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.proc = subprocess.Popen([*command, "--host", HOST, "--port", str(self.port)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.url}/docs", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(f"{command[0]} did not start")
                time.sleep(0.2)
        time.sleep(1.0)

    def signal(self, sig: int) -> None:
        os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=30)


def efimero_serve(tmp: Path, db: Path, *extra: str) -> Server:
    return Server([str(Path(sys.executable).parent / "efimero"), "serve", "--models", str(tmp / "models"),
                   "--db", f"sqlite:///{db}", "--no-access-log", *extra])


def predict(http: httpx.Client, url: str) -> str:
    return http.post(f"{url}/v1/predict", json=CONTEXT).json()["prediction_id"]


def timed_logs(send, count: int, clients: int) -> tuple[list[float], list[int], float]:  # type: ignore[no-untyped-def]
    """Run ``send(n)`` ``count`` times from ``clients`` threads: latencies (ms), statuses, wall seconds."""
    latencies: list[float] = []
    statuses: list[int] = []

    def one(n: int) -> None:
        started = time.perf_counter()
        statuses.append(send(n))
        latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, range(count)))
    return latencies, statuses, time.perf_counter() - started


def rows(db: Path, table: str) -> int:
    with sqlite3.connect(db) as connection:
        return connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def durable_logs(tmp: Path, count: int) -> list[list[str]]:
    table = []
    for clients in (1, 8):
        server = efimero_serve(tmp, tmp / f"logs-{clients}.db")
        with httpx.Client(timeout=30) as http:
            ids = [predict(http, server.url) for _ in range(count)]
            lat, codes, wall = timed_logs(lambda n: http.post(f"{server.url}/v1/interactions", json=LOG | {
                "prediction_id": ids[n], "session_id": f"s-{n}"}).status_code, count, clients)
        server.signal(signal.SIGTERM)
        table.append(["efimero (group commit)", clients, f"{count / wall:.0f}", *_percentiles(lat), codes.count(202)])
        env = os.environ | {"EFIMERO_BENCH_DB": str(tmp / f"baseline-{clients}.db")}
        baseline = Server([sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).parent),
                           "_commit_per_request_app:app", "--no-access-log"], env=env)
        with httpx.Client(timeout=30) as http:
            lat, codes, wall = timed_logs(lambda n: http.post(f"{baseline.url}/log", json=LOG | {
                "session_id": f"s-{n}"}).status_code, count, clients)
        baseline.signal(signal.SIGTERM)
        table.append(["commit per request", clients, f"{count / wall:.0f}", *_percentiles(lat), codes.count(202)])
    return table


def _percentiles(latencies: list[float]) -> list[str]:
    ordered = sorted(latencies)
    return [f"{ordered[int(q * (len(ordered) - 1))]:.1f}" for q in (0.5, 0.99)]


def kill_nine(tmp: Path, count: int) -> tuple[int, int]:
    db = tmp / "kill.db"
    server = efimero_serve(tmp, db)
    with httpx.Client(timeout=30) as http:
        ids = [predict(http, server.url) for _ in range(count)]
        _, codes, _ = timed_logs(lambda n: http.post(f"{server.url}/v1/interactions", json=LOG | {
            "prediction_id": ids[n], "session_id": f"s-{n}"}).status_code, count, 8)
    server.signal(signal.SIGKILL)
    return codes.count(202), rows(db, "interactions")


def two_workers(tmp: Path, count: int) -> tuple[int, int]:
    server = efimero_serve(tmp, tmp / "workers.db", "--workers", "2")
    with httpx.Client(timeout=30, limits=NO_REUSE) as http:
        _, codes, _ = timed_logs(lambda n: http.post(f"{server.url}/v1/interactions", json=LOG | {
            "prediction_id": predict(http, server.url), "session_id": f"s-{n}"}).status_code, count, 4)
    server.signal(signal.SIGTERM)
    return codes.count(422), len(codes)


def health_under_batches(tmp: Path, seconds: float, batch: int) -> tuple[float, float, float]:
    server = efimero_serve(tmp, tmp / f"health-{batch}.db")
    body = json.dumps({"contexts": [CONTEXT | {"session_id": f"s-{n}"} for n in range(batch)]})
    with httpx.Client(timeout=60) as http:
        idle = [_health(http, server.url) for _ in range(50)]
        stop, batch_s = threading.Event(), []

        def batches() -> None:
            with httpx.Client(timeout=120) as own:
                while not stop.is_set():
                    started = time.perf_counter()
                    own.post(f"{server.url}/v1/predict/batch", content=body, headers={"content-type": "application/json"})
                    batch_s.append(time.perf_counter() - started)

        threads = [threading.Thread(target=batches) for _ in range(4)]
        for thread in threads:
            thread.start()
        loaded, deadline = [], time.monotonic() + seconds
        while time.monotonic() < deadline:
            loaded.append(_health(http, server.url))
            time.sleep(0.02)
        stop.set()
        for thread in threads:
            thread.join()
    server.signal(signal.SIGTERM)
    return statistics.median(idle), statistics.median(loaded), statistics.median(batch_s) * 1000


def _health(http: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    http.get(f"{url}/healthz")
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logs", type=int, default=500, help="interactions per measurement (default 500)")
    parser.add_argument("--health-seconds", type=float, default=15, help="seconds of batch load (default 15)")
    args = parser.parse_args()
    print_environment("bench_faults: durable logging, kill -9, two workers, health under batch load")
    with tempfile.TemporaryDirectory(prefix="efimero-bench-") as tmp_name:
        tmp = Path(tmp_name)
        efimero.generate(3000, output=tmp / "train.csv", seed=42)
        train(tmp / "train.csv", output=tmp / "models",
              config=load_training_config(overrides={"training": {"data": {"cv_folds": 0}}}))
        print("acknowledged = stored: POST of one interaction log, answered after its commit")
        print_table(["app", "clients", "logs/s", "p50 ms", "p99 ms", "2xx"], durable_logs(tmp, args.logs), left=1)
        acknowledged, stored = kill_nine(tmp, args.logs)
        print(f"\nkill -9 after {args.logs} logs from 8 clients: {acknowledged} acknowledged, {stored} stored, "
              f"{acknowledged - stored} lost")
        refused, sent = two_workers(tmp, 300)
        print(f"--workers 2: {refused} of {sent} valid interactions refused (422)")
        for batch in (140, 1000):  # 140: the most that fit the 64 KiB body limit before batches got their own
            idle, loaded, batch_ms = health_under_batches(tmp, args.health_seconds, batch)
            print(f"/healthz median: {idle:.1f} ms idle, {loaded:.1f} ms while 4 clients send {batch}-context "
                  f"batches (one batch takes {batch_ms:.0f} ms, median)")
    print_load_after()


if __name__ == "__main__":
    main()
