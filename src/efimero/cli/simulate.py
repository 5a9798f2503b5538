"""`efimero simulate`: synthetic visitors against a running service, with optional drift."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from efimero.cli._common import JSON_HELP, console, emit_json, progress_bar, reports_errors

if TYPE_CHECKING:
    from efimero.simulate import Aggregate, SimulationResult

ENGAGEMENT_MEASURES: tuple[tuple[str, Callable[[Aggregate], str]], ...] = (
    ("visits", lambda a: str(a.visits)),
    ("failed visits", lambda a: str(a.failures)),
    ("night share", lambda a: f"{a.night_share:.1%}"),
    ("mean session (s)", lambda a: f"{a.mean_session_s:.1f}"),
    ("bounce rate", lambda a: f"{a.bounce_rate:.1%}"),
    ("mean rating (1-5)", lambda a: "—" if a.mean_rating is None else f"{a.mean_rating:.2f} (n={a.ratings})"),
    ("explicit feedback", lambda a: str(a.feedback)),
    ("match rate (3 classes)", lambda a: f"{a.match_rate:.1%}"),
    ("mean match score", lambda a: f"{a.mean_match_score:.3f}"),
    ("online accuracy", lambda a: f"{a.online_accuracy:.1%}"),
)


def _table(result: SimulationResult) -> Table:
    """One column per phase (and overall), one row per engagement measure."""
    columns = dict(result.phases)
    if len(columns) > 1:
        columns["overall"] = result.overall
    table = Table(title=f"Simulated engagement: {result.visitors} visits over {result.days} days")
    table.add_column("measure")
    for phase in columns:
        table.add_column(phase.replace("_", " "), justify="right")
    for name, render in ENGAGEMENT_MEASURES:
        table.add_row(name, *(render(aggregate) for aggregate in columns.values()))
    return table


@reports_errors
def simulate(
    visitors: int = typer.Option(5000, min=1, help="Visits to simulate (each a different visitor)."),
    days: int = typer.Option(14, min=1, help="Simulated days the visits are spread over."),
    drift_day: int = typer.Option(
        None, min=0, help="First day (0-based) of the drift; 0: all days drifted; none if left out."),
    url: str = typer.Option("http://127.0.0.1:8000", help="Base URL of `efimero serve`."),
    seed: int = typer.Option(1, help="Seed of the visits and the visitors' behaviour."),
    start_date: datetime = typer.Option("2026-11-01", formats=["%Y-%m-%d"], help="Simulated date of day 0."),
    concurrency: int = typer.Option(8, min=1, max=256, help="Visits in flight at once."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run synthetic visitors against the service over HTTP: predict, behave, log the interaction."""
    from efimero.simulate import simulate as run_simulation

    if drift_day is not None and drift_day >= days:
        raise typer.BadParameter(f"must be below --days ({days}). Got {drift_day} instead.", param_hint="--drift-day")
    with progress_bar(visitors, quiet=json_output) as advance:
        result = run_simulation(
            url, visitors=visitors, days=days, drift_day=drift_day, seed=seed, start_date=start_date.date(),
            concurrency=concurrency, progress=advance,
        )
    if json_output:
        emit_json(result.to_dict())
        return
    console.print(_table(result))
    versions = ", ".join(f"{v} ({n})" for v, n in result.model_versions.items()) or "none"
    console.print(f"served by {versions} at {result.url}; {result.elapsed_s:.1f} s", highlight=False)
    if result.shifted_features:
        console.print(f"from day {result.drift_day} traffic moved to the night, shifting "
                      f"{', '.join(result.shifted_features)}", highlight=False)
    if result.failures:
        console.print(f"[red]{result.failures} visit(s) failed[/], e.g. {escape(result.errors[0])}", highlight=False)
