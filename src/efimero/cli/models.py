"""`efimero models ...`: inspect the registry."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from efimero.cli._common import JSON_HELP, console, emit_json, reports_errors

app = typer.Typer(help="Inspect the model registry.", no_args_is_help=True)


@app.command("list")
@reports_errors
def list_versions(
    models: Path = typer.Option(Path("models"), help="Registry directory."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List versions, newest first, with their key metrics; ● marks the current one."""
    from efimero.registry import Registry

    versions = Registry(models).list()
    if json_output:
        emit_json([{"version": v.name, "created_at": v.created_at, "current": v.is_current,
                    "summary": v.metrics.get("summary", {}), "rows": v.metadata.get("rows", {}),
                    "training_duration_s": v.metadata.get("training_duration_s")} for v in versions])
        return
    if not versions:
        console.print(f"{models}: no versions yet. Train one with `efimero train --data FILE --output {models}`.")
        return
    table = Table(title=f"Model versions in {models}", caption="● current · mean test accuracy and R²")
    table.add_column("")
    table.add_column("version", no_wrap=True)
    table.add_column("created (UTC)", no_wrap=True)
    for column in ("accuracy", "R²", "rows", "train time"):
        table.add_column(column, justify="right")
    for v in versions:
        summary = v.metrics.get("summary", {})
        table.add_row(
            "●" if v.is_current else "", v.name, v.created_at.replace("T", " ").split("+")[0][:16],
            f"{summary.get('mean_accuracy', float('nan')):.3f}", f"{summary.get('mean_r2', float('nan')):.3f}",
            str(v.metadata.get("rows", {}).get("total", "")), f"{v.metadata.get('training_duration_s', 0):.1f} s",
        )
    console.print(table)


@app.command("compile")
@reports_errors
def compile_version(
    models: Path = typer.Option(Path("models"), help="Registry directory."),
    version: str = typer.Option("current", help="Version name, 'current' or 'latest'."),
    compiler: str = typer.Option("gcc", help="C compiler tl2cgen builds the libraries with."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Compile a version's trees to shared libraries (treelite + tl2cgen), the fast path of serving.

    The libraries go into the version's compiled/ folder with their checksums; a server loads
    them only if they match and predict like XGBoost within 1e-5 on a fixed sample, and serves
    through XGBoost otherwise. Running servers pick them up at their next reload of the version.
    """
    from efimero.cli._common import progress_bar
    from efimero.registry import Registry

    registry = Registry(models)
    names = registry.model_names(version)
    with progress_bar(len(names), quiet=json_output) as advance:
        report = registry.compile(version, compiler=compiler, progress=lambda name: advance(f"compiled {name}", 1))
    if json_output:
        emit_json(report.to_dict())
        return
    toolchain = report.toolchain
    console.print(f"✓ {report.version}: {len(report.models)} models compiled in {report.seconds:.1f} s "
                  f"({toolchain['compiler']} {toolchain['flags']}, tl2cgen {toolchain['tl2cgen']}); "
                  f"equal to XGBoost within {report.max_abs_diff:.1e} on the verification sample")
