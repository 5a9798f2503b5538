"""Named dependencies: the live model, the store and the metrics of the running app.

They are ``async def`` although they await nothing: FastAPI runs plain ``def`` dependencies
in a thread pool, a round trip that cost more than the feature computation per request.
The prediction routes take everything in one :class:`Serving`: FastAPI resolves each
dependency of a request separately, and four of them cost a fifth of a prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request

from efimero.bundle import ModelBundle
from efimero.serve.feature_store import FeatureStore
from efimero.serve.holder import ModelHolder, Routing
from efimero.serve.metrics import ServiceMetrics
from efimero.store import InteractionStore


@dataclass(frozen=True, slots=True)
class Serving:
    """What a prediction needs: the routing read once (so a swap cannot split a request), the
    store, the metrics and the server-side history (None unless ``--feature-store``)."""

    routing: Routing
    store: InteractionStore
    metrics: ServiceMetrics
    history: FeatureStore | None


async def get_serving(request: Request) -> Serving:
    state = request.app.state
    return Serving(await get_routing(request), state.store, state.metrics, state.feature_store)


async def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder


async def get_bundle(request: Request) -> ModelBundle:
    """The bundle to serve this request with, read once so a swap cannot split a request."""
    bundle = request.app.state.holder.bundle
    if bundle is None:
        raise HTTPException(503, detail=request.app.state.holder.last_error or "no model loaded yet")
    return bundle


async def get_routing(request: Request) -> Routing:
    """The live bundle and the split's candidates, read once so a swap cannot split a request."""
    routing = request.app.state.holder.routing
    if routing is None:
        raise HTTPException(503, detail=request.app.state.holder.last_error or "no model loaded yet")
    return routing


async def get_store(request: Request) -> InteractionStore:
    return request.app.state.store


async def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics
