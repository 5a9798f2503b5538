"""The `efimero` command: joins the command groups of each lifecycle stage."""

from __future__ import annotations

import typer

from efimero import __version__
from efimero.cli import bandit, data, experiment, models, retrain, rollout, store, usecase
from efimero.cli.analyze import analyze
from efimero.cli.compare import compare
from efimero.cli.demo import demo
from efimero.cli.deploy import deploy, deployments, rollback
from efimero.cli.drift import drift
from efimero.cli.monitor import monitor
from efimero.cli.serve import serve
from efimero.cli.simulate import simulate
from efimero.cli.train import train
from efimero.cli.validate import validate

app = typer.Typer(
    name="efimero",
    help="The ML lifecycle behind an ephemeral frontend: data, training, registry, validation.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.add_typer(data.app, name="data")
app.add_typer(models.app, name="models")
app.add_typer(retrain.app, name="retrain")
app.add_typer(rollout.app, name="rollout")
app.add_typer(experiment.app, name="experiment")
app.add_typer(store.app, name="store")
app.add_typer(bandit.app, name="explore")
app.add_typer(usecase.app, name="usecase")
app.command()(train)
app.command()(validate)
app.command()(serve)
app.command()(deploy)
app.command()(rollback)
app.command()(deployments)
app.command()(analyze)
app.command()(compare)
app.command()(drift)
app.command()(monitor)
app.command()(retrain.collect)
app.command("auto-retrain")(retrain.auto_retrain)
app.command()(simulate)
app.command("evaluate-offline")(bandit.evaluate_offline)
app.command()(demo)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"efimero {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """efimero: data → training → registry → validation for per-visitor UI styling."""


def run() -> None:
    app()


if __name__ == "__main__":  # `python -m efimero.cli.main`: how `efimero demo` starts its server
    run()
