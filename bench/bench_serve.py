"""What does the efimero service cost per request over a minimal FastAPI app on the same boosters?

Trains a small registry version in a temporary folder, compiles its trees (`efimero models
compile`; --no-compile serves through XGBoost, as before #13) and starts, for each --workers
count, two servers on loopback with no access log (uvloop and httptools when installed):

  efimero   `efimero serve --workers N` on that registry and a temporary SQLite store: POST
            /v1/predict with a raw browser context -> 19 features, 4 models, labels, CSS, a
            queued log row, Prometheus metrics (multiprocess mode when N > 1)
  minimal   bench/_minimal_app.py under `uvicorn --workers N`: POST /predict with {"features":
            [19 floats]} -> scale, one DMatrix, the same 4 boosters (nthread=1), raw outputs

For each --concurrency level, then each app in turn, it runs a keep-alive load of that many
connections: --warmup seconds untimed, then --duration seconds timed. The load generator is
wrk (-t1, a Lua script for the POST and the percentiles) or, without wrk, Python threads.
Reports p50/p95/p99 latency, requests/s, failed responses and efimero's ratio to minimal, then
efimero's /metrics prediction counter and the rows in its store against the requests sent.
Targets of #13 (reported, not asserted): efimero's best req/s at the highest level at least
1.25x the fastest minimal app's, and its p50 at the lowest level no worse than that app's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import efimero
import numpy as np
from efimero._api import train
from efimero.config import load_training_config
from efimero.context import BrowserContext, features_of
from efimero.registry import Registry
from prometheus_client.parser import text_string_to_metric_families

from _common import _version, print_environment, print_load_after, print_table

HOST = "127.0.0.1"
CONTEXT = {"local_time": "2026-11-25T23:00:00", "viewport_width": 390, "viewport_height": 844, "screen_width": 390,
           "screen_height": 844, "device_pixel_ratio": 3, "max_touch_points": 5, "pointer": "coarse", "ua_mobile": True,
           "prefers_color_scheme": "dark", "history": {"visits": 2, "avg_session_duration_s": 80,
                                                       "total_interactions": 12, "first_visit": "2026-11-20"}}
WRK_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
done = function(s, latency, requests)
  local e = s.errors
  io.write(string.format("RESULT %%.0f %%.0f %%.0f %%.0f %%.0f %%.0f %%.0f\\n", s.requests, s.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), e.status,
    e.connect + e.read + e.write + e.timeout))
end
"""
Result = dict[str, float]


