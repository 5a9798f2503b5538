"""`efimero drift`: per-feature drift statistics, prediction drift and a dataset verdict."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from efimero.cli._common import JSON_HELP, console, emit_json, reports_errors

if TYPE_CHECKING:
    from efimero.monitor.drift import ColumnDrift


def _cell(column: ColumnDrift, name: str) -> str:
    result = column.stats.get(name)
    return "—" if result is None else f"{result.score:.3g}"


def _table(title: str, columns: list[ColumnDrift]) -> Table:
    from efimero.monitor.drift import get_statistic

    table = Table(title=title, title_justify="left")
    for header in ("column", "type", "test", "p-value", "PSI", "W/σ", "JS", "drifted"):
        table.add_column(header, justify="left" if header in ("column", "type", "test") else "right")
    for column in columns:
        test = column.test
        test_name = get_statistic(test.name).label.removesuffix(" p") if test else "—"
        table.add_row(escape(column.column), column.feature_type, test_name,
                      _cell(column, test.name) if test else "—", _cell(column, "psi"), _cell(column, "wasserstein"),
                      _cell(column, "jensen_shannon"), "yes" if column.drifted else "no",
                      style="red" if column.drifted else None)
    return table


@reports_errors
def drift(
    reference: Path = typer.Option(..., help="Reference data, e.g. the training file (.csv, .json or .parquet)."),
    current: Path = typer.Option(..., help="Current data to check against the reference."),
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

    Exits 0 whether or not drift is found (it is information) and 1 when the data cannot be used.
    """
    from efimero.data._tables import read_table
    from efimero.monitor.drift import detect_drift, export_report

    ref, cur = read_table(reference), read_table(current)
    report = detect_drift(ref, cur, categorical=categorical or None, prediction_columns=prediction_column or None,
                          share_threshold=share_threshold)
    paths = export_report(report, ref, cur, output, labels=(reference.name, current.name)) if output else None
    if json_output:
        payload = {"reference": str(reference), "current": str(current), **report.to_dict()}
        if paths:
            payload["report"] = {"html": str(paths[0]), "json": str(paths[1])}
        emit_json(payload)
        return
    console.print(_table(f"Feature drift: {escape(reference.name)} → {escape(current.name)}", report.features))
    if report.predictions:
        console.print(_table("Prediction drift (predicted classes)", report.predictions))
    moved = report.drifted_features or report.prediction_drift
    colour = "red" if report.dataset_drift else "yellow" if moved else "green"
    console.print(f"[bold {colour}]{report.verdict}[/]: {escape(report.summary)}", highlight=False)
    console.print(f"[dim]Rule: {report.rule}.[/]", highlight=False)
    if paths:
        console.print(f"[green]✓[/] report: {paths[0]} and {paths[1]}")
