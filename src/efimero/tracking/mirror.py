"""The registry mirror: MLflow aliases follow efimero's deployments, efimero's registry stays the truth.

A deployment, a rollout that completes and a rollback call :func:`mirror_alias` once the target
serves the version: the registered model version of that efimero version (registered now, in a
``register`` run, when its training run could not) gets the alias named after the target
(``staging``, ``production``): aliases, not the stages MLflow deprecated in 2.9.

A mirror that fails never fails the deployment. The wish is kept in ``mlflow_pending.json`` in
the target's registry (the newest per alias) and retried at the next mirror call on that target;
the deployment record shows the failure as a step that did not block it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from efimero._io import atomic_write_json
from efimero.config import TrackingSettings
from efimero.errors import EfimeroError
from efimero.tracking._run import missing_mlflow, tracking_settings

logger = logging.getLogger(__name__)

PENDING_FILE = "mlflow_pending.json"
"""Alias moves that failed, newest per alias: ``{"production": {"version", "since", "attempts", "error"}}``."""


@dataclass(frozen=True)
class MirrorOutcome:
    """What a mirror call did: whether every alias now names its version, and a line for the record."""

    ok: bool
    detail: str


def mirror_alias(target_root: Path, alias: str, version: str) -> MirrorOutcome | None:
    """Point ``alias`` at the registered version of ``version`` (and retry the target's pending moves).

    Never raises: a failure is returned (and kept in :data:`PENDING_FILE`), so the caller can
    record it without failing what it mirrors.

    Returns:
        None when no tracking URI is configured (nothing is imported or written), else the outcome.

    Example:
        >>> mirror_alias(Path("models/prod"), "production", "v_20261125_153000")  # doctest: +SKIP
        MirrorOutcome(ok=True, detail='production → efimero-css version 3 (v_20261125_153000)')
    """
    try:
        settings = tracking_settings()
    except EfimeroError as exc:
        return MirrorOutcome(False, f"not mirrored: {exc}")
    if settings.uri is None:
        return None
    path = target_root / PENDING_FILE
    wishes = _pending(path)
    wishes[alias] = {"version": version, "since": datetime.now(UTC).isoformat(timespec="seconds"), "attempts": 0}
    done: list[str] = []
    failed: dict[str, dict[str, Any]] = {}
    for name, wish in wishes.items():
        try:
            number = _point(settings, target_root / wish["version"], name)
            done.append(f"{name} → {settings.model_name} version {number} ({wish['version']})")
        except Exception as exc:  # whatever the cause (server, network, a bug, no mlflow): never fail a deploy
            if not isinstance(exc, EfimeroError):
                logger.exception("mirroring %s → %s failed", name, wish["version"])
            failed[name] = wish | {"attempts": wish["attempts"] + 1, "error": str(exc).strip()[:500]}
    if failed:
        atomic_write_json(path, failed)
    else:
        path.unlink(missing_ok=True)
    notes = [f"{name} not moved to {wish['version']} ({wish['error']}); kept in {PENDING_FILE}, retried at the next "
             "deploy or rollback of this target" for name, wish in failed.items()]
    return MirrorOutcome(not failed, "; ".join(done + notes))


def _pending(path: Path) -> dict[str, dict[str, Any]]:
    """The pending alias moves of a target; an unreadable file is logged and started afresh."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        logger.error("%s cannot be read (%s); its pending alias moves are dropped", path, exc)
        return {}
    return {alias: wish for alias, wish in content.items() if isinstance(wish, dict) and "version" in wish}


def _point(settings: TrackingSettings, version_dir: Path, alias: str) -> str:
    """Register ``version_dir`` when needed and point ``alias`` at it; the registered version number."""
    try:
        from efimero.tracking._mlflow import FAILURES, connect, ensure_registered, unreachable
    except ImportError as exc:
        raise missing_mlflow(exc) from exc
    connection = connect(settings)
    try:
        model_version = ensure_registered(connection, version_dir)
        connection.client.set_registered_model_alias(connection.model_name, alias, model_version.version)
    except FAILURES as exc:
        raise unreachable(connection.uri, exc) from exc
    return str(model_version.version)
