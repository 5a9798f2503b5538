"""`efimero drift`: per-feature drift statistics, prediction drift and a dataset verdict."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from efimero.cli._common import JSON_HELP, console, emit_json, reports_errors
from efimero.cli._tracking import tracked

if TYPE_CHECKING:
    from efimero.bundle import ModelBundle
    from efimero.monitor.drift import ColumnDrift


def _cell(column: ColumnDrift, name: str) -> str:
    result = column.stats.get(name)
    return "—" if result is None else f"{result.score:.3g}"


def _table(title: str, columns: list[ColumnDrift]) -> Table:
    from efimero.monitor.drift import get_statistic

    weighted = any(column.importance is not None for column in columns)
    table = Table(title=title, title_justify="left")
    for header in ("column", "type", *(["importance"] if weighted else []), "test", "p-value", "PSI", "W/σ", "JS",
                   "drifted"):
        table.add_column(header, justify="left" if header in ("column", "type", "test") else "right")
    for column in columns:
        test = column.test
        test_name = get_statistic(test.name).label.removesuffix(" p") if test else "—"
        importance = [f"{column.importance:.3f}" if column.importance is not None else "—"] if weighted else []
        table.add_row(escape(column.column), column.feature_type, *importance, test_name,
                      _cell(column, test.name) if test else "—", _cell(column, "psi"), _cell(column, "wasserstein"),
                      _cell(column, "jensen_shannon"), "yes" if column.drifted else "no",
                      style="red" if column.drifted else None)
    return table


def live_version(models: Path | None) -> ModelBundle | None:
    """The live version of ``models``, or None without ``--models`` or before its first version."""
    from efimero.registry import Registry

    if models is None or Registry(models).current() is None:
        return None
    return Registry(models).load()


@reports_errors
@tracked("drift")
def drift(
    reference: list[Path] | None = typer.Option(
        None, "--reference", help="Reference data, e.g. the training file (.csv, .json or .parquet; repeat for "
        "several). \\[default: every training file of --models' live version]"),
    current: Path = typer.Option(..., help="Current data to check against the reference (a file, or a directory of "
                                 "Parquet part files: then a seeded uniform sample of 200,000 rows is compared)."),
    models: Path | None = typer.Option(None, help="Registry whose live version weighs each feature by its importance "
                                       "(and gives the reference when --reference is not given)."),
    output: Path | None = typer.Option(None, help="Folder for drift.html, drift.json and one PNG per column."),
    categorical: list[str] | None = typer.Option(
        None, "--categorical", help="Treat this column as categorical (repeat it); replaces the inference."),
    prediction_column: list[str] | None = typer.Option(
        None, "--prediction-column", help="Predicted class column (repeat it). \\[default: css_class_* in both files]"),
    share_threshold: float = typer.Option(0.5, min=0.0, max=1.0, help="Share of drifted features from which "
                                          "the dataset counts as drifted."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """KS, PSI, Wasserstein, Jensen–Shannon and chi² per feature, prediction drift and the verdict.

    With --models the verdict weighs each feature by the live model's importance (the unweighted
    share is reported beside it); without, the unweighted share decides. Exits 0 whether or not
    drift is found (it is information) and 1 when the data cannot be used.
    """
    from efimero.data._parts import read_for_statistics
    from efimero.errors import DataError
    from efimero.monitor.drift import choose_reference, detect_drift, export_report

    chosen = choose_reference(reference or [], live_version(models))
    if chosen.frame is None:
        raise DataError(f"the reference data cannot be read: {chosen.problem}. Name it with --reference.")
    ref, cur = chosen.frame, read_for_statistics(current)
    report = detect_drift(ref, cur, categorical=categorical or None, prediction_columns=prediction_column or None,
                          share_threshold=share_threshold, importance=chosen.importance)
    label = ", ".join(f.path.name for f in chosen.files) if reference else chosen.source
    paths = export_report(report, ref, cur, output, labels=(label, current.name)) if output else None
    if json_output:
        payload = {"reference": chosen.source, "reference_files": [f.to_dict() for f in chosen.files],
                   "current": str(current), **report.to_dict()}
        if paths:
            payload["report"] = {"html": str(paths[0]), "json": str(paths[1])}
        emit_json(payload)
        return
    console.print(_table(f"Feature drift: {escape(label)} → {escape(current.name)}", report.features))
    if report.predictions:
        console.print(_table("Prediction drift (predicted classes)", report.predictions))
    moved = report.drifted_features or report.prediction_drift
    colour = "red" if report.dataset_drift else "yellow" if moved else "green"
    console.print(f"[bold {colour}]{report.verdict}[/]: {escape(report.summary)}", highlight=False)
    console.print(f"[dim]Rule: {report.rule}.[/]", highlight=False)
    if current.is_dir() or any(Path(f.path).is_dir() for f in chosen.files):
        console.print("[dim]A directory of Parquet part files is compared through a seeded uniform sample of at most "
                      "200,000 of its rows: the statistics are those of the sample.[/]", highlight=False)
    if paths:
        console.print(f"[green]✓[/] report: {paths[0]} and {paths[1]}")
