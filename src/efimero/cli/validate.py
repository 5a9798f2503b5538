"""`efimero validate`: the validation gate of a registry version."""

from __future__ import annotations

from pathlib import Path

import typer

from efimero.cli._common import JSON_HELP, console, emit_json, reports_errors


@reports_errors
def validate(
    models: Path = typer.Option(Path("models"), help="Registry directory."),
    version: str = typer.Option(None, help="Version to check. \\[default: the current one]"),
    test_data: Path = typer.Option(None, help="Labelled data for the accuracy check."),
    config: Path = typer.Option(
        None, help="Config with the thresholds. "
        "\\[default: training.yaml in $EFIMERO_CONFIG_DIR, else config/, when present]"),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Check loading, prediction, latency and (with --test-data) accuracy; exit 1 on any FAIL."""
    from efimero.config import load_training_config
    from efimero.gate import run_validation

    settings = load_training_config(config).validation
    report = run_validation(models, version=version, test_data=test_data, settings=settings)
    if json_output:
        emit_json(report.to_dict())
    else:
        console.print(f"Validating [bold]{report.version or models}[/]")
        for check in report.checks:
            colour = "green" if check.passed else "red"
            console.print(f"  [{colour}]{check.status}[/] {check.name:<12} {check.detail}", highlight=False)
        verdict = "[green]all checks passed[/]" if report.passed else "[red]validation failed[/]"
        console.print(verdict)
    if not report.passed:
        raise typer.Exit(1)
