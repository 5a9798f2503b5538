"""What does `--feature-store redis://` add to the latency of one /v1/predict?

Trains a small registry version in a temporary folder, starts a private redis-server (no
persistence, free port) and two `efimero serve` processes on the same registry, each one uvicorn
worker with its own SQLite store and no access log:

  off   `efimero serve` as by default: the client's history from the request
  on    `efimero serve --feature-store redis://127.0.0.1:<port>/0`

Then one keep-alive connection per server sends single predictions, sequentially, interleaved
in blocks of --block requests in rotating order so that both servers see the same machine load:

  off          a returning visitor (visitor_id set) on the server without a feature store
  on, known    the same visitor on `on`, whose Redis hash exists (one round trip: HGETALL + SET)
  on, new      a new visitor_id per request on `on` (hash absent: the client's history is used)
  on, down     `on` after redis-server was stopped: the circuit breaker skips Redis (5 s per probe)

It also times the feature store's own call in-process (FeatureStore.personalise, one pipeline)
for attribution. Reports p50/p99/mean per scenario and the difference to `off` measured in the
same interleaved run. Timings are client-observed over loopback, Python http.client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import Tee, _version, print_environment, print_load_after, print_table
from prometheus_client import CollectorRegistry

import efimero
from efimero._api import train
from efimero.config import load_training_config
from efimero.serve.feature_store import FeatureStore, FeatureStoreOptions
from efimero.serve.schemas import PredictRequest

HOST = "127.0.0.1"
CONTEXT = {"local_time": "2026-11-25T23:00:00", "viewport_width": 390, "viewport_height": 844, "screen_width": 390,
           "screen_height": 844, "device_pixel_ratio": 3, "max_touch_points": 5, "pointer": "coarse", "ua_mobile": True,
           "prefers_color_scheme": "dark", "history": {"visits": 2, "avg_session_duration_s": 80,
                                                       "total_interactions": 12, "first_visit": "2026-11-20"}}
LOG = {"session_id": "s", "session_duration": 135_000, "interactions_count": 9, "bounce_rate": 0.0,
       "scroll_depth": 0.8, "click_through_rate": 0.2, "page_load_time": 400.0, "rendering_time": 30.0}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=3000, help="timed predictions per scenario (default 3000)")
    parser.add_argument("--warmup", type=int, default=300, help="untimed predictions per scenario first (default 300)")
    parser.add_argument("--block", type=int, default=50, help="requests per block of the interleaving (default 50)")
    parser.add_argument("--rows", type=int, default=3000, help="rows of the training data (default 3000)")
    parser.add_argument("--timeout-ms", type=int, default=50, help="the feature store's timeout_ms (default 50, "
                        "the service's)")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Client:
    """One keep-alive connection to a server."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection(HOST, port, timeout=10)

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        self.connection.request("POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        response = self.connection.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def get(self, path: str) -> str:
        self.connection.request("GET", path)
        return self.connection.getresponse().read().decode()


def start_server(tmp: Path, name: str, extra: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    log = tmp / f"{name}.log"
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "efimero"), "serve", "--models", str(tmp / "models"), "--db",
         f"sqlite:///{tmp / name}.db", "--pepper-file", str(tmp / "pepper"), "--no-access-log",
         "--monitor-interval", "0", "--host", HOST, "--port", str(port), *extra],
        stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if Client(port).post("/v1/predict", CONTEXT)[0] == 200:
                return process, port
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"efimero serve ({name}) did not become ready; its log:\n{log.read_text()[-3000:]}")


