"""`efimero usecase train|list|promote|generate-examples`: use cases declared in YAML, trained and registered."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from efimero.cli._common import JSON_HELP, console, emit_json, err_console, reports_errors
from efimero.errors import ConfigError, EfimeroError

if TYPE_CHECKING:
    from efimero.usecases import TrainResult, UseCaseSpec

app = typer.Typer(help="Use cases declared in usecases/<key>.yaml: train many algorithms, keep the best, gate, "
                  "register, promote.", no_args_is_help=True)

DIR_HELP = "Folder of the use-case YAML files (<key>.yaml)."
MODELS_HELP = "Root of the use-case registry (one folder per use case)."
REFUSED_EXIT = 1
"""Exit code of `train` when a model is refused by its gate (or a use case of --all fails)."""


def _paths(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if not p.name.endswith(".inferred.yaml"))


def _path(directory: Path, key: str) -> Path:
    path = directory / f"{key}.yaml"
    if not path.is_file():
        known = ", ".join(p.stem for p in _paths(directory)[:10]) or "none"
        raise ConfigError(f"{path}: no such use case. Use cases in {directory}: {known}.")
    return path


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


@app.command()
@reports_errors
def train(
    key: str | None = typer.Argument(None, help="The use case (usecases/<KEY>.yaml); leave out with --all."),
    all_: bool = typer.Option(False, "--all", help="Train every use case of --dir, one progress bar each."),
    algorithms: str | None = typer.Option(None, help="Comma-separated algorithms to train (default: the YAML's "
                                          "list, else every algorithm for the task)."),
    directory: Path = typer.Option(Path("usecases"), "--dir", help=DIR_HELP),
    models: Path = typer.Option(Path("models/usecases"), help=MODELS_HELP),
    seed: int | None = typer.Option(None, help="Seed of split, folds and models (default: the YAML's split.seed)."),
    n_jobs: int = typer.Option(1, "--n-jobs", min=-1, help="Threads per model (-1: all cores)."),
    promote: bool = typer.Option(False, help="Make the new version production when it passes its gate."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Train every algorithm of a use case, keep the best on the validation split, gate it on the test split.

    The version is stored under --models/<KEY>/v_YYYYMMDD_HHMMSS/ with status candidate, or refused
    (exit code 1) when a metric is below the gate, which is named.
    """
    from efimero.usecases import UseCaseRegistry, train_usecase

    if all_ == (key is not None):
        raise ConfigError("train takes a KEY or --all, not both and not neither.")
    only = [name.strip() for name in algorithms.split(",") if name.strip()] if algorithms else None
    if not all_:
        assert key is not None
        with err_console.status(f"training {key}…", spinner="dots") if not json_output else nullcontext():
            result = train_usecase(_path(directory, key), algorithms=only, seed=seed, models=models, n_jobs=n_jobs)
        if promote and result.passed:
            UseCaseRegistry(models).promote(result.key, result.entry["directory"])
            result.entry["status"] = "production"
        emit_json(result.to_dict()) if json_output else _show(result)
        if not result.passed:
            raise typer.Exit(REFUSED_EXIT)
        return
    rows = _train_all(_paths(directory), only=only, seed=seed, models=models, n_jobs=n_jobs, promote=promote,
                      quiet=json_output)
    if json_output:
        emit_json(rows)
    else:
        console.print(_summary(rows))
        _failures(rows)
    if any(row["status"] != "candidate" and row["status"] != "production" for row in rows):
        raise typer.Exit(REFUSED_EXIT)


