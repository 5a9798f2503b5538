"""Prometheus metrics of the service, on a registry of its own (one per app).

With ``efimero serve --workers N`` the metrics run in prometheus_client's multiprocess mode:
``PROMETHEUS_MULTIPROC_DIR`` names a folder where every worker's values live in files, and a
scrape, whichever worker answers it, reads them all (counters and histograms summed, each
gauge combined as its ``multiprocess_mode`` says: the worst watcher age, whether every
watcher runs ...). Without that variable, one process, the values live in memory.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter as Tally
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from efimero.store import KINDS, InteractionStore

logger = logging.getLogger(__name__)

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess() -> bool:
    """Whether this process's metrics live in the shared files of several workers."""
    return bool(os.environ.get(MULTIPROCESS_DIR_VARIABLE))

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class ServiceMetrics:
    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series only double the output
        self.registry = CollectorRegistry()
        self.requests = Counter("efimero_http_requests_total", "HTTP requests", ["route", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram(
            "efimero_http_request_duration_seconds", "HTTP request latency", ["route"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.errors = Counter("efimero_http_errors_total", "Responses with status >= 400", ["route", "status"],
                              registry=self.registry)
        self.predictions = Counter("efimero_predictions_total", "Predictions served", ["model_version", "arm"],
                                   registry=self.registry)
        self.predicted_classes = Counter(
            "efimero_predicted_class_total", "Predicted CSS classes", ["group", "css_class"], registry=self.registry
        )
        self.model_load_failures = Counter(
            "efimero_model_load_failures_total",
            "Failed attempts to read the live pointer or load a version, and failed model watcher rounds",
            registry=self.registry,
        )
        self.model_verify_failures = Counter(
            "efimero_model_verify_failures_total",
            "Periodic checks that found the served version's files changed on disk",
            registry=self.registry,
        )
        self.model_check_age = Gauge(
            "efimero_model_watcher_check_age_seconds", "Seconds since the model watcher last completed a round "
            "(the oldest of the workers')", registry=self.registry, multiprocess_mode="livemax",
        )
        self.model_watcher_up = Gauge("efimero_model_watcher_up", "1 while the model watcher thread runs "
                                      "(in every worker)", registry=self.registry, multiprocess_mode="livemin")
        self.model_fallback = Gauge(
            "efimero_model_fallback", "1 while an earlier version is served because current cannot be loaded "
            "(by any worker)", registry=self.registry, multiprocess_mode="livemax",
        )
        self.monitor_rounds = Counter(
            "efimero_monitor_rounds_total", "Rounds of the monitoring loop: ok, idle (no traffic yet) or failed",
            ["outcome"], registry=self.registry,
        )
        self.model_files_intact = Gauge(
            "efimero_model_files_intact", "0 while the served version's files on disk fail verification",
            registry=self.registry, multiprocess_mode="livemin",
        )
        self.model_swaps = Counter("efimero_model_swaps_total", "Hot swaps of the live version since the start",
                                   registry=self.registry)
        self.monitor_anomalies = Gauge(
            "efimero_monitor_anomalies", "Anomalies found by the monitoring loop's last round, per rule and severity",
            ["rule", "severity"], registry=self.registry, multiprocess_mode="livemostrecent",
        )
        self.monitor_alerts = Counter(
            "efimero_monitor_alerts_total", "New alerts the monitoring loop recorded, per rule and severity",
            ["rule", "severity"], registry=self.registry,
        )
        self.monitor_prediction_drift = Gauge(
            "efimero_monitor_prediction_drift_psi",
            "Prediction drift (largest PSI of the served classes) per version and arm in the last round's window; "
            "absent when not measured", ["model_version", "arm"], registry=self.registry,
            multiprocess_mode="livemostrecent",
        )

    def exposed(self) -> CollectorRegistry:
        """What ``/metrics`` shows: this registry, or every worker's values in multiprocess mode."""
        if not multiprocess():
            return self.registry
        from prometheus_client import multiprocess as shared

        combined = CollectorRegistry()
        shared.MultiProcessCollector(combined)
        return combined


class MetricsMiddleware:
    """Pure ASGI middleware: request count and latency per route template and status."""

    def __init__(self, app: Any, metrics: ServiceMetrics, known_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.metrics = metrics
        self.known_paths = known_paths

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_with_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route is None:  # refused before routing (body size) or no such route
                route = scope["path"] if scope["path"] in self.known_paths else "<unmatched>"
            code = str(status["code"])
            self.metrics.requests.labels(route, scope["method"], code).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
            if status["code"] >= 400:
                self.metrics.errors.labels(route, code).inc()


class StoreMetrics:
    """The store writer's counts as metrics: records written, dropped and failed per kind, the
    records pending and whether the writer runs.

    The store keeps plain counts (it knows nothing of Prometheus); they are copied into the
    metrics at every scrape and, by a thread, every second. In multiprocess mode each worker's
    copy lands in the shared files, so a scrape answered by any worker sums every worker's
    counts (the others' at most a second old).
    """

    def __init__(self, store: InteractionStore, registry: CollectorRegistry, *, interval_s: float = 1.0) -> None:
        self.store = store
        self.interval_s = interval_s
        self._counts = {
            name: (Counter(f"efimero_store_records_{name}", help_text, ["kind"], registry=registry), Tally[str]())
            for name, help_text in (("written", "Log records committed to the store"),
                                    ("dropped", "Log records refused because the writer's queue was full"),
                                    ("failed", "Log records the store could not write"))
        }
        self._pending = Gauge("efimero_store_pending_records", "Log records waiting for the store",
                              registry=registry, multiprocess_mode="livesum")
        self._writer_up = Gauge("efimero_store_writer_up", "1 while the store's writer thread runs (in every worker)",
                                registry=registry, multiprocess_mode="livemin")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sync()

    def sync(self) -> None:
        """Bring the metrics up to the store's counts (each count only grows: add what is new)."""
        stats = self.store.stats
        with self._lock:
            for name, (counter, copied) in self._counts.items():
                counts = getattr(stats, name)
                for kind in KINDS:
                    new = counts[kind] - copied[kind]
                    if new > 0:
                        counter.labels(kind).inc(new)
                        copied[kind] = counts[kind]
                    elif kind not in copied:
                        counter.labels(kind)  # exported at 0 from the start
                        copied[kind] = 0
            self._pending.set(self.store.pending)
            self._writer_up.set(float(self.store.writer_alive))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="efimero-store-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sync()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sync()
            except Exception:  # a failed copy must not end the copying: the next round retries
                logger.exception("copying the store's counts into the metrics failed")
