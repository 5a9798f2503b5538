"""`efimero analyze`: feature importance, SHAP values and correlations of a version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from efimero.cli._common import JSON_HELP, console, emit_json, reports_errors
from efimero.cli._tracking import tracked


@reports_errors
@tracked("analyze")
def analyze(
    models: Path = typer.Option(Path("models"), help="Registry directory."),
    version: str = typer.Option(None, help="Version to analyse. \\[default: the current one]"),
    data: Path = typer.Option(..., help="Data to explain and correlate (.csv, .json or .parquet)."),
    output: Path = typer.Option(Path("analysis"), help="Folder for plots and the report."),
    plot_importance: bool = typer.Option(False, "--plot-importance", help="Importance and SHAP summary plots."),
    plot_correlations: bool = typer.Option(False, "--plot-correlations", help="Feature correlation heatmap."),
    export_report: bool = typer.Option(
        False, "--export-report", help="report.html (plots inline) and report.json; implies both plot flags."),
    shap_rows: int = typer.Option(500, min=10, help="Rows sampled for SHAP values."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Importance per model (gain, weight), the combined ranking and its movement, SHAP, correlations."""
    from efimero.analysis.analyze import analyze as run_analysis

    result = run_analysis(models, version=version, data=data, output=output, plot_importance=plot_importance,
                          plot_correlations=plot_correlations, export_report=export_report, shap_rows=shap_rows)
    if json_output:
        emit_json(result.to_dict())
        return
    since = result.previous_version or "—"
    ranking = Table(title=f"Top features of {result.version} (movement since {since})")
    for column in ("rank", "feature", "combined", "classifiers", "regressor", "moved"):
        ranking.add_column(column, justify="left" if column == "feature" else "right")
    movement = result.movement.set_index("feature")["change"]
    row: Any  # a row of the ranking table
    for row in result.ranking.head(10).itertuples():
        change = movement.get(row.feature)
        moved = ("new" if change is None or change != change
                 else f"▲{int(change)}" if change > 0 else f"▼{int(-change)}" if change < 0 else "=")
        ranking.add_row(str(row.rank), row.feature, f"{row.combined_importance:.3f}",
                        f"{row.classifier_importance:.3f}", f"{row.regressor_importance:.3f}", moved)
    console.print(ranking)
    for name, path in result.plots.items():
        console.print(f"[green]✓[/] {name}: {path}")
    if result.report:
        console.print(f"[green]✓[/] report: {result.report[0]} and {result.report[1]}")
