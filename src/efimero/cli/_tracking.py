"""``--mlflow-uri`` on the commands that track or mirror, added by one decorator."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

import typer

F = TypeVar("F", bound=Callable[..., Any])

MLFLOW_URI_HELP = ("MLflow tracking URI (http://127.0.0.1:5000). \\[default: $EFIMERO_TRACKING__URI, "
                   "$MLFLOW_TRACKING_URI or tracking.uri of tracking.yaml; none: nothing is tracked]")
_NOT_LOGGED = {"ctx", "json_output"}
_URL_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^/\s]*@")


def loggable(value: Any) -> Any:
    """A flag's value as a run parameter: URLs (--db, --study-storage) without their password."""
    return _URL_PASSWORD.sub(r"\1***@", value) if isinstance(value, str) else value


def tracked(run: str | None = None) -> Callable[[F], F]:
    """Add ``--mlflow-uri`` to a command; with ``run``, the command is one MLflow run of that name.

    The run opens before the command does anything, so an unreachable server stops it at once
    (a :class:`~efimero.errors.TrackingError`, which ``reports_errors`` prints), and its
    parameters are the command's flags (``cli.<flag>``). Without ``run`` the command only gets
    the URI, for the registry mirror (deploy, rollback, rollout) or an alias to serve.
    Put it below ``@reports_errors``.
    """

    def decorate(command: F) -> F:
        signature = inspect.signature(command)
        option = inspect.Parameter(
            "mlflow_uri", inspect.Parameter.KEYWORD_ONLY, annotation=str | None,
            default=typer.Option(None, "--mlflow-uri", help=MLFLOW_URI_HELP),
        )

        @functools.wraps(command)
        def wrapper(*args: Any, mlflow_uri: str | None = None, **kwargs: Any) -> Any:
            from efimero import tracking

            with tracking.tracking_to(mlflow_uri):
                if run is None:
                    return command(*args, **kwargs)
                flags = {f"cli.{name}": loggable(value) for name, value in kwargs.items() if name not in _NOT_LOGGED}
                with tracking.run(run, params=flags):
                    return command(*args, **kwargs)

        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), option])
        return cast(F, wrapper)

    return decorate
