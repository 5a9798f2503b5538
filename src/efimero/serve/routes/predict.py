"""`/v1/predict` and `/v1/predict/batch`: raw browser context in, CSS out.

Each context is routed to an arm of the traffic split by a stable hash of the visitor (the
``visitor_id`` the client keeps, else the session id, else the prediction's own id, which
routes a keyless request at random). The class labels served are chosen by the deployment's
exploration policy (:mod:`efimero.bandit.explore`: the model's best labels unless it explores).
Every prediction record stores its arm, version, the server-side latency and the decision of
each class slot with its propensity; a prediction that fails is recorded as an error of its
arm, so that the monitor compares versions on error rate as well as on what visitors did.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from efimero.bandit.explore import decide
from efimero.bundle import ModelBundle, Prediction
from efimero.context import event_time, features_of, features_of_many
from efimero.css import StyleTokens, class_key, tokens_of
from efimero.schema import FEATURE_NAMES
from efimero.serve.deps import Serving, get_serving
from efimero.serve.holder import Routing
from efimero.serve.metrics import ServiceMetrics
from efimero.serve.schemas import BatchPredictRequest, BatchPredictResponse, PredictRequest, PredictResponse
from efimero.store import InteractionStore

router = APIRouter(prefix="/v1", tags=["predict"])

Serve = Annotated[Serving, Depends(get_serving)]


def _visitor_key(request: PredictRequest, prediction_id: str) -> str:
    return request.visitor_id or request.session_id or prediction_id


def _route(request: PredictRequest, routing: Routing, prediction_id: str) -> tuple[str, ModelBundle]:
    return routing.pick(_visitor_key(request, prediction_id))


def _respond(
    request: PredictRequest, prediction_id: str, arm: str, features: dict[str, float], prediction: Prediction,
    store: InteractionStore, latency_ms: float, routing: Routing, tokens: StyleTokens,
) -> PredictResponse:
    """Choose the served labels, shape them as CSS of the serving version's ``tokens`` and queue the log record."""
    decision = decide(
        {target: c.probabilities for target, c in prediction.classes.items()}, routing.exploration,
        context=dict(request), visitor_key=_visitor_key(request, prediction_id), decision_key=prediction_id,
    )
    served = {target: decision.slots[target].label for target in prediction.classes}
    response = PredictResponse(
        prediction_id=prediction_id,
        model_version=prediction.model_version or "",
        arm=arm,
        css_classes={class_key(t): label for t, label in served.items()},
        css_variables=tokens.format_variables(prediction.values),
        confidences={class_key(t): round(c.probabilities[served[t]], 4) for t, c in prediction.classes.items()},
    )
    store.record_prediction({
        "prediction_id": prediction_id,
        "created_at": datetime.now(UTC),
        "event_time": event_time(request),
        "model_version": response.model_version,
        "arm": arm,
        "latency_ms": latency_ms,
        "context": request.model_dump(mode="json", exclude={"visitor_id"}),
        "features": features,
        "css_classes": response.css_classes,
        "css_variables": response.css_variables,
        "confidences": response.confidences,
        "decisions": decision.to_record(),
    })
    return response


def _record_failure(
    store: InteractionStore, request: PredictRequest, bundle: ModelBundle, arm: str, exc: Exception
) -> None:
    store.record_prediction_error({
        "created_at": datetime.now(UTC), "event_time": event_time(request), "model_version": bundle.version or "",
        "arm": arm, "error": f"{type(exc).__name__}: {exc}",
    })


def _count(metrics: ServiceMetrics, responses: list[PredictResponse]) -> None:
    """Count served predictions, only once every response of the request is built."""
    for response in responses:
        metrics.predictions.labels(response.model_version, response.arm).inc()
        for group, label in response.css_classes.items():
            metrics.predicted_classes.labels(group, label).inc()


@router.post("/predict", response_model=PredictResponse, summary="Style for one page view")
async def predict(request: PredictRequest, serving: Serve) -> Response:
    """Turn the raw browser context into the 19 features and predict the CSS classes and variables."""
    started = time.perf_counter()
    routing, store, history = serving.routing, serving.store, serving.history
    prediction_id = store.ids.issue()
    if history is not None:  # --feature-store: the visitor's server-side history wins over the client's
        request = await history.personalise(request, prediction_id)
    arm, bundle = _route(request, routing, prediction_id)
    features = features_of(request)
    try:
        prediction = bundle.predict(features)
    except Exception as exc:
        _record_failure(store, request, bundle, arm, exc)
        raise
    latency_ms = (time.perf_counter() - started) * 1000
    response = _respond(request, prediction_id, arm, features, prediction, store, latency_ms, routing,
                        tokens_of(bundle.metadata))
    _count(serving.metrics, [response])
    # Already a validated PredictResponse: serialise it once instead of letting FastAPI re-validate it.
    return Response(response.model_dump_json(), media_type="application/json")


@router.post("/predict/batch", response_model=BatchPredictResponse, summary="Styles for many page views")
async def predict_batch(body: BatchPredictRequest, request: Request, serving: Serve) -> BatchPredictResponse:
    """Predict many contexts in one vectorised pass per arm; each gets its own prediction_id and log record.

    The work runs in a worker thread, off the event loop, so health checks and single
    predictions keep answering while large batches are computed.
    """
    limit = request.app.state.settings.max_batch
    if len(body.contexts) > limit:
        raise RequestValidationError([{
            "type": "too_long", "loc": ("body", "contexts"),
            "msg": f"contexts must hold at most {limit} items. Got {len(body.contexts)} instead.",
        }])
    history = serving.history
    contexts = body.contexts if history is None else await history.personalise_many(body.contexts)
    responses = await run_in_threadpool(_predict_many, contexts, serving.routing, serving.store)
    if history is not None:
        await history.remember_many(contexts, [response.prediction_id for response in responses])
    _count(serving.metrics, responses)
    return BatchPredictResponse(predictions=responses)


def _predict_many(contexts: list[PredictRequest], routing: Routing, store: InteractionStore) -> list[PredictResponse]:
    """Group the contexts by arm, predict each group in one pass; the latency recorded per row is its group's share."""
    started = time.perf_counter()
    rows = features_of_many(contexts)
    ids = [store.ids.issue() for _ in contexts]
    groups: dict[str, list[int]] = defaultdict(list)
    bundles: dict[str, ModelBundle] = {}
    for index, (context, prediction_id) in enumerate(zip(contexts, ids, strict=True)):
        arm, bundles[arm] = _route(context, routing, prediction_id)
        groups[arm].append(index)
    feature_seconds = time.perf_counter() - started
    responses: list[PredictResponse | None] = [None] * len(contexts)
    for arm, indexes in groups.items():
        group_started = time.perf_counter()
        matrix = np.array([[rows[i][name] for name in FEATURE_NAMES] for i in indexes], dtype=float)
        try:
            predictions = bundles[arm].predict_rows(matrix)
        except Exception as exc:
            for i in indexes:
                _record_failure(store, contexts[i], bundles[arm], arm, exc)
            raise
        per_row_ms = ((time.perf_counter() - group_started) + feature_seconds * len(indexes) / len(contexts)) \
            * 1000 / len(indexes)
        for i, prediction in zip(indexes, predictions, strict=True):
            responses[i] = _respond(contexts[i], ids[i], arm, rows[i], prediction, store, per_row_ms, routing,
                                    tokens_of(bundles[arm].metadata))
    return [response for response in responses if response is not None]
