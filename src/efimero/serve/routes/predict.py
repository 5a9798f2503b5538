"""`/v1/predict` and `/v1/predict/batch`: raw browser context in, CSS out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from efimero.bundle import ModelBundle, Prediction
from efimero.context import event_time, features_of, features_of_many
from efimero.css import class_key, css_variables
from efimero.schema import FEATURE_NAMES
from efimero.serve.deps import get_bundle, get_metrics, get_store
from efimero.serve.metrics import ServiceMetrics
from efimero.serve.schemas import BatchPredictRequest, BatchPredictResponse, PredictRequest, PredictResponse
from efimero.store import InteractionStore

router = APIRouter(prefix="/v1", tags=["predict"])

Bundle = Annotated[ModelBundle, Depends(get_bundle)]
Store = Annotated[InteractionStore, Depends(get_store)]
Metrics = Annotated[ServiceMetrics, Depends(get_metrics)]


def _respond(
    request: PredictRequest, features: dict[str, float], prediction: Prediction, store: InteractionStore,
) -> PredictResponse:
    """Shape one prediction as CSS under a signed id and queue its log record."""
    response = PredictResponse(
        prediction_id=store.ids.issue(),
        model_version=prediction.model_version or "",
        css_classes={class_key(t): c.label for t, c in prediction.classes.items()},
        css_variables=css_variables(prediction.values),
        confidences={class_key(t): round(c.confidence, 4) for t, c in prediction.classes.items()},
    )
    store.record_prediction({
        "prediction_id": response.prediction_id,
        "created_at": datetime.now(UTC),
        "event_time": event_time(request),
        "model_version": response.model_version,
        "context": request.model_dump(mode="json"),
        "features": features,
        "css_classes": response.css_classes,
        "css_variables": response.css_variables,
        "confidences": response.confidences,
    })
    return response


def _count(metrics: ServiceMetrics, responses: list[PredictResponse]) -> None:
    """Count served predictions, only once every response of the request is built."""
    for response in responses:
        metrics.predictions.labels(response.model_version).inc()
        for group, label in response.css_classes.items():
            metrics.predicted_classes.labels(group, label).inc()


@router.post("/predict", response_model=PredictResponse, summary="Style for one page view")
async def predict(request: PredictRequest, bundle: Bundle, store: Store, metrics: Metrics) -> Response:
    """Turn the raw browser context into the 19 features and predict the CSS classes and variables."""
    features = features_of(request)
    response = _respond(request, features, bundle.predict(features), store)
    _count(metrics, [response])
    # Already a validated PredictResponse: serialise it once instead of letting FastAPI re-validate it.
    return Response(response.model_dump_json(), media_type="application/json")


@router.post("/predict/batch", response_model=BatchPredictResponse, summary="Styles for many page views")
async def predict_batch(
    body: BatchPredictRequest, request: Request, bundle: Bundle, store: Store, metrics: Metrics
) -> BatchPredictResponse:
    """Predict many contexts in one vectorised pass; each gets its own prediction_id and log record.

    The work runs in a worker thread, off the event loop, so health checks and single
    predictions keep answering while large batches are computed.
    """
    limit = request.app.state.settings.max_batch
    if len(body.contexts) > limit:
        raise RequestValidationError([{
            "type": "too_long", "loc": ("body", "contexts"),
            "msg": f"contexts must hold at most {limit} items. Got {len(body.contexts)} instead.",
        }])
    responses = await run_in_threadpool(_predict_many, body.contexts, bundle, store)
    _count(metrics, responses)
    return BatchPredictResponse(predictions=responses)


def _predict_many(contexts: list[PredictRequest], bundle: ModelBundle,
                  store: InteractionStore) -> list[PredictResponse]:
    rows = features_of_many(contexts)
    matrix = np.array([[row[name] for name in FEATURE_NAMES] for row in rows], dtype=float)
    predictions = bundle.predict_rows(matrix)
    return [_respond(c, f, p, store) for c, f, p in zip(contexts, rows, predictions, strict=True)]
