"""`efimero serve`: the prediction API, the interaction log, the demo page and any use cases (`--usecase`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from efimero.cli._common import console, err_console, given, reports_errors
from efimero.cli._tracking import tracked

if TYPE_CHECKING:
    from efimero.serve.settings import ServeSettings
    from efimero.tracking.source import AliasSync


@reports_errors
@tracked()
def serve(
    ctx: typer.Context,
    models: Path = typer.Option(Path("models"), help="Registry whose current version is served (followed live), or "
                                "an MLflow alias, models:/<registered model>@<alias> (followed live too)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port."),
    db: str = typer.Option("sqlite:///data/efimero.db", help="Interaction store URL (SQLite or postgresql://...)."),
    workers: int = typer.Option(1, min=1, help="Worker processes: they share the store, verify each other's ids, "
                                "each follow the registry, and /metrics sums them (Prometheus multiprocess mode)."),
    poll_interval: float = typer.Option(1.0, min=0.05, help="Seconds between checks of the live pointer."),
    verify_interval: float = typer.Option(60.0, min=0.05, help="Seconds between checksum checks of the served files."),
    access_log: bool = typer.Option(True, help="One log line per request (no payloads)."),
    rate_limit: str | None = typer.Option(None, help="Per-client limit on /v1/predict*, /v1/interactions, "
                                                     "e.g. '100/minute'. Off when unset."),
    rate_limit_storage: str = typer.Option("memory://", help="Rate-limit counters: memory:// (per worker) or "
                                           "redis://host:port/db (shared by every worker)."),
    feature_store: str | None = typer.Option(
        None, help="Keep the visitors' history server-side, per hashed visitor id: redis://host:6379/0 "
        "(?ttl_days=180&timeout_ms=50&breaker_s=5). It wins over the client's; if Redis fails, the client's is used. "
        "Off when unset: the client's localStorage history only."),
    body_timeout: float = typer.Option(
        10.0, min=0.1, help="Seconds a client may take to send a request body (then 408)."),
    keep_alive_timeout: int = typer.Option(5, min=1, help="Seconds an idle keep-alive connection stays open."),
    commit_timeout: float = typer.Option(5.0, min=0.1, help="Seconds an interaction waits for its commit (then 503)."),
    monitor_interval: float = typer.Option(
        60.0, min=0, help="Seconds between monitoring rounds (anomaly rules on the last complete window, alerts "
        "stored and sent to the webhook); 0 turns the loop off."),
    monitor_clock: str = typer.Option("wall", help="Monitoring windows on the wall clock, or on the store's newest "
                                      "visit (store: simulated traffic)."),
    retraining_config: Path | None = typer.Option(None, help="retraining.yaml with the monitoring rules "
                                                  "\\[default: retraining.yaml in $EFIMERO_CONFIG_DIR, else config/, "
                                                  "when present]"),
    pepper_file: Path | None = typer.Option(None, help="User-id pepper file, created if missing "
                                     "($EFIMERO_USER_ID_PEPPER wins; default: beside a SQLite store, else "
                                     "data/user_id_pepper). Every host needs the same one."),
    mlflow_cache: Path | None = typer.Option(
        None, help="With --models models:/<name>@<alias>: the local registry that holds the versions downloaded "
        "from MLflow, verified. \\[default: models/mlflow/<name>@<alias>]"),
    usecase: list[str] | None = typer.Option(
        None, "--usecase", metavar="KEY", help="Also serve this use case's production version at POST "
        "/v1/usecases/KEY/predict (and /predict/batch), with its own request schema; repeat for several. Without a "
        "CSS model in --models, only the use cases answer."),
    usecases_models: Path = typer.Option(Path("models/usecases"), help="Use-case registry to serve --usecase from "
                                         "(as `efimero usecase train --models`)."),
) -> None:
    """Serve /v1/predict, /v1/interactions, /v1/model, /healthz, /readyz, /metrics, the demo page at /, and
    /v1/usecases/KEY/predict for each --usecase.

    A flag given wins over its EFIMERO_SERVE_* variable (EFIMERO_SERVE_DB_URL, ...), which wins over the default.
    With --models models:/<name>@<alias>, a thread keeps a local registry on the version the alias
    names (downloaded once, checked against its checksums) and the service hot-swaps when it moves.
    """
    import uvicorn

    from efimero.serve.settings import load_serve_settings
    from efimero.store import load_pepper, open_engine

    settings = load_serve_settings(given(
        ctx, models_dir="models", db_url="db", poll_interval_s="poll_interval", verify_interval_s="verify_interval",
        rate_limit="rate_limit", rate_limit_storage="rate_limit_storage", feature_store="feature_store",
        body_timeout_s="body_timeout",
        keep_alive_timeout_s="keep_alive_timeout", commit_timeout_s="commit_timeout", user_id_pepper_file="pepper_file",
        monitor_interval_s="monitor_interval", monitor_clock="monitor_clock", retraining_config="retraining_config",
        usecases="usecase", usecases_models_dir="usecases_models",
    ))
    served = _check_usecases(settings)  # fail now, with a message, rather than in a worker
    sync = _follow_alias(settings, mlflow_cache)
    if sync is not None:  # the workers serve the local registry that the sync keeps on the alias
        settings = settings.model_copy(update={"models_dir": sync.cache.root})
    version = _css_version(settings, serving_usecases=bool(served))
    open_engine(settings.db_url).dispose()  # create or migrate the schema once, before the workers start
    load_pepper(settings.pepper_file, create=True)  # one pepper for every worker
    os.environ.update(settings.to_environ())  # the workers' settings: they inherit the environment
    what = f"[bold]{version}[/] from {settings.models_dir}" if version else "no CSS model"
    console.print(f"serving {what} on http://{host}:{port}/ (docs at /docs), store {settings.db_url}"
                  + (f", {workers} workers" if workers > 1 else ""))
    for line in served:
        console.print(f"serving use case {line}")
    try:
        with _shared_metrics(workers):
            uvicorn.run(
                "efimero.serve.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                access_log=access_log, log_level="info", timeout_keep_alive=settings.keep_alive_timeout_s,
            )
    finally:
        if sync is not None:
            sync.stop()


def _check_usecases(settings: ServeSettings) -> list[str]:
    """One line per use case to serve (key, version, algorithm, route); raises if one has no production version."""
    if not settings.usecases:
        return []
    from efimero.serve.usecases import resolve_usecases

    served = resolve_usecases(settings.usecases_models_dir, settings.usecases, max_batch=settings.usecase_max_batch)
    return [f"[bold]{case.key}[/] {case.entry['version']} ({case.entry['algorithm']}) from "
            f"{escape(str(settings.usecases_models_dir))} at POST {case.path}" for case in served]


def _css_version(settings: ServeSettings, *, serving_usecases: bool) -> str | None:
    """The CSS registry's current version; None, with a warning, when it has none and use cases are served."""
    from efimero.errors import VersionNotFoundError
    from efimero.registry import Registry

    try:
        return Registry(settings.models_dir).resolve()
    except VersionNotFoundError as exc:
        if not serving_usecases:
            raise
        err_console.print(f"[yellow]no CSS model:[/] {escape(str(exc))} /v1/predict answers 503 and /readyz "
                          "'not ready' until one is trained; the use cases are served.", highlight=False)
        return None


