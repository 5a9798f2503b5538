"""The FastAPI application factory of the prediction service."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from efimero.registry import Registry
from efimero.serve.dashboard import DashboardSources, admin_token_from_environ
from efimero.serve.errors import EXCEPTION_HANDLERS
from efimero.serve.feature_store import FeatureStore, FeatureStoreOptions
from efimero.serve.guards import BodyGuardMiddleware, RateLimitMiddleware
from efimero.serve.holder import ModelHolder
from efimero.serve.metrics import MetricsMiddleware, ServiceMetrics, StoreMetrics, multiprocess
from efimero.serve.monitoring import MonitorLoop
from efimero.serve.routes import admin, dashboard, interactions, ops, pages, predict, style, usecases
from efimero.serve.settings import ServeSettings, load_serve_settings
from efimero.serve.usecases import resolve_usecases
from efimero.store import InteractionStore, load_pepper, open_engine

if TYPE_CHECKING:
    from sqlalchemy import Engine

logger = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/v1/predict", "/v1/predict/batch", "/v1/style.css", "/v1/interactions"})
"""The routes visitors' browsers call: the ones a rate limit applies to (with each served use case's predictions)."""


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """Build the service. The model and the database open in the lifespan, not at import.

    With ``settings.usecases``, each use case's production version is resolved here, since its
    request schema shapes its routes (one without a production version raises
    :class:`~efimero.errors.VersionNotFoundError`); its model loads, checksums verified, in the lifespan.

    Example:
        >>> app = create_app(ServeSettings(models_dir="models/", db_url="sqlite:///data/efimero.db"))
    """
    settings = settings or load_serve_settings()  # defaults < EFIMERO_SERVE_* variables
    # Each use case's production version and request schema now (its routes need them), its model in the lifespan.
    served = resolve_usecases(settings.usecases_models_dir, settings.usecases, max_batch=settings.usecase_max_batch) \
        if settings.usecases else []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for case in served:  # checksums verified; a version that fails stops the start, before anything opens
            case.load()
        engine = open_engine(settings.db_url)
        pepper = load_pepper(settings.pepper_file, create=True)
        store = InteractionStore(engine, pepper=pepper)
        holder = ModelHolder(
            Registry(settings.models_dir), poll_interval_s=settings.poll_interval_s,
            verify_interval_s=settings.verify_interval_s, metrics=metrics,
        )
        store.start()
        holder.start()
        app.state.store, app.state.holder = store, holder
        app.state.monitor = monitor = _monitor_loop(settings, engine, holder.registry, metrics)
        app.state.store_metrics = store_metrics = StoreMetrics(store, metrics.registry)
        store_metrics.start()
        try:
            if feature_store is not None:
                await feature_store.open(pepper)
            yield
        finally:
            if feature_store is not None:
                await feature_store.close()
            if monitor is not None:
                monitor.stop()
            holder.stop()
            store.close()
            store_metrics.stop()
            engine.dispose()
            if multiprocess():  # this worker's gauges leave the aggregate with it
                from prometheus_client import multiprocess as shared

                shared.mark_process_dead(os.getpid())

    app = FastAPI(
        title="efimero",
        summary="Per-visitor CSS from the browser context, and the interaction log that retrains it.",
        version=_version(),
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.settings = settings
    app.state.usecases = {case.key: case for case in served}
    app.state.metrics = metrics = ServiceMetrics()
    # Server-side visitor history (off by default); it connects in the lifespan, on the serving loop.
    app.state.feature_store = feature_store = (
        FeatureStore(FeatureStoreOptions.parse(settings.feature_store), metrics.registry)
        if settings.feature_store else None
    )
    # A placeholder EFIMERO_ADMIN_TOKEN stops the start here, before anything opens (ConfigError).
    app.state.dashboard = DashboardSources(settings.models_dir, settings.db_url, admin_token=admin_token_from_environ(),
                                           retraining_config=settings.retraining_config)
    for router in (predict.router, style.router, interactions.router, ops.router, pages.router, dashboard.router,
                   admin.router):
        app.include_router(router)
    if served:
        app.include_router(usecases.router_for(served))
    static = resources.files("efimero.serve").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    usecase_limits = {path: limit for case in served
                      for path, limit in case.body_limits(settings.max_body_bytes).items()}
    app.add_middleware(
        BodyGuardMiddleware, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s,
        limits={"/v1/predict/batch": settings.max_batch_body_bytes, **usecase_limits},
    )
    if settings.rate_limit:
        app.add_middleware(
            RateLimitMiddleware, limit=settings.rate_limit, storage_uri=settings.rate_limit_storage,
            paths=PUBLIC_PATHS | frozenset(usecase_limits),
        )
    known_paths = frozenset(getattr(route, "path", "") for route in app.routes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, known_paths=known_paths)
    return app


def _monitor_loop(settings: ServeSettings, engine: Engine, registry: Registry,
                  metrics: ServiceMetrics) -> MonitorLoop | None:
    """The monitoring loop, started; None when ``monitor_interval_s`` is 0."""
    if settings.monitor_interval_s == 0:
        return None
    from efimero.config import load_retraining_config
    from efimero.notify import Notifier

    retraining = load_retraining_config(settings.retraining_config).retraining
    loop = MonitorLoop(engine, retraining.monitoring, registry, interval_s=settings.monitor_interval_s,
                       clock=settings.monitor_clock, metrics=metrics, notifier=Notifier(retraining.notifications))
    loop.start()
    return loop


SWITCH_INTERVAL_S = 0.0005
"""How long a thread keeps the GIL while another waits for it (CPython's default: 5 ms)."""


def app_from_env() -> FastAPI:
    """Factory for uvicorn workers (or your own ASGI server): settings come from ``EFIMERO_SERVE_*`` variables.

    It also shortens the interpreter's GIL switch interval, process-wide, as befits a process
    that only serves: the store's writer thread shares the GIL with the event loop, and each
    prediction lets it go (its compiled trees run without it), so with the default 5 ms a
    prediction could wait up to 5 ms for the writer at each hand-over (bench/bench_serve.py on
    one worker: p50 at 1 connection 4.3 → 2.9–3.2 ms, p99 unchanged, the writer keeping up).
    """
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return create_app(load_serve_settings())


def _version() -> str:
    from efimero import __version__

    return __version__
