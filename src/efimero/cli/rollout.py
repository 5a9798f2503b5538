"""`efimero rollout start|step|watch|status|abort`: a candidate through canary and stages to live."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from efimero.cli._common import JSON_HELP, console, emit_json, reports_errors
from efimero.cli._tracking import tracked
from efimero.cli.deploy import CONFIG_HELP, LOCK_WAIT_HELP, TARGET_HELP, _echo
from efimero.errors import ConfigError

if TYPE_CHECKING:
    from efimero.config import EnvironmentsConfig
    from efimero.deploy.rollout import Judge, Precheck
    from efimero.deploy.rollout_state import RolloutState

app = typer.Typer(help="Gradual rollout: canary 5 %, then 10, 25, 50, 100 %, with automatic rollback.",
                  no_args_is_help=True)

DB_HELP = "Interaction store the checks read (SQLite or postgresql://...)."
CLOCK_HELP = ("wall: stage windows in real time; store: in the time of the newest visit in the store, so that "
              "simulated traffic (efimero simulate) drives the rollout.")
AT_HELP = "Check as of this moment (ISO 8601, UTC). \\[default: the rollout's clock]"
RETRAINING_HELP = ("Retraining YAML holding the monitoring rules and the offline gate. "
                   "\\[default: retraining.yaml in $EFIMERO_CONFIG_DIR, else config/, when present]")


def parse_stages(text: str) -> tuple[float, ...]:
    """``5,10,25,50,100`` (percent of visitors) as shares.

    Raises:
        ConfigError: an entry is not a number.
    """
    try:
        return tuple(float(part) / 100 for part in text.split(","))
    except ValueError:
        raise ConfigError(f"--stages must be comma-separated percentages such as 5,10,25,50,100. "
                          f"Got {text!r} instead.") from None


def parse_at(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--at must be an ISO 8601 time such as 2026-11-27T12:00:00. Got {text!r} instead.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def render_rollout(state: RolloutState, json_output: bool) -> None:
    if json_output:
        emit_json(state.model_dump(mode="json"))
        return
    colour = {"running": "yellow", "completed": "green"}.get(state.status, "red")
    stages = " → ".join(
        f"[bold]{share:.0%}[/]" if index == state.stage_index and state.running else f"{share:.0%}"
        for index, share in enumerate(state.plan.stages)
    )
    console.print(f"rollout {state.id}: {state.version} to {state.target} (was {state.previous_version}): "
                  f"[{colour}]{state.status}[/], {state.share:.1%} of visitors", highlight=False)
    console.print(f"  stages {stages}, each held {state.plan.hold_minutes:g} min", highlight=False)
    if state.running and state.last_check is not None:
        console.print(f"  last check {state.last_check.at:%Y-%m-%d %H:%M}: {state.last_check.reason}", highlight=False)
    table = Table(title="timeline", show_edge=False)
    for column in ("at (UTC)", "event", "share", "reason"):
        table.add_column(column)
    for event in state.events:
        table.add_row(f"{event.at:%Y-%m-%d %H:%M}", event.event, f"{event.share:.1%}", event.reason)
    console.print(table)


def environments_config(config: Path | None) -> EnvironmentsConfig:
    from efimero.config import load_environments_config

    return load_environments_config(config)


@app.command()
@reports_errors
def start(
    version: str = typer.Option(..., help="Candidate version of the source registry ('latest' works)."),
    target: str = typer.Option(..., help=TARGET_HELP),
    source: Path = typer.Option(Path("models"), help="Registry the candidate comes from."),
    stages: str = typer.Option("5,10,25,50,100", help="Percent of visitors per stage; increasing, ending at 100."),
    hold_minutes: float = typer.Option(5.0, min=0.001, help="How long each stage holds before it can advance."),
    db_url: str = typer.Option("sqlite:///data/efimero.db", help=DB_HELP),
    clock: str = typer.Option("wall", help=CLOCK_HELP),
    validate: bool = typer.Option(
        None, "--validate/--no-validate", help="Check the target's thresholds first. \\[default: validation_required]"),
    test_data: Path = typer.Option(None, help="Labelled data for the accuracy threshold."),
    allow_contract_change: bool = typer.Option(False, "--allow-contract-change",
                                               help="Roll out even if features, targets or classes differ."),
    offline_gate: bool = typer.Option(
        None, "--offline-gate/--no-offline-gate", help="First estimate the candidate off-policy on the logged "
        "visits and refuse it if it looks worse than live beyond the margin, or cannot be estimated. "
        "\\[default: retraining.bandit.offline_gate.required]"),
    retraining_config: Path = typer.Option(None, help=RETRAINING_HELP),
    lock_wait: float = typer.Option(60.0, min=0, help=LOCK_WAIT_HELP),
    config: Path = typer.Option(None, help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Validate and stage the candidate, then serve it to the first stage's share of visitors."""
    from efimero.deploy.rollout import start as start_rollout
    from efimero.deploy.rollout_checks import clock_now, parse_clock
    from efimero.deploy.rollout_state import RolloutPlan

    plan = RolloutPlan(stages=parse_stages(stages), hold_minutes=hold_minutes)
    rollout_clock = parse_clock(clock)
    state = start_rollout(
        source, target, version=version, now=clock_now(rollout_clock, db_url), plan=plan, validate=validate,
        test_data=test_data, allow_contract_change=allow_contract_change, lock_wait_s=lock_wait,
        environments=environments_config(config), echo=_echo(json_output), clock=rollout_clock, db_url=db_url,
        precheck=_offline_precheck(offline_gate, retraining_config, db_url),
    )
    render_rollout(state, json_output)