@contextmanager
def _shared_metrics(workers: int) -> Iterator[None]:
    """With several workers, a fresh folder for their Prometheus values (multiprocess mode), removed at the end.

    A folder the user named in $PROMETHEUS_MULTIPROC_DIR is used instead and emptied first:
    values left by an earlier run would be added to this one's.
    """
    from efimero.serve.metrics import MULTIPROCESS_DIR_VARIABLE

    if workers == 1:
        yield
        return
    given_dir = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
    folder = Path(given_dir) if given_dir else Path(tempfile.mkdtemp(prefix="efimero-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROCESS_DIR_VARIABLE] = str(folder)
    try:
        yield
    finally:
        if not given_dir:
            shutil.rmtree(folder, ignore_errors=True)


def _follow_alias(settings: ServeSettings, cache: Path | None) -> AliasSync | None:
    """For ``--models models:/<name>@<alias>``: a started sync of the alias into a local registry, else None.

    It runs in this process, beside uvicorn (the supervisor of ``--workers N``), so one sync
    serves every worker; mlflow is imported only here, never for a local registry.
    """
    from efimero.tracking import tracking_settings
    from efimero.tracking.source import AliasSource, AliasSync

    source = AliasSource.parse(str(settings.models_dir))
    if source is None:
        return None
    sync = AliasSync(source, cache or Path("models") / "mlflow" / f"{source.name}@{source.alias}",
                     tracking_settings(), poll_interval_s=settings.poll_interval_s)
    sync.start()
    return sync
