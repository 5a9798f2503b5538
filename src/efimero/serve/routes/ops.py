"""Operations: the live model, liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from efimero.serve.deps import get_bundle, get_holder, get_metrics, get_store
from efimero.serve.holder import ModelHolder
from efimero.serve.metrics import ServiceMetrics
from efimero.serve.schemas import Health, ModelInfo
from efimero.store import InteractionStore
from efimero.training import ModelBundle

router = APIRouter(tags=["operations"])


@router.get("/v1/model", response_model=ModelInfo, summary="The live model version")
def model_info(
    bundle: Annotated[ModelBundle, Depends(get_bundle)], holder: Annotated[ModelHolder, Depends(get_holder)]
) -> ModelInfo:
    """Version, metadata and test-metric summary of the model serving requests now."""
    return ModelInfo(
        version=bundle.version or "",
        loaded_at=holder.loaded_at.isoformat() if holder.loaded_at else "",
        swaps=holder.swaps,
        last_error=holder.last_error,
        metadata=bundle.metadata,
        metrics=bundle.metrics.get("summary", {}),
    )


@router.get("/healthz", response_model=Health, summary="Liveness")
def healthz() -> Health:
    """The process is up and answering."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, summary="Readiness", responses={503: {"model": Health}})
def readyz(
    holder: Annotated[ModelHolder, Depends(get_holder)], store: Annotated[InteractionStore, Depends(get_store)]
) -> JSONResponse:
    """Ready when a model is loaded and the store answers; 503 otherwise, naming what is missing."""
    checks = {
        "model": f"serving {holder.bundle.version}" if holder.bundle else f"no model: {holder.last_error}",
        "store": "ok" if store.ping() else "unreachable",
    }
    ready = holder.bundle is not None and checks["store"] == "ok"
    body = Health(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(
    service_metrics: Annotated[ServiceMetrics, Depends(get_metrics)],
    store: Annotated[InteractionStore, Depends(get_store)],
) -> Response:
    """Request counts and latency histograms per route, predictions per version and class, errors."""
    service_metrics.store_pending.set(store.pending)
    service_metrics.store_dropped.set(store.stats.dropped)
    return Response(generate_latest(service_metrics.registry), media_type=CONTENT_TYPE_LATEST)
