"""`/v1/usecases`: the production model of each use case served with `efimero serve --usecase KEY`.

Each use case gets ``POST /v1/usecases/<key>/predict`` (one row) and ``…/predict/batch``
(``{"rows": [...]}``, at most ``usecase_max_batch`` rows), whose bodies are the use case's
own schemas (:mod:`efimero.serve.usecases`); ``GET /v1/usecases`` lists what is served. A key
that is not served answers 404 naming the keys that are. Predictions run in FastAPI's thread
pool, so a large batch never holds up the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, HTTPException

from efimero.serve.usecases import (
    RowPrediction,
    ServedUseCase,
    UseCaseBatchPredictResponse,
    UseCaseList,
    UseCasePredictResponse,
)

_NOT_LOADED = {"description": "The service is starting and has not loaded this use case's model yet"}


def router_for(served: Sequence[ServedUseCase]) -> APIRouter:
    """The routes of the use cases in ``served``: a listing, two predictions per use case, a 404 for the others.

    Example:
        >>> served = resolve_usecases("models/usecases", ["wine"], max_batch=100)  # doctest: +SKIP
        >>> app.include_router(router_for(served))  # doctest: +SKIP
    """
    router = APIRouter(prefix="/v1/usecases", tags=["use cases"])
    keys = [case.key for case in served]

    @router.get("", response_model=UseCaseList, summary="The use cases this service predicts")
    def list_usecases() -> UseCaseList:
        """Each served use case with its production version, algorithm, test metrics, routes and request schema."""
        return UseCaseList(usecases=[case.info() for case in served])

    for case in served:
        _add_predict_routes(router, case)

    def unknown(key: str) -> None:
        raise HTTPException(404, detail=f"use case {ascii(key)[:70]} is not served here. Served: {', '.join(keys)}. "
                            f"Start the service with `efimero serve --usecase KEY` to serve another.")

    for path in ("/{key}/predict", "/{key}/predict/batch"):  # after the served keys' routes, which match first
        router.add_api_route(path, unknown, methods=["POST"], include_in_schema=False)
    return router


def _add_predict_routes(router: APIRouter, case: ServedUseCase) -> None:
    """``POST <key>/predict`` and ``<key>/predict/batch``, with the use case's own body schemas."""
    about = case.spec.description or case.spec.name or case.key

    def predict(row: Any) -> UseCasePredictResponse:
        [result] = _predict(case, [row])
        return UseCasePredictResponse(**case.served(), **dict(result))

    def predict_batch(body: Any) -> UseCaseBatchPredictResponse:
        return UseCaseBatchPredictResponse(**case.served(), predictions=_predict(case, body.rows))

    # The body models exist only now: FastAPI reads each body's type from the handler's annotations.
    predict.__annotations__ = {"row": case.request_model, "return": UseCasePredictResponse}
    predict_batch.__annotations__ = {"body": case.batch_model, "return": UseCaseBatchPredictResponse}
    router.add_api_route(
        f"/{case.key}/predict", predict, methods=["POST"], response_model=UseCasePredictResponse,
        summary=f"Predict one row of {case.key}", responses={503: _NOT_LOADED},
        description=f"{about}\n\nThe body is a `{case.request_model.__name__}`; the answer gives the "
        f"{_what(case)} of version {case.entry['version']} ({case.entry['algorithm']}).",
    )
    router.add_api_route(
        f"/{case.key}/predict/batch", predict_batch, methods=["POST"], response_model=UseCaseBatchPredictResponse,
        summary=f"Predict up to {case.max_batch} rows of {case.key}", responses={503: _NOT_LOADED},
        description=f"{about}\n\nThe body is `{{\"rows\": [...]}}`, 1 to {case.max_batch} "
        f"`{case.request_model.__name__}` rows; the answer lists one prediction per row, in order.",
    )


def _what(case: ServedUseCase) -> str:
    return {"binary": "class label and the probability of each class",
            "multiclass": "class label and the probability of each class", "regression": "predicted value",
            "multi_output": "value of each target", "clustering": "cluster id (-1: noise)"}[case.spec.task.value]


def _predict(case: ServedUseCase, rows: Sequence[Any]) -> list[RowPrediction]:
    if not case.loaded:
        raise HTTPException(503, detail=f"use case {case.key} is not loaded yet")
    return case.predict(rows)
