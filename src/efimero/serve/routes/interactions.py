"""`/v1/interactions`: what the visitor did with the style it was served."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.exceptions import RequestValidationError

from efimero.errors import StoreError
from efimero.serve.deps import get_store
from efimero.serve.schemas import InteractionAccepted, InteractionRequest
from efimero.store import InteractionStore

router = APIRouter(prefix="/v1", tags=["interactions"])


@router.post("/interactions", response_model=InteractionAccepted, status_code=202, summary="Log an interaction")
def record_interaction(
    log: InteractionRequest, store: Annotated[InteractionStore, Depends(get_store)]
) -> InteractionAccepted:
    """Queue the interaction log of a served prediction; the user id is stored only as a salted hash."""
    try:
        known = store.has_prediction(log.prediction_id)
        if not known:
            raise RequestValidationError([{
                "type": "unknown_prediction", "loc": ("body", "prediction_id"),
                "msg": f"prediction_id must name a prediction this service made. Got {log.prediction_id!r} instead.",
                "input": log.prediction_id,
            }])
        store.record_interaction({
            "prediction_id": log.prediction_id,
            "received_at": datetime.now(timezone.utc),
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
            "device_info": log.device_info,
            "network_conditions": log.network_conditions,
        })
    except StoreError as exc:
        raise HTTPException(503, detail=str(exc)) from exc
    return InteractionAccepted(prediction_id=log.prediction_id)