def start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
                                "--dir", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return process, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def interleaved(scenarios: dict[str, Callable[[], None]], n: int, warmup: int, block: int) -> dict[str, np.ndarray]:
    """Milliseconds per call of each scenario, run in blocks of ``block`` calls in rotating order."""
    for run in scenarios.values():
        for _ in range(warmup):
            run()
    samples: dict[str, list[float]] = {name: [] for name in scenarios}
    names = list(scenarios)
    for round_ in range(-(-n // block)):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            run = scenarios[name]
            for _ in range(min(block, n - len(samples[name]))):
                begin = time.perf_counter()
                run()
                samples[name].append((time.perf_counter() - begin) * 1e3)
    return {name: np.array(values) for name, values in samples.items()}


def predictor(client: Client, visitor: Callable[[], str | None]) -> Callable[[], None]:
    def run() -> None:
        visitor_id = visitor()
        status, _ = client.post("/v1/predict", CONTEXT | ({"visitor_id": visitor_id} if visitor_id else {}))
        if status != 200:
            raise SystemExit(f"/v1/predict answered {status}")
    return run


def in_process(redis_port: int, n: int) -> np.ndarray:
    """Milliseconds of FeatureStore.personalise alone (one pipeline: HGETALL + SET of the pending key)."""
    async def run() -> np.ndarray:
        store = FeatureStore(FeatureStoreOptions.parse(f"redis://{HOST}:{redis_port}/0"), CollectorRegistry())
        await store.open(b"bench pepper, not a secret")
        context = PredictRequest.model_validate(CONTEXT | {"visitor_id": "bench-visitor"})
        times = []
        for i in range(n + 300):
            begin = time.perf_counter()
            await store.personalise(context, f"bench-{i}")
            times.append((time.perf_counter() - begin) * 1e3)
        await store.close()
        return np.array(times[300:])
    return asyncio.run(run())


def feature_store_metrics(client: Client) -> list[str]:
    return [line.removeprefix("efimero_feature_store_") for line in client.get("/metrics").splitlines()
            if line.startswith("efimero_feature_store_")]


def row(name: str, ms: np.ndarray, base: np.ndarray | None) -> list[str]:
    p50, p99 = np.percentile(ms, [50, 99])
    cells = [name, str(len(ms)), f"{p50:.3f}", f"{p99:.3f}", f"{ms.mean():.3f}"]
    if base is None:
        return [*cells, "", ""]
    b50, b99 = np.percentile(base, [50, 99])
    return [*cells, f"{p50 - b50:+.3f}", f"{p99 - b99:+.3f}"]


def main() -> None:
    args = parse_args()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print_environment("latency added by --feature-store redis:// (bench/bench_feature_store.py)")
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
    print("  ".join(f"{p} {_version(p)}" for p in ("fastapi", "uvicorn", "uvloop", "redis", "hiredis")) +
          f"  redis-server {next((v[2:] for v in version if v.startswith('v=')), '?')}")
    with tempfile.TemporaryDirectory(prefix="efimero-bench-fs-") as tmp_name:
        tmp = Path(tmp_name)
        efimero.generate(args.rows, output=tmp / "train.csv", seed=42)
        config = load_training_config(overrides={"training": {"data": {"cv_folds": 0}, "n_jobs": 1}})
        trained = train(tmp / "train.csv", output=tmp / "models", config=config).version
        redis_process, redis_port = start_redis(tmp)
        servers = []
        try:
            off_process, off_port = start_server(tmp, "off", [])
            servers.append(off_process)
            url = f"redis://{HOST}:{redis_port}/0?timeout_ms={args.timeout_ms}"
            on_process, on_port = start_server(tmp, "on", ["--feature-store", url])
            servers.append(on_process)
            print(f"trained version {trained} on {args.rows} rows; redis-server on port {redis_port}\n")
            off, on = Client(off_port), Client(on_port)
            status, prediction = on.post("/v1/predict", CONTEXT | {"visitor_id": "returning"})  # known from now on
            status_log, _ = on.post("/v1/interactions", LOG | {"prediction_id": prediction["prediction_id"]})
            if (status, status_log) != (200, 202):
                raise SystemExit(f"could not give the visitor a history: {status}, {status_log}")
            counter = iter(range(10**9))
            direct = in_process(redis_port, args.n)
            up = interleaved({
                "off": predictor(off, lambda: "returning"),
                "on, known": predictor(on, lambda: "returning"),
                "on, new": predictor(on, lambda: f"new-{next(counter)}"),
            }, args.n, args.warmup, args.block)
            metrics_up = feature_store_metrics(on)
            redis_process.terminate()
            redis_process.wait(timeout=10)
            down = interleaved({
                "off": predictor(off, lambda: "returning"),
                "on, down": predictor(on, lambda: "returning"),
            }, args.n, args.warmup, args.block)
            metrics_down = feature_store_metrics(on)
            ready = json.loads(on.get("/readyz"))
        finally:
            for process in servers:
                process.terminate()
                process.wait(timeout=30)
            if redis_process.poll() is None:
                redis_process.terminate()
                redis_process.wait(timeout=10)

    headers = ["scenario", "n", "p50 ms", "p99 ms", "mean ms", "p50 vs off", "p99 vs off"]
    print(f"POST /v1/predict, 1 keep-alive connection per server, blocks of {args.block} interleaved, "
          f"{args.warmup} untimed first")
    print("\nRedis up:")
    print_table(headers, [row("off", up["off"], None), row("on, known", up["on, known"], up["off"]),
                          row("on, new", up["on, new"], up["off"])])
    print("\nRedis stopped (the breaker probes every 5 s):")
    print_table(headers, [row("off", down["off"], None), row("on, down", down["on, down"], down["off"])])
    print("\nFeatureStore.personalise in-process (one pipeline: HGETALL + SET EX), the Redis share of 'on':")
    print_table(headers[:5], [row("personalise", direct, None)[:5]])
    print("\n'on' /metrics after the Redis-up runs (errors and 'unavailable' there mean timeouts under load, "
          "whose breaker windows served the client's history): " + "; ".join(metrics_up))
    print("'on' /metrics at the end: " + "; ".join(metrics_down))
    print(f"'on' /readyz: {ready['status']}, feature_store: {ready['checks'].get('feature_store')}")
    print_load_after()


if __name__ == "__main__":
    output = parse_args().output
    if output is None:
        main()
    else:
        with output.open("w", encoding="utf-8") as handle, contextlib.redirect_stdout(Tee(sys.stdout, handle)):
            main()
