"""`efimero demo`: the closed loop end to end (train, serve, drift, retrain, canary rollout), then what changed."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from efimero.cli._common import JSON_HELP, console, emit_json, err_console, progress_bar, reports_errors
from efimero.cli.rollout import render_rollout
from efimero.cli.simulate import ENGAGEMENT_MEASURES
from efimero.demo import DemoOptions

if TYPE_CHECKING:
    from efimero.demo import DemoResult
    from efimero.simulate.run import ProgressCallback


class _Terminal:
    """Narrates the demo on the terminal: on stdout, or on stderr when stdout holds the JSON."""

    def __init__(self, *, quiet: bool) -> None:
        self.quiet = quiet

    def step(self, message: str) -> None:
        (err_console if self.quiet else console).print(f"[green]✓[/] {escape(message)}", highlight=False)

    def progress(self, total: int) -> AbstractContextManager[ProgressCallback]:
        return progress_bar(total, quiet=self.quiet)


def _engagement(result: DemoResult) -> Table:
    """One column per period (before the drift, after it, after the rollout), one row per measure."""
    table = Table(title="Engagement: what the drift cost and what retraining won back")
    table.add_column("measure")
    for period in result.periods:
        table.add_column(f"{period.name}\n{period.version}\n{period.days}", justify="right")
    for name, render in ENGAGEMENT_MEASURES:
        table.add_row(name, *(render(period.engagement) for period in result.periods))
    return table


def _render(result: DemoResult) -> None:
    console.print(_engagement(result))
    if result.rollout is not None:
        render_rollout(result.rollout, json_output=False)
    else:
        console.print(f"no rollout: {escape(result.retraining['reason'])}", highlight=False)
    alerts = ", ".join(f"{rule} {count}" for rule, count in sorted(result.alerts.items())) or "none"
    console.print(f"monitor alerts during the run: {sum(result.alerts.values())} ({alerts})", highlight=False)
    table = Table(title="Reports", show_header=False, show_edge=False)
    for name, path in result.reports.items():
        table.add_row(name, escape(path))
    console.print(table)
    console.print("To look at it live: [bold]make serve[/] (or `efimero serve --models models/prod --db "
                  f"{result.reports['store']}`), then http://127.0.0.1:8000/ and http://127.0.0.1:8000/dashboard",
                  highlight=False)
    console.print(f"the demo took {result.elapsed_s:.0f} s", highlight=False)


@reports_errors
def demo(
    workdir: Path = typer.Option(Path("."), help="Where data/, models/ and reports/ go; its config/ is read, "
                                 "never written."),
    visitors_per_day: int = typer.Option(
        DemoOptions.visitors_per_day, min=10,
        help="Simulated visits per day; fewer leave the 5 % canary short of 30 sessions a day, so stages wait."),
    seed: int = typer.Option(DemoOptions.seed, help="Seed of the training data and of every simulated visitor."),
    port: int = typer.Option(None, min=1, max=65535, help="Port of the demo's server. \\[default: a free port]"),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run the whole loop: train, serve, two weeks of visitors with a drift, retrain, canary rollout, report.

    It starts `efimero serve` in the background and stops it at the end, even on Ctrl-C.
    """
    from efimero.demo import run_demo

    options = DemoOptions(visitors_per_day=visitors_per_day, seed=seed, port=port)
    visitors_log = logging.getLogger("efimero.simulate.visitors")
    level = visitors_log.level
    visitors_log.setLevel(logging.ERROR)  # its warning about one-day phases: each rollout round is one day by design
    try:
        result = run_demo(workdir, options, reporter=_Terminal(quiet=json_output))
    finally:
        visitors_log.setLevel(level)
    if json_output:
        emit_json(result.to_dict())
    else:
        _render(result)
