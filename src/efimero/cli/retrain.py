"""`efimero collect`, `efimero retrain incremental|full`, `efimero auto-retrain`."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from efimero.cli import _engine
from efimero.cli._common import JSON_HELP, console, emit_json, reports_errors
from efimero.cli._tracking import tracked
from efimero.errors import ConfigError

if TYPE_CHECKING:
    from efimero.retrain import RetrainResult

app = typer.Typer(help="Retrain the live models on new data.", no_args_is_help=True)


@reports_errors
def collect(
    start_date: datetime = typer.Option(None, formats=["%Y-%m-%d"], help="First day (UTC) to collect."),
    end_date: datetime = typer.Option(None, formats=["%Y-%m-%d"], help="Last day (UTC, inclusive)."),
    days_back: int = typer.Option(7, min=1, help="Without dates: the days up to the newest visit in the store."),
    min_session_duration: int = typer.Option(10_000, min=0, help="Ignore shorter sessions (ms)."),
    db: str = typer.Option("sqlite:///data/efimero.db", help="Interaction store URL."),
    output: Path = typer.Option(Path("data/production_data.csv"), help="Training file to write (.csv/.json/.parquet)."),
    validate: bool = typer.Option(False, "--validate",
                                  help="Drift of every session against --reference: proceed / caution / abort."),
    reference: list[Path] | None = typer.Option(
        None, "--reference", help="Training data of the live model (repeat for several files). "
        "\\[default: every training file of --models' live version]"),
    models: Path = typer.Option(Path("models"), help="Registry whose live version gives the style tokens of the "
                                "rows, the reference and the feature importance that weighs the drift share."),
    export_metadata: bool = typer.Option(False, "--export-metadata", help="Also write <output>_metadata.json."),
    labels: str = typer.Option("heuristic", help="heuristic: targets from behaviour rules (the guidelines'); "
                               "reward: the served labels of every logged decision, each class head weighted by "
                               "reward / propensity (learns from what visitors did; needs logged decisions)."),
    config: Path = typer.Option(None, help="Retraining YAML whose retraining.bandit.reward scores sessions "
                                "(--labels reward). \\[default: retraining.yaml in $EFIMERO_CONFIG_DIR, else config/]"),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Training rows from logged sessions: features recomputed, targets from behaviour (or rewards), quality checked."""
    from efimero.cli.drift import live_version
    from efimero.collect import collect as run_collect
    from efimero.config import load_retraining_config
    from efimero.css import DEFAULT_TOKENS, tokens_of
    from efimero.monitor.drift import choose_reference
    from efimero.registry import Registry

    if labels not in ("heuristic", "reward"):
        raise ConfigError(f"--labels must be heuristic or reward. Got {labels!r} instead.")
    chosen = choose_reference(reference or [], live_version(models)) if validate else None
    registry = Registry(models)  # the tokens are in the live version's metadata: no model needs loading for them
    tokens = tokens_of(registry.info().metadata) if registry.current() is not None else DEFAULT_TOKENS
    reward = load_retraining_config(config).retraining.bandit.reward
    result = run_collect(db, start_date=start_date.date() if start_date else None,
                         end_date=end_date.date() if end_date else None, days_back=days_back,
                         min_session_duration_ms=min_session_duration, output=output, validate=validate,
                         export_metadata=export_metadata, reference=chosen, labels=labels,  # type: ignore[arg-type]
                         reward=reward, tokens=tokens)
    if json_output:
        emit_json(result.to_dict())
        return
    quality = result.quality
    console.print(f"[green]✓[/] {len(result.frame)} training rows from {quality.total} logs "
                  f"({result.start:%Y-%m-%d %H:%M} to {result.end:%Y-%m-%d %H:%M} UTC) → {result.output}")
    if result.labels == "reward":
        console.print(f"  labels: served labels weighted by reward {result.reward_version} / propensity; "
                      f"{result.pending_rewards} decision(s) still inside the reward wait window", highlight=False)
    console.print(f"  sessions: {result.statuses}; online accuracy "
                  f"{result.online_accuracy if result.online_accuracy is None else f'{result.online_accuracy:.3f}'}")
    console.print(f"  valid logs {quality.valid}, invalid {quality.invalid}: {dict(quality.reasons) or 'no problems'}")
    colour = {"proceed": "green", "caution": "yellow", "abort": "red"}[quality.recommendation]
    if result.drift is not None:
        drifted = ", ".join(quality.drifted_features) or "none drifted"
        console.print(f"  {result.drift.share_text} over {result.drift.current_rows} sessions ({drifted}) → "
                      f"[{colour}]{quality.recommendation}[/]", highlight=False)
    elif quality.drift_not_run:
        console.print(f"  drift not checked: {escape(quality.drift_not_run)} → [{colour}]{quality.recommendation}[/]",
                      highlight=False)


