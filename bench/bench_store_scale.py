"""How does the interaction store behave at 1M and 10M logs on PostgreSQL?

For each size, in a database of its own (created here, dropped after; never the tests' `test`):

  load        `efimero store load-simulated`'s loader: N logs (a prediction and its interaction each) over
              --days days by COPY, secondary indexes deferred and built at the end (included in the time)
  COPY vs     a sample of --sample logs into the loaded, indexed store: COPY, then row inserts
  inserts     (executemany), each in chunks of --chunk logs, same rows' shape
  plans       EXPLAIN (ANALYZE, BUFFERS) of the time-window queries: collect's sessions of the last
              --window-days days, the monitor's predictions of a 5-minute window, retention's batch selects
  collect     `efimero collect` of the last --window-days days in a subprocess: wall time and its peak RSS
              (ru_maxrss) over its RSS before collecting, streamed in chunks of 10,000 sessions (the
              default) and in one read (what collect did before it streamed)
  retention   `efimero store retain` of the logs older than --days - --retain-days days, in batches of 5,000

During collect and retention (and for --idle-s seconds before, as a baseline), a writer thread
logs predictions and interactions through the service's InteractionStore (group commit) as fast
as they are acknowledged: acknowledged logs per second and acknowledgement latency (p50, p99,
max) show whether writers were locked out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from _common import Tee, _version, print_environment, print_load_after, print_table
from sqlalchemy import create_engine, text
from sqlalchemy.dialects import postgresql

from efimero.store import InteractionStore, open_engine, prune_older_than
from efimero.store.load import load_simulated, probe_log
from efimero.store.models import InteractionRecord, PredictionRecord
from efimero.store.read import sessions_query

PEPPER = b"bench-pepper-0123456789"
COLLECT_SCRIPT = """
import json, resource, sys, time
from datetime import date
from efimero.collect import collect
url, chunk = sys.argv[1], int(sys.argv[2])
first, last = date.fromisoformat(sys.argv[3]), date.fromisoformat(sys.argv[4])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
began = time.perf_counter()
result = collect(url, start_date=first, end_date=last, min_session_duration_ms=10_000, chunk_rows=chunk)
elapsed = time.perf_counter() - began
print(json.dumps({"seconds": elapsed, "rss_before_kib": before,
                  "rss_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "sessions": result.quality.total, "rows": len(result.frame)}))
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000], help="logs per run")
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
                        help="an admin URL of the server (its database is only used to create and drop the bench's)")
    parser.add_argument("--database", default="efimero_bench", help="the bench's own database (dropped after)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--days", type=int, default=90, help="simulated days the logs spread over (default 90)")
    parser.add_argument("--window-days", type=int, default=7, help="collect's window (default 7)")
    parser.add_argument("--retain-days", type=int, default=7,
                        help="days of the oldest logs retention deletes (default 7)")
    parser.add_argument("--sample", type=int, default=20_000, help="logs of the COPY vs inserts sample")
    parser.add_argument("--chunk", type=int, default=20_000, help="logs per chunk of the loader (default 20000)")
    parser.add_argument("--idle-s", type=float, default=10.0, help="seconds of writer baseline (default 10)")
    parser.add_argument("--skip-one-read", action="store_true", help="skip collect in one read (memory hungry)")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    return parser.parse_args()


