"""`efimero experiment start|status|stop`: an A/B test of a candidate against the live version."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import typer
from rich.table import Table

from efimero.cli._common import JSON_HELP, console, emit_json, reports_errors
from efimero.cli.deploy import CONFIG_HELP, TARGET_HELP
from efimero.cli.rollout import AT_HELP, CLOCK_HELP, DB_HELP, RETRAINING_HELP, environments_config, parse_at
from efimero.errors import ConfigError, ExperimentError

if TYPE_CHECKING:
    from efimero.config import MonitoringRules
    from efimero.experiment.live import ExperimentState, MetricName, Readout
    from efimero.registry import Registry

app = typer.Typer(help="A/B experiments: a candidate for a share of visitors, read with always-valid statistics.",
                  no_args_is_help=True)

METRIC_HELP = "Primary metric: session_duration, online_accuracy, rating or engagement."


def _registry(target: str, config: Path | None) -> Registry:
    from efimero.registry import Registry

    return Registry(environments_config(config).get(target).model_dir)


def _stage(registry: Registry, source: Path, version: str, *, allow_contract_change: bool) -> str:
    """Copy ``version`` of ``source`` into the served registry (verified), refusing another contract."""
    from efimero.deploy import Contract, contract_changes
    from efimero.registry import Registry

    origin = Registry(source)
    name = origin.resolve(version)
    changes = contract_changes(Contract.of(registry.load()), Contract.of(origin.load(name)))
    if changes and not allow_contract_change:
        raise ExperimentError(f"{'; '.join(changes)}. Pass --allow-contract-change once the clients are ready.")
    registry.adopt(origin.path(name))
    return name


def _rules(retraining_config: Path | None) -> MonitoringRules:
    from efimero.config import load_retraining_config

    return load_retraining_config(retraining_config).retraining.monitoring


@app.command()
@reports_errors
def start(
    treatment: str = typer.Option(..., help="Candidate version ('latest' works) of --source."),
    target: str = typer.Option(..., help=TARGET_HELP),
    source: Path = typer.Option(Path("models"), help="Registry the candidate comes from (copied, verified)."),
    allocation: float = typer.Option(0.1, min=0.001, max=0.999, help="Share of visitors on the candidate."),
    metric: str = typer.Option("session_duration", help=METRIC_HELP),
    mde: float = typer.Option(0.05, min=0.0001, help="Smallest relative change worth detecting (0.05: 5 %)."),
    alpha: float = typer.Option(0.05, min=0.0001, max=0.5, help="Significance level."),
    cuped: bool = typer.Option(True, "--cuped/--no-cuped", help="Adjust for the visitor's pre-period (CUPED)."),
    db_url: str = typer.Option("sqlite:///data/efimero.db", "--db", "--db-url", help=DB_HELP),
    clock: str = typer.Option("wall", help=CLOCK_HELP),
    allow_contract_change: bool = typer.Option(False, "--allow-contract-change",
                                               help="Test even if features, targets or classes differ."),
    config: Path = typer.Option(None, help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Serve the candidate to a share of visitors, sized from the pre-period to detect --mde."""
    from efimero.deploy.rollout_checks import clock_now, parse_clock
    from efimero.experiment.live import METRICS
    from efimero.experiment.live import start as start_experiment
    from efimero.store import open_engine

    if metric not in METRICS:
        raise ConfigError(f"--metric must be one of {', '.join(METRICS)}. Got {metric!r} instead.")
    registry = _registry(target, config)
    name = _stage(registry, source, treatment, allow_contract_change=allow_contract_change)
    engine = open_engine(db_url, create=False)
    state = start_experiment(registry, engine, treatment=name, now=clock_now(parse_clock(clock), db_url),
                             db_url=db_url, allocation=allocation, metric=cast("MetricName", metric),
                             mde=mde, alpha=alpha, use_cuped=cuped)
    if json_output:
        emit_json(state.model_dump(mode="json"))
        return
    console.print(f"experiment {state.id}: {state.treatment} for {state.allocation:.0%} of visitors against "
                  f"{state.control}; {state.planning}.", highlight=False)


