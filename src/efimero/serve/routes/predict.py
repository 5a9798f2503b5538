"""`/v1/predict` and `/v1/predict/batch`: raw browser context in, CSS out."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError

from efimero.context import event_time, features_of
from efimero.schema import FEATURE_NAMES
from efimero.css import class_key, css_variables
from efimero.serve.deps import get_bundle, get_metrics, get_store
from efimero.serve.metrics import ServiceMetrics
from efimero.serve.schemas import BatchPredictRequest, BatchPredictResponse, PredictRequest, PredictResponse
from efimero.store import InteractionStore
from efimero.training import ModelBundle, Prediction

router = APIRouter(prefix="/v1", tags=["predict"])

Bundle = Annotated[ModelBundle, Depends(get_bundle)]
Store = Annotated[InteractionStore, Depends(get_store)]
Metrics = Annotated[ServiceMetrics, Depends(get_metrics)]


def _respond(
    request: PredictRequest, features: dict[str, float], prediction: Prediction, store: InteractionStore,
    metrics: ServiceMetrics,
) -> PredictResponse:
    """Shape one prediction as CSS, count it and queue its log record."""
    response = PredictResponse(
        prediction_id=str(uuid.uuid4()),
        model_version=prediction.model_version or "",
        css_classes={class_key(t): c.label for t, c in prediction.classes.items()},
        css_variables=css_variables(prediction.values),
        confidences={class_key(t): round(c.confidence, 4) for t, c in prediction.classes.items()},
    )
    metrics.predictions.labels(response.model_version).inc()
    for group, label in response.css_classes.items():
        metrics.predicted_classes.labels(group, label).inc()
    store.record_prediction({
        "prediction_id": response.prediction_id,
        "created_at": datetime.now(timezone.utc),
        "event_time": event_time(request),
        "model_version": response.model_version,
        "context": request.model_dump(mode="json"),
        "features": features,
        "css_classes": response.css_classes,
        "css_variables": response.css_variables,
        "confidences": response.confidences,
    })
    return response


@router.post("/predict", response_model=PredictResponse, summary="Style for one page view")
async def predict(request: PredictRequest, bundle: Bundle, store: Store, metrics: Metrics) -> Response:
    """Turn the raw browser context into the 19 features and predict the CSS classes and variables."""
    features = features_of(request)
    response = _respond(request, features, bundle.predict(features), store, metrics)
    # Already a validated PredictResponse: serialise it once instead of letting FastAPI re-validate it.
    return Response(response.model_dump_json(), media_type="application/json")


@router.post("/predict/batch", response_model=BatchPredictResponse, summary="Styles for many page views")
async def predict_batch(
    body: BatchPredictRequest, request: Request, bundle: Bundle, store: Store, metrics: Metrics
) -> BatchPredictResponse:
    """Predict many contexts in one vectorised pass; each gets its own prediction_id and log record."""
    limit = request.app.state.settings.max_batch
    if len(body.contexts) > limit:
        raise RequestValidationError([{
            "type": "too_long", "loc": ("body", "contexts"),
            "msg": f"contexts must hold at most {limit} items. Got {len(body.contexts)} instead.",
        }])
    rows = [features_of(context) for context in body.contexts]
    matrix = np.array([[row[name] for name in FEATURE_NAMES] for row in rows], dtype=float)
    predictions = bundle.predict_rows(matrix)
    return BatchPredictResponse(
        predictions=[_respond(c, f, p, store, metrics) for c, f, p in zip(body.contexts, rows, predictions)]
    )