def _train_all(paths: list[Path], *, only: list[str] | None, seed: int | None, models: Path, n_jobs: int,
               promote: bool, quiet: bool) -> list[dict[str, Any]]:
    """Train each use case with its own progress bar; an error is a row of the summary, not the end."""
    from efimero.usecases import UseCaseRegistry, train_usecase

    rows = []
    columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[step]}"))
    with Progress(*columns, console=err_console if quiet else console, disable=quiet) as progress:
        for path in paths:
            task_id = progress.add_task(path.stem, total=None, step="")

            def update(step: str, done: int, total: int, task_id: Any = task_id) -> None:
                progress.update(task_id, completed=done, total=total, step=step)

            try:
                result = train_usecase(path, algorithms=only, seed=seed, models=models, n_jobs=n_jobs,
                                       progress=update)
            except EfimeroError as exc:
                progress.update(task_id, step="[red]error[/]")
                rows.append({"key": path.stem, "status": "error", "error": str(exc)})
                continue
            if promote and result.passed:
                UseCaseRegistry(models).promote(result.key, result.entry["directory"])
                result.entry["status"] = "production"
            rows.append(_row(result))
    return rows


def _row(result: TrainResult) -> dict[str, Any]:
    best = next(run for run in result.runs if run.algorithm == result.best)
    return {
        "key": result.key, "department": result.entry["department"], "task": result.task, "best": result.best,
        "primary_metric": result.primary_metric, "validation": best.validation.get(result.primary_metric),
        "test": result.test.get(result.primary_metric), "baseline": result.baseline_test.get(result.primary_metric),
        "status": result.entry["status"], "version": result.entry["version"],
        "directory": result.entry["directory"], "gate_failures": result.gate_failures,
        "seconds": round(result.seconds, 2),
    }


def _summary(rows: list[dict[str, Any]]) -> Table:
    """One line per use case: the kept algorithm's primary metric on validation and test beside the baseline."""
    table = Table(title=f"{len(rows)} use case(s): primary metric of the kept model, test baseline")
    for column in ("use case", "task", "best", "metric", "val", "test", "base", "status", "s"):
        table.add_column(column, justify="right" if column in ("val", "test", "base", "s") else "left",
                         overflow="fold")  # a narrow terminal folds names rather than cut them
    for row in rows:
        if row["status"] == "error":
            table.add_row(row["key"], "", "", "", "", "", "", "[red]error[/]", "")
            continue
        status = "[red]refused[/]" if row["status"] == "refused" else row["status"]
        table.add_row(row["key"], row["task"], row["best"], row["primary_metric"],
                      *(_short(row[name]) for name in ("validation", "test", "baseline")), status,
                      f"{row['seconds']:.1f}")
    return table


