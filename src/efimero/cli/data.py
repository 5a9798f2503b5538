"""`efimero data ...`: generate and validate training data."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from efimero.cli._common import JSON_HELP, TOKENS_HELP, console, emit_json, progress_bar, reports_errors, style_tokens

app = typer.Typer(help="Generate and validate training data.", no_args_is_help=True)


class UserPatterns(StrEnum):
    realistic = "realistic"
    extreme = "extreme"
    balanced = "balanced"


@app.command()
@reports_errors
def generate(
    size: int = typer.Option(1000, min=1, help="Number of rows (visits) to generate."),
    output: Path = typer.Option(
        Path("data/synthetic_training_data.csv"),
        help="Output file (.csv, .json or .parquet), or a directory without suffix (data/big/) for partitioned "
        "Parquet written chunk by chunk in bounded memory.",
    ),
    seed: int = typer.Option(42, help="Random seed; the same seed gives the same bytes."),
    user_patterns: UserPatterns = typer.Option(UserPatterns.realistic, help="Distribution of visitors."),
    validate: bool = typer.Option(False, "--validate", help="Validate the data before writing it."),
    export_metadata: bool = typer.Option(False, "--export-metadata", help="Also write <output>_metadata.json."),
    tokens: Path = typer.Option(None, help=TOKENS_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Generate synthetic visits with CSS targets: the design rules for efimero's tokens, a fixed seeded
    teacher for a site's own (--tokens)."""
    from efimero._api import generate as generate_file
    from efimero.data import is_partitioned
    from efimero.data.generate import CHUNK_ROWS

    chunks = -(-size // CHUNK_ROWS) if is_partitioned(output) else 0
    with progress_bar(chunks, quiet=json_output) if chunks else nullcontext(None) as advance:
        result = generate_file(
            size, output=output, seed=seed, pattern=user_patterns.value,
            validate=validate, export_metadata=export_metadata, progress=advance, tokens=style_tokens(tokens),
        )
    if json_output:
        emit_json({"output": str(result.output), "rows": result.rows, "validated": validate,
                   "metadata_path": str(result.metadata_path) if result.metadata_path else None,
                   "metadata": result.metadata})
        return
    console.print(f"[green]✓[/] wrote {result.rows} rows to [bold]{result.output}[/] "
                  f"(pattern {user_patterns.value}, seed {seed})")
    table = Table(title="Class frequencies")
    table.add_column("target")
    table.add_column("label")
    table.add_column("rows", justify="right")
    table.add_column("share", justify="right")
    for target, counts in result.metadata["class_frequencies"].items():
        for label, count in counts.items():
            table.add_row(target, label, str(count), f"{count / result.rows:.1%}")
    console.print(table)
    if result.validation:
        console.print(f"[green]✓[/] validation passed: {result.validation.rows} rows, "
                      f"{result.validation.columns} columns")
    if result.metadata_path:
        console.print(f"[green]✓[/] metadata in {result.metadata_path}")


@app.command()
@reports_errors
def validate(
    file: Path = typer.Argument(
        ..., help="Training data file (.csv, .json or .parquet), or a directory of Parquet part files (read chunk "
        "by chunk)."),
    allow_duplicates: bool = typer.Option(False, "--allow-duplicates", help="Accept duplicate rows."),
    tokens: Path = typer.Option(None, help=TOKENS_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Validate a training file against the schema (columns, dtypes, ranges, labels, NaN, duplicates)."""
    from efimero._api import validate_data

    report = validate_data(file, allow_duplicates=allow_duplicates, tokens=style_tokens(tokens))
    if json_output:
        emit_json({"valid": True, **asdict(report)})
        return
    console.print(f"[green]✓[/] {file}: valid ({report.rows} rows, {report.columns} columns)")
    for warning in report.warnings:
        console.print(f"[yellow]![/] {warning}")
