"""`/v1/interactions`: what the visitor did with the style it was served."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from efimero.serve.deps import get_store
from efimero.serve.feature_store import FeatureStore, get_feature_store
from efimero.serve.schemas import InteractionAccepted, InteractionRequest
from efimero.store import InteractionStore, RecordRefusedError, StoreUnavailableError

router = APIRouter(prefix="/v1", tags=["interactions"])

RETRY_AFTER_S = 1
_UNAVAILABLE = {"description": "The store cannot take the log now; retry after the Retry-After header's seconds"}


def _unavailable(reason: str) -> HTTPException:
    return HTTPException(503, detail=reason, headers={"Retry-After": str(RETRY_AFTER_S)})


@router.post(
    "/interactions", response_model=InteractionAccepted, status_code=202, summary="Log an interaction",
    responses={503: _UNAVAILABLE},
)
async def record_interaction(
    log: InteractionRequest, request: Request, store: Annotated[InteractionStore, Depends(get_store)],
    history: Annotated[FeatureStore | None, Depends(get_feature_store)],
) -> InteractionAccepted:
    """Store the interaction log of a served prediction; answer once it is committed.

    Any worker or host on the same store accepts the log at any delay after its prediction:
    the prediction id is signed with the store's key. Sending the same log (prediction_id,
    session_id) again is acknowledged and stored once. The user id is stored only as an HMAC
    under the deployment's pepper.
    """
    if not store.ids.verify(log.prediction_id):
        try:  # ids issued before schema 2 were unsigned: they count when their prediction was stored
            known = await run_in_threadpool(store.has_prediction, log.prediction_id)
        except StoreUnavailableError as exc:
            raise _unavailable(str(exc)) from exc
        if not known:
            raise RequestValidationError([{
                "type": "unknown_prediction", "loc": ("body", "prediction_id"),
                "msg": f"prediction_id must name a prediction this service made. Got {log.prediction_id!r} instead.",
            }])
    try:
        committed = store.record_interaction({
            "prediction_id": log.prediction_id,
            "received_at": datetime.now(UTC),
            "session_id": log.session_id,
            "user_hash": store.hash_user(log.user_id) if log.user_id else None,
            "session_duration_ms": log.session_duration,
            "interactions_count": log.interactions_count,
            "bounce_rate": log.bounce_rate,
            "scroll_depth": log.scroll_depth,
            "click_through_rate": log.click_through_rate,
            "user_satisfaction": log.user_satisfaction,
            "ui_preference_feedback": log.ui_preference_feedback,
            "page_load_time_ms": log.page_load_time,
            "rendering_time_ms": log.rendering_time,
            "first_styled_paint_ms": log.first_styled_paint,
            "hidden_ms": log.hidden_time,
            "device_info": log.device_info,
            "network_conditions": log.network_conditions,
        })
        await asyncio.wait_for(asyncio.wrap_future(committed), request.app.state.settings.commit_timeout_s)
    except TimeoutError as exc:
        raise _unavailable("the store did not commit the log in time; retry later (a replay is stored once).") from exc
    except StoreUnavailableError as exc:
        raise _unavailable(str(exc)) from exc
    except RecordRefusedError as exc:
        raise RequestValidationError([{"type": "refused_by_store", "loc": ("body",), "msg": str(exc)}]) from exc
    if history is not None:  # --feature-store: count the visit in the visitor's server-side history (never raises)
        await history.record_visit(log.prediction_id, duration_ms=log.session_duration,
                                   interactions=log.interactions_count)
    return InteractionAccepted(prediction_id=log.prediction_id)
