"""Prometheus metrics of the service, on a registry of its own (one per app)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class ServiceMetrics:
    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series only double the output
        self.registry = CollectorRegistry()
        self.requests = Counter("efimero_http_requests_total", "HTTP requests", ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram(
            "efimero_http_request_duration_seconds", "HTTP request latency", ["route"],
            buckets=_LATENCY_BUCKETS, registry=self.registry,
        )
        self.errors = Counter("efimero_http_errors_total", "Responses with status >= 400", ["route", "status"], registry=self.registry)
        self.predictions = Counter("efimero_predictions_total", "Predictions served", ["model_version"], registry=self.registry)
        self.predicted_classes = Counter(
            "efimero_predicted_class_total", "Predicted CSS classes", ["group", "css_class"], registry=self.registry
        )
        self.store_pending = Gauge("efimero_store_pending_records", "Log records waiting for the store", registry=self.registry)
        self.store_dropped = Gauge("efimero_store_dropped_records", "Log records dropped (queue full)", registry=self.registry)


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


class BodySizeLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with a 422 naming the limit, before anything is parsed."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_bytes:
                await self._refuse(send, int(declared))
            else:  # the server enforces Content-Length: nothing more can arrive
                await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_bytes:
                await self._refuse(send, size)
                return
        body = b"".join(chunks)
        delivered = False

        async def replay() -> dict:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Any, size: int) -> None:
        import json

        detail = [{
            "type": "body_too_large",
            "loc": ["body"],
            "msg": f"request body must be at most {self.max_bytes} bytes. Got {size} bytes instead.",
        }]
        payload = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 422,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