def _show(result: RetrainResult, json_output: bool) -> None:
    if json_output:
        emit_json(result.to_dict())
        return
    colour = "green" if result.status == "success" else "yellow"
    console.print(f"[{colour}]{result.status}[/] ({result.strategy}): {result.reason}")
    if result.version:
        console.print(f"  new version {result.version} (parent {result.parent_version})")
    for name, value in result.scores.items():
        console.print(f"  {name}: {value}", highlight=False)


@app.command()
@reports_errors
@tracked("retrain-incremental")
def incremental(
    data: list[Path] = typer.Option(..., help="New training rows (repeat for several files)."),
    models: Path = typer.Option(Path("models"), help="Registry whose live version is updated."),
    min_samples: int = typer.Option(100, min=1, help="Skip with fewer new rows."),
    validation_split: float = typer.Option(
        0.2, min=0.05, max=0.9, help="Share of new rows held out to judge the update."),
    max_new_trees: int = typer.Option(20, min=1, help="Trees added per model."),
    learning_rate_factor: float = typer.Option(0.8, min=0.01, max=1.0, help="Scale of the original learning rate."),
    min_improvement: float = typer.Option(0.01, min=0.0, help="Relative gain needed to save a version."),
    backup_current: bool = typer.Option(False, "--backup-current", help="Back up the live version first."),
    engine: _engine.Engine = _engine.engine("append the trees with xgboost.dask (xgb_model=)"),
    scheduler: str = _engine.scheduler(),
    workers: int = _engine.workers(),
    worker_memory: str = _engine.worker_memory(),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Continue boosting the live models on new data; keep the update only if it is better."""
    from efimero.config import IncrementalParameters
    from efimero.retrain import incremental as run_incremental

    settings = IncrementalParameters(min_samples=min_samples, validation_split=validation_split,
                                     max_new_trees=max_new_trees, learning_rate_factor=learning_rate_factor,
                                     min_improvement_threshold=min_improvement)
    _show(run_incremental(data, models=models, settings=settings, backup_current=backup_current,
                          engine=_engine.dask_engine(engine, scheduler, workers, worker_memory)), json_output)


@app.command("full")
@reports_errors
@tracked("retrain-full")
def full_retrain(
    data: list[Path] = typer.Option(..., help="Training files (or Parquet directories), combined (repeat --data)."),
    output: Path = typer.Option(Path("models"), help="Registry to add the version to."),
    tune_hyperparams: bool = typer.Option(False, "--tune-hyperparams", help="Search hyperparameters by CV."),
    cv_folds: int = typer.Option(None, min=0, help="CV folds; 0 skips CV. \\[default: training.data.cv_folds, 5]"),
    compare_with_current: bool = typer.Option(
        True, "--compare-with-current/--no-compare", help="Promote only if significantly better."),
    deploy_if_better: bool = typer.Option(False, "--deploy-if-better", help="Deploy a better version to --target."),
    target: str = typer.Option("staging", help="Environment for --deploy-if-better."),
    engine: _engine.Engine = _engine.engine(
        "xgboost.dask (no CV, no tuning) over the --data inputs: one data file or Parquet directory, or several "
        "Parquet directories and .parquet files"),
    scheduler: str = _engine.scheduler(),
    workers: int = _engine.workers(),
    worker_memory: str = _engine.worker_memory(),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Retrain from scratch on the combined data; compare with the live version; promote only if better."""
    from efimero.config import load_training_config
    from efimero.pipeline import deploy_retrained
    from efimero.retrain import full

    data_settings: dict[str, Any] = {"allow_duplicates": True} | ({} if cv_folds is None else {"cv_folds": cv_folds})
    config = load_training_config(overrides={"training": {"data": data_settings}})
    result = full(data, output=output, config=config, tune_hyperparams=tune_hyperparams,
                  compare_with_current=compare_with_current,
                  engine=_engine.dask_engine(engine, scheduler, workers, worker_memory))
    if deploy_if_better:
        result = deploy_retrained(result, models=output, target=target)
    _show(result, json_output)


_STATUS_STYLE = {"fired": "[red]fired[/]", "not_fired": "not fired", "not_run": "[yellow]NOT RUN[/]",
                 "disabled": "[dim]disabled[/]"}


class Mode(StrEnum):
    check = "check"
    force = "force"
    scheduled = "scheduled"


@reports_errors
@tracked("auto-retrain")
def auto_retrain(
    mode: Mode = typer.Option(
        Mode.check, help="check: report triggers; force: retrain now; scheduled: retrain if a trigger fired."),
    config: Path = typer.Option(None, help="Retraining YAML. "
                                "\\[default: retraining.yaml in $EFIMERO_CONFIG_DIR, else config/, when present]"),
    db: str = typer.Option(None, help="Interaction store URL. \\[default: data_collection.db_url of the config]"),
    auto_deploy: bool = typer.Option(None, "--auto-deploy/--no-auto-deploy", help="[default: deployment.auto_deploy]"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Evaluate triggers and strategy only; write nothing."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Triggers → strategy → collect → validate → retrain → validate → deploy; every run recorded."""
    from efimero.config import load_retraining_config
    from efimero.pipeline import auto_retrain as run_auto

    overrides: dict = {"retraining": {}}
    if db:
        overrides["retraining"]["data_collection"] = {"db_url": db}
    if auto_deploy is not None:
        overrides["retraining"]["deployment"] = {"auto_deploy": auto_deploy}
    run = run_auto(load_retraining_config(config, overrides=overrides), mode=mode.value, dry_run=dry_run)
    if json_output:
        emit_json(run.to_dict())
    else:
        table = Table(title=f"Triggers (live {run.live_version})")
        for column in ("trigger", "status", "value", "threshold", "detail"):
            table.add_column(column)
        for t in run.triggers:
            value = "—" if t["value"] is None else f"{t['value']:.3g}"
            threshold = "—" if t["threshold"] is None else f"{t['threshold']:.3g}"
            table.add_row(t["name"], _STATUS_STYLE[t["status"]], value, threshold, escape(t["detail"]))
        console.print(table)
        if run.readiness is not None:
            ready = run.readiness
            console.print(f"readiness: {'ready' if ready['ready'] else 'not ready'} ({ready['judged_sessions']} new "
                          f"judged sessions of {ready['min_sessions']} needed, quality {ready['quality']})"
                          + "".join(f"; {escape(reason)}" for reason in ready["reasons"]), highlight=False)
        for item in run.stages:
            details = {k: v for k, v in item.items() if k not in ("stage", "seconds", "quality", "log")}
            console.print(f"  {item['stage']}: {item['seconds']:.1f} s {details}", highlight=False)
        colour = {"success": "green", "failed": "red"}.get(run.outcome, "yellow")
        console.print(f"decision: {run.decision}\noutcome: [{colour}]{run.outcome}[/]"
                      + (f" → {run.new_version}" if run.new_version else "")
                      + (f"\nerror: {run.error}" if run.error else ""))
    if run.outcome == "failed":
        raise typer.Exit(1)
