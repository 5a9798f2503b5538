"""`efimero train`: train, evaluate and register a new model version."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from efimero.cli import _engine
from efimero.cli._common import JSON_HELP, TOKENS_HELP, console, emit_json, progress_bar, reports_errors, style_tokens
from efimero.cli._tracking import tracked

if TYPE_CHECKING:
    from efimero.training import TuningResult


class Tuner(StrEnum):
    grid = "grid"
    optuna = "optuna"


def _overrides(**flags: Any) -> dict[str, Any]:
    """Nested config overrides from the CLI flags that were given (None = not given)."""
    paths = {
        "cv_folds": ("training", "data", "cv_folds"),
        "test_size": ("training", "data", "test_size"),
        "random_state": ("training", "data", "random_state"),
        "n_jobs": ("training", "n_jobs"),
        "device": ("training", "device"),
        "tuner": ("training", "tuning", "method"),
        "n_trials": ("training", "tuning", "n_trials"),
        "study_storage": ("training", "tuning", "storage"),
    }
    overrides: dict[str, Any] = {}
    for flag, value in flags.items():
        if value is None:
            continue
        node = overrides
        *parents, leaf = paths[flag]
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return overrides


def metrics_tables(metrics: dict[str, Any]) -> list[Table]:
    """Rich tables of test metrics: class targets beside their baselines, then regression."""
    cv = metrics.get("cv", {})
    classes = Table(title="Class targets (test set)")
    for column in ("target", "accuracy", "majority baseline", "macro-F1", "log-loss", "CV accuracy"):
        classes.add_column(column, justify="left" if column == "target" else "right")
    for target, values in metrics["classification"].items():
        cv_acc = cv.get(target, {}).get("accuracy")
        classes.add_row(
            target, f"{values['accuracy']:.3f}", f"{values['baseline_accuracy']:.3f}",
            f"{values['macro_f1']:.3f}", f"{values['log_loss']:.3f}",
            f"{cv_acc['mean']:.3f} ± {cv_acc['std']:.3f}" if cv_acc else "—",
        )
    regression = Table(title="Regression targets (test set)")
    for column in ("target", "RMSE", "MAE", "R²"):
        regression.add_column(column, justify="left" if column == "target" else "right")
    for target, values in metrics["regression"].items():
        regression.add_row(target, f"{values['rmse']:.4g}", f"{values['mae']:.4g}", f"{values['r2']:.3f}")
    cv_r2 = next((v["r2"] for v in cv.values() if "r2" in v), None)
    if cv_r2:
        regression.caption = f"CV mean R² over targets: {cv_r2['mean']:.3f} ± {cv_r2['std']:.3f}"
    return [classes, regression]


def tuning_lines(tuning: dict[str, TuningResult]) -> list[str]:
    """Per tuned model: where its Optuna study is stored, trials resumed, run and pruned, and the latency choice."""
    lines = []
    for name, result in tuning.items():
        study = result.study
        if study is None:
            continue
        where = f"in {escape(study.storage)}" if study.storage else "in memory (not resumable)"
        line = (f"[bold]{name}[/]: study {study.name} {where} — {study.resumed} of {study.n_trials} trials resumed, "
                f"{study.ran} run, {study.pruned} pruned")
        if result.best_latency_ms is not None:
            line += f"; chosen trial predicts a row in {result.best_latency_ms:.3f} ms"
            if result.latency_budget_ms is not None:
                line += f" (budget {result.latency_budget_ms:g} ms)"
            line += f", {len(result.pareto_front)} on the Pareto front"
        lines.append(line)
        if result.note:
            lines.append(f"  [yellow]![/] {escape(result.note)}")
    return lines


@reports_errors
@tracked("train")
def train(
    data: Path = typer.Option(..., help="Training data (.csv, .json or .parquet), or a directory of Parquet part "
                              "files."),
    output: Path = typer.Option(None, help="Registry directory. \\[default: registry.model_dir of the config, models]"),
    tune_hyperparams: bool = typer.Option(False, "--tune-hyperparams", help="Search hyperparameters by k-fold CV."),
    tuner: Tuner = typer.Option(None, help="Search method. \\[default: training.tuning.method, grid]"),
    n_trials: int = typer.Option(
        None, min=1, help="Optuna trials per model: a resumed study runs only the missing ones. "
        "\\[default: training.tuning.n_trials, 50]"),
    study_storage: str = typer.Option(
        None, help="SQLAlchemy URL where Optuna studies persist, so rerunning the command resumes them; none keeps "
        "them in memory. \\[default: training.tuning.storage, sqlite:///data/efimero.db]"),
    cv_folds: int = typer.Option(None, min=0, help="CV folds; 0 skips CV. \\[default: training.data.cv_folds, 5]"),
    test_size: float = typer.Option(
        None, min=0.01, max=0.99, help="Test share. \\[default: training.data.test_size, 0.2]"),
    random_state: int = typer.Option(
        None, help="Seed of splits and models. \\[default: training.data.random_state, 42]"),
    gpu: bool = typer.Option(False, "--gpu", help="Train on a CUDA GPU (XGBoost device='cuda')."),
    n_jobs: int = typer.Option(None, help="Threads per model, -1 for all cores. \\[default: training.n_jobs, -1]"),
    engine: _engine.Engine = _engine.engine(
        "xgboost.dask over the data's partitions (a directory of Parquet part files)"),
    scheduler: str = _engine.scheduler(),
    workers: int = _engine.workers(),
    worker_memory: str = _engine.worker_memory(),
    config: Path = typer.Option(None, help="Training config YAML. "
                                "\\[default: training.yaml in $EFIMERO_CONFIG_DIR, else config/, when present]"),
    tokens: Path = typer.Option(None, help=TOKENS_HELP + "; the version carries them"),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Train one XGBoost classifier per CSS class group and one multi-output regressor of the CSS variables;
    register the version."""
    from efimero._api import train as train_version
    from efimero.config import load_training_config
    from efimero.training import total_steps
    from efimero.training._dask import dask_steps

    overrides = _overrides(
        cv_folds=cv_folds, test_size=test_size, random_state=random_state, n_jobs=n_jobs,
        device="cuda" if gpu else None, tuner=tuner.value if tuner else None, n_trials=n_trials,
        study_storage=study_storage,
    )
    cfg = load_training_config(config, overrides=overrides)
    on_dask = _engine.dask_engine(engine, scheduler, workers, worker_memory)
    site_tokens = style_tokens(tokens)
    steps = (dask_steps(site_tokens.task) if on_dask else
             total_steps(site_tokens.task, cfg.training, tune_hyperparams=tune_hyperparams))
    tuning = cfg.training.tuning
    if tune_hyperparams and tuning.method == "optuna" and not json_output:
        where = tuning.model_dump(mode="json")["storage"]  # password hidden
        console.print(f"Optuna studies in {escape(where)}: rerunning this command resumes them."
                      if where else "Optuna studies in memory: an interrupted run starts over.")
    with progress_bar(steps, quiet=json_output) as advance:
        run = train_version(data, output=output, config=cfg, tune_hyperparams=tune_hyperparams, progress=advance,
                            engine=on_dask, tokens=site_tokens)
    result = run.result
    if json_output:
        emit_json({"version": run.version, "models_dir": str(run.models_dir), "metrics": result.metrics,
                   "hyperparameters": result.hyperparameters, "rows": result.n_rows,
                   "tuning": {name: t.to_dict() for name, t in result.tuning.items()},
                   "training_duration_s": result.duration_s})
        return
    for table in metrics_tables(result.metrics):
        console.print(table)
    for line in tuning_lines(result.tuning):
        console.print(line)
    summary = result.metrics["summary"]
    console.print(
        f"[green]✓[/] version [bold]{run.version}[/] saved in {run.models_dir} and set current — "
        f"mean accuracy {summary['mean_accuracy']:.3f}, mean R² {summary['mean_r2']:.3f}, "
        f"{result.n_rows['total']} rows, {result.duration_s:.1f} s"
    )
