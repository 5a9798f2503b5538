"""Prometheus metrics of the service, on a registry of its own (one per app)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from efimero.store import KINDS, InteractionStore

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
            "efimero_model_watcher_check_age_seconds", "Seconds since the model watcher last completed a round",
            registry=self.registry,
        )
        self.model_watcher_up = Gauge("efimero_model_watcher_up", "1 while the model watcher thread runs",
                                      registry=self.registry)
        self.model_fallback = Gauge(
            "efimero_model_fallback", "1 while an earlier version is served because current cannot be loaded",
            registry=self.registry,
        )
        self.monitor_rounds = Counter(
            "efimero_monitor_rounds_total", "Rounds of the monitoring loop: ok, idle (no traffic yet) or failed",
            ["outcome"], registry=self.registry,
        )
        self.model_files_intact = Gauge(
            "efimero_model_files_intact", "0 while the served version's files on disk fail verification",
            registry=self.registry,
        )
        self.model_swaps = Counter("efimero_model_swaps_total", "Hot swaps of the live version since the start",
                                   registry=self.registry)
        self.monitor_anomalies = Gauge(
            "efimero_monitor_anomalies", "Anomalies found by the monitoring loop's last round, per rule and severity",
            ["rule", "severity"], registry=self.registry,
        )
        self.monitor_alerts = Counter(
            "efimero_monitor_alerts_total", "New alerts the monitoring loop recorded, per rule and severity",
            ["rule", "severity"], registry=self.registry,
        )
        self.monitor_prediction_drift = Gauge(
            "efimero_monitor_prediction_drift_psi",
            "Prediction drift (largest PSI of the served classes) per version and arm in the last round's window; "
            "absent when not measured", ["model_version", "arm"], registry=self.registry,
        )


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


class StoreCollector(Collector):
    """The store writer's own counts, read at scrape time: written, dropped and failed records per kind."""

    def __init__(self, store: InteractionStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        stats = self.store.stats
        for name, counts, help_text in (
            ("written", stats.written, "Log records committed to the store"),
            ("dropped", stats.dropped, "Log records refused because the writer's queue was full"),
            ("failed", stats.failed, "Log records the store could not write"),
        ):
            family = CounterMetricFamily(f"efimero_store_records_{name}", help_text, labels=["kind"])
            for kind in KINDS:
                family.add_metric([kind], counts[kind])
            yield family
        yield GaugeMetricFamily("efimero_store_pending_records", "Log records waiting for the store",
                                value=self.store.pending)
        yield GaugeMetricFamily("efimero_store_writer_up", "1 while the store's writer thread runs",
                                value=float(self.store.writer_alive))