@dataclass
class App:
    path: str
    body: bytes
    port: int
    command: list[str]
    lua: Path
    proc: subprocess.Popen[bytes] | None = None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,16", help="comma-separated connection counts (default 1,16)")
    parser.add_argument("--duration", type=int, default=10, help="timed seconds per app and level (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed seconds before each timed run (default 2)")
    parser.add_argument("--rows", type=int, default=5000, help="rows of the training data (default 5000)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the training data (default 42)")
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator even if wrk exists")
    parser.add_argument("--workers", default="1", help="comma-separated worker counts of both apps (default 1)")
    parser.add_argument("--no-compile", action="store_true", help="serve efimero through XGBoost, not compiled trees")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def post(port: int, path: str, body: bytes) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("POST" if body else "GET", path, body or None, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_ready(app: App, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and app.proc is not None and app.proc.poll() is None:
        try:
            if post(app.port, app.path, app.body)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{' '.join(app.command[:4])} did not become ready; its log:\n{log.read_text()[-3000:]}")


def load(app: App, connections: int, seconds: int, use_wrk: bool) -> Result:
    """A keep-alive POST load on ``app`` for ``seconds``: wrk -t1, or one Python thread per connection."""
    if use_wrk:
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(app.lua),
                              f"http://{HOST}:{app.port}{app.path}"], capture_output=True, text=True, check=True).stdout
        n, us, p50, p95, p99, status, sock = (float(x) for x in out.split("RESULT")[1].split())
        return {"requests": n, "rps": n / us * 1e6, "p50": p50 / 1e3, "p95": p95 / 1e3, "p99": p99 / 1e3,
                "failed": status + sock}
    deadline = time.perf_counter() + seconds  # fallback: the GIL makes the generator the bottleneck
    samples: list[list[float]] = [[] for _ in range(connections)]
    failed = [0] * connections

    def worker(i: int) -> None:
        connection = http.client.HTTPConnection(HOST, app.port, timeout=10)
        while (begin := time.perf_counter()) < deadline:
            connection.request("POST", app.path, app.body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            samples[i].append((time.perf_counter() - begin) * 1e3)
            failed[i] += not 200 <= response.status < 300

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ms = np.concatenate(samples)
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {"requests": len(ms), "rps": len(ms) / (time.perf_counter() - started), "p50": p50, "p95": p95,
            "p99": p99, "failed": sum(failed)}


def metrics_of(port: int) -> dict[str, float]:
    """Sum every sample of efimero's /metrics by name, plus /v1/predict requests by status."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(post(port, "/metrics", b"")[1].decode()):
        for sample in family.samples:
            key = sample.name
            if key == "efimero_http_requests_total" and sample.labels.get("route") == "/v1/predict":
                key = f"predict status {sample.labels['status']}"
            sums[key] = sums.get(key, 0.0) + sample.value
    return sums


def start(tmp: Path, version: str, row: list[float], workers: list[int]) -> dict[str, App]:
    """Start both servers per worker count on free ports and wait until each answers its predict route."""
    apps = {}
    for n in workers:
        apps[f"minimal w{n}"] = App(
            "/predict", json.dumps({"features": row}).encode(), free_port(),
            [sys.executable, "-m", "uvicorn", "_minimal_app:app", "--app-dir", str(Path(__file__).parent),
             "--no-access-log", "--log-level", "warning", "--workers", str(n)], tmp / f"minimal{n}.lua")
        apps[f"efimero w{n}"] = App(
            "/v1/predict", json.dumps(CONTEXT).encode(), free_port(),
            [str(Path(sys.executable).parent / "efimero"), "serve", "--models", str(tmp / "models"),
             "--db", f"sqlite:///{tmp / f'store{n}.db'}", "--no-access-log", "--workers", str(n)],
            tmp / f"efimero{n}.lua")
    env = {**os.environ, "EFIMERO_BENCH_VERSION_DIR": str(tmp / "models" / version)}
    for name, app in apps.items():
        app.lua.write_text(WRK_LUA % app.body.decode())
        log = tmp / f"{name.replace(' ', '')}.log"
        app.proc = subprocess.Popen([*app.command, "--host", HOST, "--port", str(app.port)], env=env,
                                    stdout=log.open("wb"), stderr=subprocess.STDOUT)
        wait_ready(app, log)
    time.sleep(1.0 if max(workers) > 1 else 0)  # every worker listening, not only the first
    return apps


def check_minimal(bundle: efimero.training.ModelBundle, app: App, row: list[float]) -> None:
    """The baseline must compute what efimero computes, or the comparison means nothing."""
    raw = json.loads(post(app.port, app.path, app.body)[1])
    for name, expected in bundle.predict_outputs(np.array([row])).items():
        model, got = bundle.models[name], np.asarray(raw[name])
        got = got * model.target_scale + model.target_mean if model.kind == "regressor" else got
        if not np.allclose(got, expected, rtol=1e-5, atol=1e-6):
            raise SystemExit(f"the minimal app disagrees with efimero on model {name!r}")


def main() -> None:
    args = parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    workers = [int(n) for n in args.workers.split(",")]
    wrk = None if args.python_load else shutil.which("wrk")
    print_environment("service overhead per request (bench/bench_serve.py)")
    print("  ".join(f"{p} {_version(p)}" for p in ("fastapi", "uvicorn", "uvloop", "httptools", "sqlalchemy")))
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split()[1] if wrk else ""
    print(f"load generator: {f'wrk {wrk_version}, 1 thread' if wrk else 'Python http.client threads'}")
    results: dict[tuple[str, int], Result] = {}
    sent, pending = 1.0, []  # efimero has answered one readiness probe
    with tempfile.TemporaryDirectory(prefix="efimero-bench-") as tmp_name:
        tmp = Path(tmp_name)
        efimero.generate(args.rows, output=tmp / "train.csv", seed=args.seed)
        config = load_training_config(overrides={"training": {"data": {"cv_folds": 0}}})
        run = train(tmp / "train.csv", output=tmp / "models", config=config)
        print(f"trained version {run.version} on {args.rows} rows (cv_folds=0)")
        if not args.no_compile:
            report_compile = Registry(tmp / "models").compile()
            print(f"compiled its {len(report_compile.models)} boosters in {report_compile.seconds:.1f} s "
                  f"(max |compiled - XGBoost| {report_compile.max_abs_diff:.1e})")
        bundle = efimero.load(tmp / "models")
        print(f"efimero serves through: {bundle.inference}")
        features = features_of(BrowserContext.model_validate(CONTEXT))
        row = [float(features[name]) for name in bundle.feature_names]
        apps: dict[str, App] = {}
        try:
            apps = start(tmp, run.version, row, workers)
            check_minimal(bundle, apps[f"minimal w{workers[0]}"], row)
            for connections in levels:
                for name, app in apps.items():
                    warm = load(app, connections, args.warmup, bool(wrk)) if args.warmup > 0 else {"requests": 0.0}
                    results[name, connections] = load(app, connections, args.duration, bool(wrk))
                    if name == f"efimero w{workers[0]}":
                        sent += warm["requests"] + results[name, connections]["requests"]
                    if name.startswith("efimero"):
                        pending.append(metrics_of(app.port).get("efimero_store_pending_records", 0.0))
                        drain_by = time.monotonic() + 10  # let the writer catch up before the next timed run
                        while metrics_of(app.port).get("efimero_store_pending_records") and time.monotonic() < drain_by:
                            time.sleep(0.1)
            final = metrics_of(apps[f"efimero w{workers[0]}"].port)
            with sqlite3.connect(tmp / f"store{workers[0]}.db") as db:
                rows_written = db.execute("SELECT count(*) FROM predictions").fetchone()[0]
        finally:
            for app in apps.values():
                if app.proc is not None:
                    app.proc.terminate()
                    try:
                        app.proc.wait(15)
                    except subprocess.TimeoutExpired:
                        app.proc.kill()
    report(args, levels, workers, results)
    statuses = ", ".join(f"{k.split()[-1]}: {v:.0f}" for k, v in final.items() if k.startswith("predict status"))
    print(f"\nefimero w{workers[0]} /v1/predict: the load generator completed {sent:.0f} (warm-ups and the "
          f"readiness probe included); /metrics counted {final.get('efimero_predictions_total', 0):.0f} predictions "
          "and "
          f"requests by status {statuses}")
    print(f"store: {rows_written} rows in `predictions`; records pending right after each timed run: "
          f"{', '.join(f'{p:.0f}' for p in pending)}; dropped: {final.get('efimero_store_dropped_records', 0):.0f}")
    print_load_after()


def report(args: argparse.Namespace, levels: list[int], workers: list[int],
           results: dict[tuple[str, int], Result]) -> None:
    names = [f"{app} w{n}" for n in workers for app in ("minimal", "efimero")]
    table = []
    for connections in levels:
        fastest = max((results[f"minimal w{n}", connections] for n in workers), key=lambda r: r["rps"])
        for name in names:
            r = results[name, connections]
            table.append([name, str(connections), *(f"{r[k]:.2f}" for k in ("p50", "p95", "p99")),
                          f"{r['rps']:.0f}", f"{r['failed']:.0f}", f"{r['p50'] / fastest['p50']:.2f}x",
                          f"{r['rps'] / fastest['rps']:.2f}x"])
    print(f"\n{args.duration} s timed per row after {args.warmup} s warm-up, keep-alive, loopback "
          f"(failed: status >= 400 or socket errors; ratios to the fastest minimal app at that level)\n")
    print_table(["app", "connections", "p50 ms", "p95 ms", "p99 ms", "req/s", "failed", "p50 vs fastest minimal",
                 "req/s vs fastest minimal"], table)

    def best(app: str, connections: int) -> Result:
        return max((results[f"{app} w{n}", connections] for n in workers), key=lambda r: r["rps"])

    low, high = min(levels), max(levels)
    ratio = best("efimero", high)["rps"] / best("minimal", high)["rps"]
    print(f"\ntarget: efimero req/s >= 1.25x the fastest minimal app at {high} connections: {ratio:.2f}x, "
          f"{'met' if ratio >= 1.25 else 'NOT met'}")
    p50, baseline = best("efimero", low)["p50"], best("minimal", low)["p50"]
    print(f"target: efimero p50 <= that app's at {low} connection(s): {p50:.2f} ms vs {baseline:.2f} ms, "
          f"{'met' if p50 <= baseline else 'NOT met'}")


if __name__ == "__main__":
    main()