def _short(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"


def _failures(rows: list[dict[str, Any]]) -> None:
    """Why each use case of --all failed or was refused, on stderr under the summary."""
    for row in rows:
        if row["status"] == "error":
            err_console.print(f"[bold red]{row['key']}:[/] {escape(row['error'])}", highlight=False)
        elif row["status"] == "refused":
            err_console.print(f"[bold red]{row['key']} refused:[/] {escape('; '.join(row['gate_failures']))}",
                              highlight=False)


def _show(result: TrainResult) -> None:
    metric = result.primary_metric
    table = Table(title=f"use case {result.key} ({result.task}): {metric} by algorithm")
    for column in ("algorithm", f"CV {metric}", f"validation {metric}", f"test {metric}", "s", "params"):
        table.add_column(column)
    for run in result.runs:
        if run.error:
            table.add_row(run.algorithm, "[red]failed[/]", escape(run.error[:80]), "", _fmt(run.seconds), "")
            continue
        cv = _fmt(run.cv.get(metric)) + (f" ± {run.cv_std:.4f}" if run.cv_std is not None else "")
        name = f"[bold]{run.algorithm}[/] (best)" if run.algorithm == result.best else run.algorithm
        table.add_row(name, cv, _fmt(run.validation.get(metric)), _fmt(run.test.get(metric)), _fmt(run.seconds),
                      escape(str(run.params)))
    what = {"binary": "majority class", "multiclass": "majority class", "clustering": "random cluster ids"}
    table.add_row("baseline", "", _fmt(result.baseline_validation.get(metric)), _fmt(result.baseline_test.get(metric)),
                  "", what.get(result.task, "training mean"))
    console.print(table)
    shown = ", ".join(f"{k} {_fmt(v)}" for k, v in result.test.items() if isinstance(v, float | int))
    console.print(f"test metrics of {result.best}: {shown}")
    entry = result.entry
    if result.passed:
        console.print(f"[green]gate passed[/] ({', '.join(f'{k} {v:g}' for k, v in result.thresholds.items())})")
    else:
        err_console.print(f"[bold red]refused by the gate:[/] {escape('; '.join(result.gate_failures))}")
    console.print(f"stored {entry['model_id']} in {entry['file_path']} (status {entry['status']}) "
                  f"in {result.seconds:.1f} s")
    if result.inferred:
        console.print(f"features inferred from the data: review {result.inferred}")


@app.command("list")
@reports_errors
def list_(
    directory: Path = typer.Option(Path("usecases"), "--dir", help=DIR_HELP),
    models: Path = typer.Option(Path("models/usecases"), help=MODELS_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List the use cases of --dir and of the registry with their versions and production version."""
    from efimero.usecases import UseCaseRegistry

    registry = UseCaseRegistry(models)
    keys = sorted({p.stem for p in _paths(directory)} | set(registry.keys()))
    rows: list[dict[str, Any]] = []
    for key in keys:
        entries = registry.entries(key)
        live = registry.production(key)
        declared = _declared(directory / f"{key}.yaml")
        rows.append({"key": key, "declared": declared is not None, "versions": len(entries),
                     "department": declared.department if declared else entries[-1]["department"],
                     "task": declared.task.value if declared else entries[-1]["task"],
                     "latest": entries[-1] if entries else None, "production": live})
    if json_output:
        emit_json(rows)
        return
    table = Table(title=f"use cases in {directory} and {models}")
    for column in ("use case", "department", "task", "versions", "latest", "production", "algorithm", "metrics"):
        table.add_column(column)
    for row in rows:
        live, latest = row["production"], row["latest"] or {}
        shown = live or latest
        metrics = ", ".join(f"{k} {_fmt(v)}" for k, v in (shown or {}).get("metrics", {}).items()
                            if isinstance(v, float))
        table.add_row(row["key"], row["department"], row["task"], str(row["versions"]),
                      f"{latest['version']} ({latest['status']})" if latest else "—",
                      f"{live['version']} ({live['directory']})" if live else "—",
                      (shown or {}).get("algorithm", ""), metrics[:70])
    console.print(table)


def _declared(path: Path) -> UseCaseSpec | None:
    """The use case declared at ``path``, or None when there is none; an invalid file is an error, as in train."""
    from efimero.usecases import load_usecase

    return load_usecase(path) if path.is_file() else None


@app.command()
@reports_errors
def promote(
    key: str = typer.Argument(..., help="The use case."),
    version: str = typer.Argument(..., help="Semantic version (1.1.0), directory (v_…), model_id or 'latest'."),
    models: Path = typer.Option(Path("models/usecases"), help=MODELS_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Make a version production (checksums verified first); the previous production one becomes archived."""
    from efimero.usecases import UseCaseRegistry

    promoted, archived = UseCaseRegistry(models).promote(key, version)
    if json_output:
        emit_json({"promoted": promoted, "archived": archived})
        return
    console.print(f"[green]{key} {promoted['version']}[/] ({promoted['directory']}, {promoted['algorithm']}) "
                  "is production" + (f"; {archived['version']} archived" if archived else ""))


@app.command("generate-examples")
@reports_errors
def generate_examples(
    count: int = typer.Option(64, min=1, max=640, help="How many use cases (8 departments × 8 kinds, repeated)."),
    output: Path = typer.Option(Path("usecases/generated"), help="Folder the YAML files are written to."),
    rows: int = typer.Option(500, min=100, help="Rows of each generated table."),
    seed: int = typer.Option(0, help="Seed of the first table (each use case adds its index)."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Write small synthetic use cases across 8 departments, ready for `efimero usecase train --all --dir`."""
    from efimero.usecases import write_examples

    paths = write_examples(output, count=count, seed=seed, rows=rows)
    if json_output:
        emit_json({"output": str(output), "files": [str(p) for p in paths]})
        return
    console.print(f"wrote {len(paths)} use cases to {output}; train them with "
                  f"`efimero usecase train --all --dir {output}`")
