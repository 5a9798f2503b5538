"""`efimero serve`: the prediction API, the interaction log and the demo page."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from efimero.cli._common import console, reports_errors


@reports_errors
def serve(
    models: Path = typer.Option(Path("models"), help="Registry whose current version is served (followed live)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    db: str = typer.Option("sqlite:///data/efimero.db", help="Interaction store URL (SQLite or postgresql://...)."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    poll_interval: float = typer.Option(1.0, min=0.05, help="Seconds between checks of the live pointer."),
    access_log: bool = typer.Option(True, help="One log line per request (no payloads)."),
) -> None:
    """Serve /v1/predict, /v1/interactions, /v1/model, /healthz, /readyz, /metrics and the demo page at /."""
    import uvicorn

    from efimero.registry import Registry
    from efimero.serve.settings import ServeSettings, settings_to_env
    from efimero.store import open_engine

    settings = ServeSettings(models_dir=models, db_url=db, poll_interval_s=poll_interval)
    version = Registry(models).resolve()  # fail now, with a message, rather than in a worker
    open_engine(db).dispose()
    os.environ.update(settings_to_env(settings))
    console.print(f"serving [bold]{version}[/] from {models} on http://{host}:{port}/ (docs at /docs), store {db}")
    uvicorn.run(
        "efimero.serve.app:app_from_env", factory=True, host=host, port=port, workers=workers,
        access_log=access_log, log_level="info",
    )