class Writer:
    """The service's writer under a thread that logs a prediction and its interaction, waiting for each ack."""

    def __init__(self, url: str) -> None:
        self.engine = open_engine(url)
        self.store = InteractionStore(self.engine, pepper=PEPPER)
        self.latencies: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._n = 0

    def measure(self, action: Any) -> tuple[Any, dict[str, Any]]:
        """Run ``action()`` while logging; return its result and the writer's figures meanwhile."""
        self.latencies, self.errors = [], 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        began = time.perf_counter()
        self._thread.start()
        try:
            result = action()
        finally:
            self._stop.set()
            self._thread.join(60)
        elapsed = time.perf_counter() - began
        lat = np.array(self.latencies) * 1000 if self.latencies else np.array([np.nan])
        return result, {"seconds": elapsed, "acknowledged": len(self.latencies), "errors": self.errors,
                        "per_s": len(self.latencies) / elapsed, "p50_ms": float(np.percentile(lat, 50)),
                        "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max())}

    def _run(self) -> None:
        while not self._stop.is_set():
            self._n += 1
            prediction, interaction = probe_log(f"bench-live-{self._n:09d}", datetime.now(UTC))
            self.store.record_prediction(prediction)
            began = time.perf_counter()
            try:
                self.store.record_interaction(interaction).result(timeout=30)
            except Exception:  # counted: the figure is whether any log was refused
                self.errors += 1
                continue
            self.latencies.append(time.perf_counter() - began)

    def __enter__(self) -> Writer:
        self.store.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.store.close()
        self.engine.dispose()


def recreate(server: str, database: str, *, drop_only: bool = False) -> str:
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {database}"))
        if not drop_only:
            connection.execute(text(f"CREATE DATABASE {database}"))
    admin.dispose()
    return server.rsplit("/", 1)[0] + "/" + database


def explain(url: str, end: datetime, window_days: int, cutoff: datetime) -> list[tuple[str, list[str]]]:
    """EXPLAIN (ANALYZE, BUFFERS) of the window queries, with the bounds written in."""
    dialect = postgresql.dialect()

    def literal(query: Any) -> str:
        return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    from sqlalchemy import select

    queries = [
        (f"collect: sessions of the last {window_days} days (efimero.store.read.sessions_query)",
         literal(sessions_query(start=end - timedelta(days=window_days), end=end, min_session_duration_ms=10_000))),
        ("monitor: predictions of a 5-minute window (efimero.store.read.predictions)",
         literal(select(PredictionRecord.event_time, PredictionRecord.model_version, PredictionRecord.arm,
                        PredictionRecord.latency_ms, PredictionRecord.css_classes)
                 .where(PredictionRecord.event_time >= end - timedelta(minutes=65),
                        PredictionRecord.event_time < end - timedelta(minutes=60)))),
        ("retention: one batch of old predictions (efimero.store.maintenance.prune_older_than)",
         literal(select(PredictionRecord.prediction_id).where(PredictionRecord.created_at < cutoff)
                 .order_by(PredictionRecord.created_at).limit(5000))),
        ("retention: one batch of old interactions",
         literal(select(InteractionRecord.id).where(InteractionRecord.received_at < cutoff)
                 .order_by(InteractionRecord.received_at).limit(5000))),
    ]
    engine = open_engine(url, create=False)
    plans = []
    with engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        for title, sql in queries:
            rows = connection.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql)).all()
            plans.append((title, [row[0] for row in rows]))
    engine.dispose()
    return plans


def collect_in_subprocess(url: str, chunk: int, end: datetime, days: int) -> dict[str, Any]:
    """Collect the ``days`` loaded days before ``end`` (not the writer's live logs) in a fresh interpreter."""
    first, last = (end - timedelta(days=days)).date(), (end - timedelta(days=1)).date()
    done = subprocess.run([sys.executable, "-c", COLLECT_SCRIPT, url, str(chunk), str(first), str(last)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"collect failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_size(args: argparse.Namespace, size: int) -> dict[str, Any]:
    url = recreate(args.server, args.database)
    end = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), tzinfo=UTC)
    figures: dict[str, Any] = {"size": size}
    try:
        engine = open_engine(url)
        loaded = load_simulated(engine, size, seed=args.seed, days=args.days, end=end.date(), chunk_size=args.chunk)
        figures["load"] = loaded.to_dict()
        for method, seed in (("copy", args.seed + 1), ("insert", args.seed + 2)):
            sample = load_simulated(engine, args.sample, seed=seed, days=1, end=end.date(), chunk_size=args.chunk,
                                    method=method, defer_indexes=False)  # type: ignore[arg-type]
            figures[f"sample_{method}"] = sample.to_dict()
        with engine.connect() as connection:
            figures["database_size"] = connection.execute(
                text("SELECT pg_size_pretty(pg_database_size(current_database()))")).scalar()
        engine.dispose()
        cutoff = end - timedelta(days=args.days - args.retain_days)
        figures["plans"] = explain(url, end, args.window_days, cutoff)
        with Writer(url) as writer:
            _, figures["writer_idle"] = writer.measure(lambda: time.sleep(args.idle_s))
            figures["collect"], figures["writer_collect"] = writer.measure(
                lambda: collect_in_subprocess(url, 10_000, end, args.window_days))
            if not args.skip_one_read:
                figures["collect_one_read"], figures["writer_collect_one_read"] = writer.measure(
                    lambda: collect_in_subprocess(url, 100_000_000, end, args.window_days))
            store = open_engine(url, create=False)
            began = time.perf_counter()
            deleted, figures["writer_retention"] = writer.measure(
                lambda: prune_older_than(store, timedelta(days=args.days - args.retain_days), now=end))
            figures["retention"] = {"seconds": time.perf_counter() - began, "predictions": deleted.predictions,
                                    "interactions": deleted.interactions, "batches": deleted.batches}
            store.dispose()
    finally:
        recreate(args.server, args.database, drop_only=True)
    return figures


