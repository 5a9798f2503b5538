"""State-changing actions of the dashboard, behind ``Authorization: Bearer $EFIMERO_ADMIN_TOKEN``.

Without the variable every action answers 401 and names it: an admin endpoint is never open by
default. A placeholder token ("changeme", "admin", anything under 16 characters) stops the
service at start (:func:`efimero.serve.dashboard.admin_token_from_environ`). The token is
compared in constant time. Actions act on the environment whose ``model_dir`` is served; a
service that serves another directory answers 409 saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from efimero.errors import ConfigError, EfimeroError, VersionNotFoundError
from efimero.serve.dashboard import ADMIN_TOKEN_ENV, DashboardSources, actions, token_matches
from efimero.serve.dashboard.schemas import (
    AbortRollout,
    DeploymentView,
    ExperimentView,
    Rollback,
    RolloutView,
    StartRollout,
    StopExperiment,
)
from efimero.serve.deps import get_holder
from efimero.serve.holder import ModelHolder
from efimero.serve.routes.dashboard import Sources

T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description=f"The value of {ADMIN_TOKEN_ENV} on the server")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}

STATUS: tuple[tuple[type[EfimeroError], int], ...] = (
    (VersionNotFoundError, 404),
    (actions.NoExperimentError, 404),
    (ConfigError, 503),
    (EfimeroError, 409),
)
"""HTTP status of a refused action, by the first class the error is an instance of: 404 for a version that does
not exist or an experiment that does not run, 503 for a config that cannot be read, 409 for anything the target's
state refuses now (a rollout running, none to abort, a served directory that is no environment)."""


async def require_admin(
    sources: Sources, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Let the request through only with the configured admin token; 401 otherwise, saying what is missing."""
    expected = sources.admin_token
    if expected is None:
        raise HTTPException(401, detail=f"admin actions are disabled: {ADMIN_TOKEN_ENV} is not set on the server. "
                            "Set it to a secret of at least 16 characters and restart the service.", headers=_CHALLENGE)
    if credentials is None or not token_matches(expected, credentials.credentials):
        raise HTTPException(401, detail=f"Authorization must be 'Bearer <{ADMIN_TOKEN_ENV}>'. Got "
                            f"{'no bearer token' if credentials is None else 'another token'} instead.",
                            headers=_CHALLENGE)


router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)],
                   responses={401: {"description": f"No or a wrong bearer token, or {ADMIN_TOKEN_ENV} unset"},
                              409: {"description": "The target refuses it now (the message says why)"}})
Holder = Annotated[ModelHolder, Depends(get_holder)]


async def act(sources: DashboardSources, holder: ModelHolder, action: Callable[[], T]) -> T:
    """Run ``action`` in the thread pool, then forget the cached views it made stale; a refusal becomes its status."""
    try:
        result = await run_in_threadpool(action)
    except ValidationError as exc:
        raise RequestValidationError([error | {"loc": ("body", *error["loc"])} for error in exc.errors()]) from exc
    except EfimeroError as exc:
        status = next(code for kind, code in STATUS if isinstance(exc, kind))
        raise HTTPException(status, detail=holder.public(str(exc))) from exc
    finally:
        sources.cache.clear()
    return result


@router.post("/rollout/start", response_model=RolloutView, status_code=201, summary="Start a rollout")
async def start_rollout(body: StartRollout, sources: Sources, holder: Holder) -> RolloutView:
    """Validate a version of the retraining registry and serve it to the first stage's share of visitors of the
    served environment (`efimero rollout start`); the rollout's rounds then run as usual."""
    return await act(sources, holder, lambda: actions.start_rollout(sources, body, public=holder.public))


@router.post("/rollout/abort", response_model=RolloutView, summary="Abort the running rollout")
async def abort_rollout(body: AbortRollout, sources: Sources, holder: Holder) -> RolloutView:
    """Every visitor back on the live version; the reason is kept in the timeline (`efimero rollout abort`)."""
    return await act(sources, holder, lambda: actions.abort_rollout(sources, body.reason, public=holder.public))


@router.post("/rollback", response_model=DeploymentView, summary="Roll the served environment back")
async def rollback(body: Rollback, sources: Sources, holder: Holder) -> DeploymentView:
    """Point the served environment at its previous version (or ``to``), verified and smoke-tested first
    (`efimero rollback`). Refused while a rollout runs: abort it instead."""
    return await act(sources, holder, lambda: actions.rollback(sources, body.to, public=holder.public))


@router.post("/experiment/stop", response_model=ExperimentView, summary="Stop the running experiment",
             responses={404: {"description": "No experiment is running"}})
async def stop_experiment(body: StopExperiment, sources: Sources, holder: Holder) -> ExperimentView:
    """Every visitor back on the control; the final readout is kept with the reason (`efimero experiment stop`)."""
    return await act(sources, holder, lambda: actions.stop_experiment(sources, body.reason, body.clock,
                                                                      public=holder.public))