def _state(registry: Registry) -> ExperimentState:
    from efimero.experiment.live import read_state

    state = read_state(registry.root)
    if state is None:
        raise ExperimentError(f"{registry.root}: has had no experiment. Start one with `efimero experiment start`.")
    return state


def _render(readout: Readout, json_output: bool) -> None:
    if json_output:
        emit_json(readout.to_dict())
        return
    state = readout.state
    console.print(f"experiment {state.id} ({state.status}): {state.treatment} ({state.allocation:.0%}) against "
                  f"{state.control}, metric {state.metric}, planned {state.planned_n} sessions", highlight=False)
    table = Table(show_edge=False)
    for column in ("readout", "decision", "difference", "interval", "p", "why"):
        table.add_column(column)
    for name, result in (("sequential (act on this)", readout.sequential), ("fixed horizon", readout.fixed_horizon)):
        if result is None:
            table.add_row(name, "inconclusive", "", "", "", readout.note or "")
            continue
        test = result["readout"]
        table.add_row(name, result["decision"], f"{test['difference']:+.4g}",
                      f"[{test['ci_low']:.4g}, {test['ci_high']:.4g}]", f"{test['p_value']:.3g}", result["reason"])
    console.print(table)
    console.print(f"sessions {readout.sessions}, predictions {readout.predictions}", highlight=False)
    for guardrail in readout.guardrails:
        console.print(f"guardrail {guardrail['guardrail']}: {guardrail['status']}", highlight=False)


@app.command()
@reports_errors
def status(
    target: str = typer.Option(..., help=TARGET_HELP),
    at: str = typer.Option(None, help=AT_HELP),
    clock: str = typer.Option("wall", help=CLOCK_HELP),
    retraining_config: Path = typer.Option(None, help=RETRAINING_HELP),
    config: Path = typer.Option(None, help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Read the experiment now: the always-valid verdict, the fixed-horizon one, SRM, CUPED, guardrails."""
    from efimero.deploy.rollout_checks import clock_now, parse_clock
    from efimero.experiment.live import read_out
    from efimero.store import open_engine

    state = _state(_registry(target, config))
    if state.status == "stopped" and state.final is not None:
        if json_output:
            emit_json({"experiment": state.model_dump(mode="json"), **state.final})
        else:
            console.print(f"experiment {state.id} stopped at {state.stopped_at}: {state.stop_reason}; final decision "
                          f"{state.final['decision']}", highlight=False)
        return
    now = parse_at(at) or clock_now(parse_clock(clock), state.db_url)
    _render(read_out(state, open_engine(state.db_url, create=False), now=now, rules=_rules(retraining_config)),
            json_output)


@app.command()
@reports_errors
def stop(
    target: str = typer.Option(..., help=TARGET_HELP),
    reason: str = typer.Option("stopped by an operator", help="Why; kept with the final readout."),
    at: str = typer.Option(None, help=AT_HELP),
    clock: str = typer.Option("wall", help=CLOCK_HELP),
    retraining_config: Path = typer.Option(None, help=RETRAINING_HELP),
    config: Path = typer.Option(None, help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """End the experiment: every visitor back on the live version, the final readout kept."""
    from efimero.deploy.rollout_checks import clock_now, parse_clock
    from efimero.experiment.live import stop as stop_experiment
    from efimero.store import open_engine

    registry = _registry(target, config)
    state = _state(registry)
    now = parse_at(at) or clock_now(parse_clock(clock), state.db_url)
    state = stop_experiment(registry, open_engine(state.db_url, create=False), now=now, reason=reason,
                            rules=_rules(retraining_config))
    if json_output:
        emit_json(state.model_dump(mode="json"))
    else:
        console.print(f"experiment {state.id} stopped; final decision {state.final and state.final['decision']}",
                      highlight=False)