def report(figures: dict[str, Any]) -> None:
    size = figures["size"]
    load = figures["load"]
    print(f"=== {size:,} logs (a prediction and its interaction each) over {load['days']} days; "
          f"database {figures['database_size']} ===\n")
    rows = [["bulk load, indexes deferred (COPY)", f"{load['rows']:,}", f"{load['seconds']:.1f}",
             f"{load['rows_per_s']:,.0f}"]]
    for method, name in (("copy", "sample into indexed store, COPY"), ("insert", "sample into indexed store, "
                                                                                 "row inserts")):
        sample = figures[f"sample_{method}"]
        rows.append([name, f"{sample['rows']:,}", f"{sample['seconds']:.1f}", f"{sample['rows_per_s']:,.0f}"])
    print_table(["load", "logs", "seconds", "logs/s"], rows)
    ratio = figures["sample_copy"]["rows_per_s"] / figures["sample_insert"]["rows_per_s"]
    print(f"\nCOPY / row inserts on the same sample: {ratio:.1f}x\n")
    rows = []
    for key, name in (("collect", "chunks of 10,000 (default)"), ("collect_one_read", "one read (before)")):
        if key in figures:
            c = figures[key]
            growth = (c["rss_peak_kib"] - c["rss_before_kib"]) / 1024
            rows.append([name, f"{c['sessions']:,}", f"{c['rows']:,}", f"{c['seconds']:.1f}", f"{growth:,.0f}",
                         f"{c['rss_peak_kib'] / 1024:,.0f}"])
    print_table(["collect (subprocess)", "sessions", "training rows", "seconds", "peak RSS growth MiB",
                 "peak RSS MiB"], rows)
    r = figures["retention"]
    print(f"\nretention: {r['predictions']:,} predictions and {r['interactions']:,} interactions deleted in "
          f"{r['batches']} batches of <= 5,000 in {r['seconds']:.1f} s "
          f"({(r['predictions'] + r['interactions']) / r['seconds']:,.0f} rows/s)\n")
    rows = []
    for key, name in (("writer_idle", "idle (baseline)"), ("writer_collect", "during collect (chunks)"),
                      ("writer_collect_one_read", "during collect (one read)"),
                      ("writer_retention", "during retention")):
        if key in figures:
            w = figures[key]
            rows.append([name, f"{w['seconds']:.1f}", f"{w['acknowledged']:,}", str(w["errors"]),
                         f"{w['per_s']:,.0f}", f"{w['p50_ms']:.2f}", f"{w['p99_ms']:.2f}", f"{w['max_ms']:.1f}"])
    print_table(["concurrent writer", "seconds", "acknowledged", "refused", "logs/s", "p50 ms", "p99 ms",
                 "max ms"], rows)
    print()
    for title, lines in figures["plans"]:
        print(f"--- EXPLAIN (ANALYZE, BUFFERS) {title} ---")
        print("\n".join(lines))
        print()


def main() -> None:
    args = parse_args()
    out = args.output.open("w") if args.output else None
    sys.stdout = Tee(sys.__stdout__, out) if out else sys.__stdout__  # type: ignore[assignment]
    try:
        print_environment("interaction store at scale (PostgreSQL): load, window plans, collect, retention")
        admin = create_engine(args.server)
        with admin.connect() as connection:
            print(f"postgresql  {connection.execute(text('SHOW server_version')).scalar()}, shared_buffers "
                  f"{connection.execute(text('SHOW shared_buffers')).scalar()}, work_mem "
                  f"{connection.execute(text('SHOW work_mem')).scalar()}; psycopg {_version('psycopg')}, "
                  f"SQLAlchemy {_version('sqlalchemy')}\n")
        admin.dispose()
        print(f"command: python bench/bench_store_scale.py {' '.join(sys.argv[1:])}\n")
        for size in args.sizes:
            report(run_size(args, size))
            sys.stdout.flush()
        print_load_after()
    finally:
        sys.stdout = sys.__stdout__
        if out:
            out.close()


if __name__ == "__main__":
    main()