def _offline_precheck(wanted: bool | None, retraining_config: Path | None, db_url: str) -> Precheck | None:
    """The off-policy precheck when asked for by the flag, else by retraining.bandit.offline_gate.required."""
    from datetime import timedelta

    from efimero.bandit.evaluate import offline_precheck
    from efimero.config import load_retraining_config

    bandit = load_retraining_config(retraining_config).retraining.bandit
    gate = bandit.offline_gate
    if not (gate.required if wanted is None else wanted):
        return None
    return offline_precheck(db_url, reward=bandit.reward, estimator=gate.estimator, margin=gate.margin,
                            min_effective_sample_size=gate.min_effective_sample_size,
                            window=timedelta(days=gate.window_days))


def _judge(state: RolloutState, retraining_config: Path | None) -> Judge:
    from efimero.config import load_retraining_config
    from efimero.deploy.rollout_checks import monitor_judge

    rules = load_retraining_config(retraining_config).retraining.monitoring
    return monitor_judge(state.db_url, rules)


@app.command()
@reports_errors
@tracked()
def step(
    target: str = typer.Option(..., help=TARGET_HELP),
    at: str = typer.Option(None, help=AT_HELP),
    retraining_config: Path = typer.Option(None, help=RETRAINING_HELP),
    lock_wait: float = typer.Option(60.0, min=0, help=LOCK_WAIT_HELP),
    config: Path = typer.Option(None, help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """One controller round: check the stage's window and advance, wait, halve or roll back."""
    from efimero.deploy.rollout import status as rollout_status
    from efimero.deploy.rollout import step as run_step
    from efimero.deploy.rollout_checks import clock_now

    environments = environments_config(config)
    state = rollout_status(target, environments=environments)
    now = parse_at(at) or clock_now(state.clock, state.db_url)
    state = run_step(target, now=now, judge=_judge(state, retraining_config), lock_wait_s=lock_wait,
                     environments=environments, echo=_echo(json_output))
    render_rollout(state, json_output)


@app.command()
@reports_errors
@tracked()
def watch(
    target: str = typer.Option(..., help=TARGET_HELP),
    interval: float = typer.Option(30.0, min=0.01, help="Seconds between rounds."),
    retraining_config: Path = typer.Option(None, help=RETRAINING_HELP),
    config: Path = typer.Option(None, help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Run controller rounds until the rollout completes, rolls back or is aborted."""
    from efimero.deploy.rollout import status as rollout_status
    from efimero.deploy.rollout import step as run_step
    from efimero.deploy.rollout_checks import clock_now

    environments = environments_config(config)
    state = rollout_status(target, environments=environments)
    judge = _judge(state, retraining_config)
    echo = _echo(json_output)
    while state.running:
        state = run_step(target, now=clock_now(state.clock, state.db_url), judge=judge, environments=environments,
                         echo=echo)
        if state.running:
            time.sleep(interval)
    render_rollout(state, json_output)


@app.command()
@reports_errors
def status(
    target: str = typer.Option(..., help=TARGET_HELP),
    config: Path = typer.Option(None, help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The running or last rollout of the target: stage, share, last check, timeline."""
    from efimero.deploy.rollout import status as rollout_status

    render_rollout(rollout_status(target, environments=environments_config(config)), json_output)


@app.command()
@reports_errors
def abort(
    target: str = typer.Option(..., help=TARGET_HELP),
    reason: str = typer.Option("aborted by an operator", help="Why; kept in the rollout and deployment records."),
    lock_wait: float = typer.Option(60.0, min=0, help=LOCK_WAIT_HELP),
    config: Path = typer.Option(None, help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Stop the running rollout: every visitor back on the live version."""
    from efimero.deploy.rollout import abort as abort_rollout
    from efimero.deploy.rollout import status as rollout_status
    from efimero.deploy.rollout_checks import clock_now

    environments = environments_config(config)
    state = rollout_status(target, environments=environments)
    state = abort_rollout(target, now=clock_now(state.clock, state.db_url), reason=reason, lock_wait_s=lock_wait,
                          environments=environments, echo=_echo(json_output))
    render_rollout(state, json_output)
