"""Operations: the live model, liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from efimero.bundle import ModelBundle
from efimero.css import tokens_of
from efimero.serve.deps import get_bundle, get_holder, get_metrics, get_store
from efimero.serve.feature_store import FeatureStore, get_feature_store
from efimero.serve.holder import ModelHolder
from efimero.serve.metrics import ServiceMetrics
from efimero.serve.schemas import ArmInfo, Health, ModelInfo, MonitorStatus
from efimero.store import InteractionStore

router = APIRouter(tags=["operations"])


@router.get("/v1/model", response_model=ModelInfo, summary="The live model version")
def model_info(
    bundle: Annotated[ModelBundle, Depends(get_bundle)], holder: Annotated[ModelHolder, Depends(get_holder)]
) -> ModelInfo:
    """The live version (metadata, test-metric summary), the candidates sharing the traffic, and what is wrong."""
    return ModelInfo(
        version=bundle.version or "",
        loaded_at=holder.loaded_at.isoformat() if holder.loaded_at else "",
        swaps=holder.swaps,
        last_error=holder.last_error,
        fallback=holder.fallback,
        watcher_alive=holder.watching,
        inference=holder.public(bundle.inference),
        metadata=holder.public(bundle.metadata),
        style_tokens=tokens_of(bundle.metadata).to_dict(),
        metrics=bundle.metrics.get("summary", {}),
        traffic=_arms(holder),
        exploration=_exploration(holder),
    )


def _exploration(holder: ModelHolder) -> dict[str, Any] | None:
    policy = holder.routing.exploration if holder.routing is not None else None
    if policy is None:
        return None
    return policy.model_dump(mode="json", exclude={"salt"}) | {"policy_id": policy.policy_id}


def _arms(holder: ModelHolder) -> list[ArmInfo]:
    routing = holder.routing
    if routing is None or routing.split is None:
        return []
    return [
        ArmInfo(arm=arm.name, version=arm.version, share=arm.share, served=arm.name in routing.candidates,
                error=holder.arm_error(arm.version))
        for arm in routing.split.arms
    ]


@router.get("/v1/monitor", response_model=MonitorStatus, summary="The monitoring loop's last check")
def monitor_status(request: Request) -> MonitorStatus:
    """The last round of the service's monitoring loop: metrics per version and arm, rule results, new alerts."""
    loop = request.app.state.monitor
    if loop is None:
        return MonitorStatus(running=False, error="the monitoring loop is off (monitor_interval_s is 0)")
    return MonitorStatus(
        running=loop.running, interval_s=loop.interval_s, clock=loop.clock,
        checked_at=loop.checked_at.isoformat() if loop.checked_at else None, error=loop.error,
        report=loop.report.to_dict() if loop.report is not None else None, new_alerts=loop.alerts,
    )


@router.get("/healthz", response_model=Health, summary="Liveness")
def healthz() -> Health:
    """The process is up and answering."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, summary="Readiness", responses={503: {"model": Health}})
def readyz(
    holder: Annotated[ModelHolder, Depends(get_holder)], store: Annotated[InteractionStore, Depends(get_store)],
    feature_store: Annotated[FeatureStore | None, Depends(get_feature_store)],
) -> JSONResponse:
    """Ready when a model is loaded, its watcher runs, the store answers and its writer runs; 503 otherwise.

    A fallback version or served files that changed on disk keep the service ready (it
    answers with an intact model) but are named in the model check, for whoever reads it. So
    does a failing feature store (``--feature-store``): predictions then use the client's history.
    """
    bundle = holder.bundle
    if bundle is None:
        model = f"no model: {holder.last_error}"
    else:
        model = f"serving {bundle.version}" + (f" as a fallback: {holder.fallback}" if holder.fallback else "")
        model += f"; {holder.last_error}" if holder.last_error else ""
    checks = {
        "model": model,
        "watcher": "following current" if holder.watching else "stopped: the served version no longer follows current",
        "store": "ok" if store.ping() else "unreachable",
        "store_writer": "running" if store.writer_alive else "stopped: interaction logs cannot be stored",
    }
    if feature_store is not None:
        checks["feature_store"] = feature_store.status()
    ready = bundle is not None and holder.watching and checks["store"] == "ok" and store.writer_alive
    body = Health(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request, service_metrics: Annotated[ServiceMetrics, Depends(get_metrics)]) -> Response:
    """Requests and latency per route, predictions per version and class, errors, the store writer's counts:
    of every worker of `efimero serve --workers N`, whichever answers."""
    request.app.state.store_metrics.sync()
    return Response(generate_latest(service_metrics.exposed()), media_type=CONTENT_TYPE_LATEST)
