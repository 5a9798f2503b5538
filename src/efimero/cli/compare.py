"""`efimero compare`: two model versions side by side on the same test data, with a verdict."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from efimero.cli._common import JSON_HELP, console, emit_json, reports_errors
from efimero.cli._tracking import tracked

if TYPE_CHECKING:
    from efimero.analysis.compare import Comparison, TargetComparison

_COLOURS = {"better": "green", "worse": "red", "B better": "green", "B worse": "red"}


def _outcome(outcome: str) -> str:
    colour = _COLOURS.get(outcome, "dim")
    return f"[{colour}]{outcome}[/]"


def _new_table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column in ("target", "version", "method") else "right")
    return table


def _ci(target: TargetComparison, spec: str) -> tuple[str, str]:
    d = target.difference
    return f"{d.observed:+{spec}}", f"[{d.low:+{spec}}, {d.high:+{spec}}]"


def comparison_tables(comparison: Comparison) -> list[Table]:
    """Rich tables: accuracy per class target, McNemar tests, RMSE per regression target, latency.

    Macro-F1, log-loss, MAE, R² and the RMSE ratios are in ``--json`` and the report.
    """
    level = f"{comparison.confidence:.0%} CI"
    tables = []
    if classes := comparison.group("classification"):
        table = _new_table("Class targets: accuracy", ("target", "A", "B", "B − A", level, "outcome"))
        for t in classes:
            table.add_row(t.target, f"{t.metrics_a['accuracy']:.3f}", f"{t.metrics_b['accuracy']:.3f}", *_ci(t, ".3f"),
                          _outcome(t.outcome))
        tables.append(table)
        mcnemar = _new_table("McNemar tests (b: A right, B wrong; c: A wrong, B right)",
                             ("target", "b", "c", "statistic", "p-value", "method"))
        for t in classes:
            if (test := t.mcnemar) is not None:
                mcnemar.add_row(t.target, str(test.b), str(test.c), f"{test.statistic:.3g}", f"{test.p_value:.3g}",
                                test.method)
        tables.append(mcnemar)
    if regression := comparison.group("regression"):
        table = _new_table("Regression targets: RMSE", ("target", "A", "B", "B − A", level, "outcome"))
        for t in regression:
            table.add_row(t.target, f"{t.metrics_a['rmse']:.4g}", f"{t.metrics_b['rmse']:.4g}", *_ci(t, ".3g"),
                          _outcome(t.outcome))
        tables.append(table)
    latency = _new_table("Latency of single predictions (not part of the verdict)",
                         ("version", "p50 ms", "p95 ms", "mean ms", "samples"))
    for key, value in comparison.latency.items():
        version = comparison.version_a if key == "a" else comparison.version_b
        latency.add_row(f"{key.upper()} {version}", f"{value.p50_ms:.3f}", f"{value.p95_ms:.3f}",
                        f"{value.mean_ms:.3f}", str(value.samples))
    tables.append(latency)
    return tables


@reports_errors
@tracked("compare")
def compare(
    model_a: Path = typer.Option(
        ..., "--model-a", help="Reference version A: a version directory or a registry (its current version)."),
    model_b: Path = typer.Option(..., "--model-b", help="Candidate version B, same forms as --model-a."),
    test_data: Path = typer.Option(
        ..., "--test-data", help="Labelled test data (.csv, .json or .parquet) in the training schema."),
    generate_plots: bool = typer.Option(
        False, "--generate-plots", help="Accuracy and RMSE-ratio plots (PNG) in --output."),
    export_report: bool = typer.Option(
        False, "--export-report",
        help="compare.html (plots inline) and compare.json in --output; implies --generate-plots."),
    output: Path = typer.Option(Path("comparison"), help="Folder for plots and the report."),
    n_bootstrap: int = typer.Option(1000, "--n-bootstrap", min=1, help="Bootstrap replicates of each difference."),
    seed: int = typer.Option(0, help="Seed of the bootstrap resampling."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Compare B with A: metrics per target, bootstrap CIs of B − A, McNemar, latency and a verdict.

    Exits 0 whatever the verdict (it is information); 1 only on errors.
    """
    from efimero.analysis.compare import compare_versions, plot_comparison
    from efimero.analysis.compare import export_report as write_comparison_report

    comparison = compare_versions(model_a, model_b, test_data, n_bootstrap=n_bootstrap, seed=seed)
    files: dict[str, Any] = {}
    if generate_plots or export_report:
        plots = plot_comparison(comparison, output)
        files["plots"] = {name: str(path) for name, path in plots.items()}
    if export_report:
        html_path, json_path = write_comparison_report(comparison, output, plots=plots)
        files["report"] = {"html": str(html_path), "json": str(json_path)}
    if json_output:
        emit_json(comparison.to_dict() | files)
        return
    console.print(
        f"Comparing A = [bold]{comparison.version_a}[/] with B = [bold]{comparison.version_b}[/] on "
        f"{comparison.n_rows} rows of {escape(comparison.test_data)} ({comparison.n_bootstrap} bootstrap replicates, "
        f"seed {comparison.seed})",
        highlight=False,
    )
    for table in comparison_tables(comparison):
        console.print(table)
    colour = _COLOURS.get(comparison.verdict, "yellow")
    console.print(f"Verdict: [bold {colour}]{comparison.verdict}[/] ({escape('; '.join(comparison.reasons))})",
                  highlight=False)
    console.print(f"[dim]Rule: {escape(comparison.rule)}[/]", highlight=False)
    for name, path in files.get("plots", {}).items():
        console.print(f"[green]✓[/] plot {name}: {escape(path)}", highlight=False)
    if "report" in files:
        console.print(f"[green]✓[/] report: {escape(files['report']['html'])} and {escape(files['report']['json'])}",
                      highlight=False)
