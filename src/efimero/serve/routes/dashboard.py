"""The dashboard page at ``/dashboard`` and the read-only JSON it draws: ``/v1/dashboard/...``.

Open to anyone who can reach the service, like ``/v1/model`` and ``/metrics``: nothing here
changes state (the admin actions are in :mod:`efimero.serve.routes.admin`). See
:mod:`efimero.serve.dashboard` for what each view reads and which clock it ends at.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from importlib import resources
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from efimero.errors import EfimeroError
from efimero.serve.dashboard import DashboardSources, read_clock
from efimero.serve.dashboard import views as view
from efimero.serve.dashboard.schemas import DriftView, MetricsView, Summary
from efimero.serve.deps import get_holder, get_store
from efimero.serve.holder import ModelHolder
from efimero.serve.routes.ops import model_info
from efimero.store import InteractionStore

T = TypeVar("T")

router = APIRouter(tags=["dashboard"])


async def get_sources(request: Request) -> DashboardSources:
    return request.app.state.dashboard


Sources = Annotated[DashboardSources, Depends(get_sources)]
Holder = Annotated[ModelHolder, Depends(get_holder)]
Store = Annotated[InteractionStore, Depends(get_store)]
At = Annotated[datetime | None, Query(
    description="End the view at this moment (ISO 8601; UTC when no offset). Default: the wall clock, or the "
    "newest visit in the store when the wall clock's span holds none (simulated traffic)")]


async def cached(sources: Sources, holder: ModelHolder, key: Hashable, compute: Callable[[], T]) -> T:
    """``compute()`` in the thread pool, or its result of the last few seconds; a failure is a 503 saying why."""
    try:
        return await run_in_threadpool(sources.cache.get, key, compute)
    except EfimeroError as exc:
        raise HTTPException(503, detail=holder.public(str(exc))) from exc


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard_page() -> HTMLResponse:
    return HTMLResponse(resources.files("efimero.serve").joinpath("static/dashboard.html").read_text(encoding="utf-8"))


@router.get("/v1/dashboard/summary", response_model=Summary, summary="Live model, rollout, deployments, alerts, "
            "retraining", responses={503: {"description": "The store or a config file cannot be read"}})
async def summary(sources: Sources, holder: Holder, store: Store) -> Summary:
    """Everything that is not a time series: the live version and its test metrics, the served environment,
    the running or last rollout with its timeline, recent deployments and alerts, the last retraining run with
    its triggers, and when the time trigger retrains next. A section that cannot be read is named in
    ``problems``."""
    bundle = holder.bundle
    live = model_info(bundle, holder) if bundle is not None else None
    return await cached(sources, holder, ("summary", live and live.version),
                        lambda: view.summary(live, sources, store.engine, public=holder.public))


@router.get("/v1/dashboard/metrics", response_model=MetricsView, summary="Per-arm metrics over consecutive windows",
            responses={503: {"description": "The store or retraining.yaml cannot be read"}})
async def metrics(
    sources: Sources, holder: Holder, store: Store, at: At = None,
    windows: Annotated[int, Query(ge=1, le=288, description="How many consecutive windows")] = 12,
    window_minutes: Annotated[float | None, Query(
        gt=0, le=1440, description="Length of a window. Default: retraining.monitoring.window_minutes (5)")] = None,
) -> MetricsView:
    """Per version and traffic arm, each window's online accuracy (Wilson 95 % interval), mean session
    duration (Student-t 95 % interval), p95 latency and error rate, with the counts behind them; a value
    behind too few sessions or predictions is null with the reason (``retraining.monitoring`` minimums)."""
    def compute() -> MetricsView:
        rules = sources.retraining.retraining.monitoring
        length = window_minutes or rules.window_minutes
        clock = read_clock(store.engine, span=timedelta(minutes=length * windows), at=at)
        return view.metrics(store.engine, rules, clock=clock, window_minutes=length, windows=windows)

    return await cached(sources, holder, ("metrics", at, windows, window_minutes), compute)


@router.get("/v1/dashboard/drift", response_model=DriftView, summary="Drift per feature against the training data",
            responses={503: {"description": "The store or retraining.yaml cannot be read"}})
async def drift(
    sources: Sources, holder: Holder, store: Store, at: At = None,
    minutes: Annotated[float, Query(gt=0, le=10_080, description="Length of the recent window")] = 60,
) -> DriftView:
    """Every feature of the last ``minutes``' sessions against the live version's training data: KS or chi²,
    PSI, Wasserstein and Jensen–Shannon, whether it drifted and why, and the dataset verdict weighted by the
    live model's importance. ``problem`` says why nothing was measured (too few sessions, no training data)."""
    bundle = holder.bundle

    def compute() -> DriftView:
        rules = sources.retraining.retraining.monitoring
        clock = read_clock(store.engine, span=timedelta(minutes=minutes), at=at)
        return view.drift(store.engine, sources, bundle, rules, clock=clock, minutes=minutes)

    return await cached(sources, holder, ("drift", bundle and bundle.version, at, minutes), compute)
