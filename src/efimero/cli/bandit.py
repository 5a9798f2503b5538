"""`efimero explore set|show|off` and `efimero evaluate-offline`: exploration and off-policy estimates."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from efimero.cli._common import JSON_HELP, console, emit_json, given, reports_errors
from efimero.cli.monitor import window_end
from efimero.errors import ConfigError

if TYPE_CHECKING:
    from efimero.bandit.evaluate import GateVerdict, OfflineEvaluation
    from efimero.config import RetrainingSettings
    from efimero.registry import ExplorationPolicy

app = typer.Typer(help="How a deployment explores its class labels (logged with their propensities).",
                  no_args_is_help=True)

MODELS_HELP = "Registry of the deployment (its exploration.json). \\[default: models_dir of the config]"
CONFIG_HELP = ("Retraining YAML with retraining.bandit (reward, exploration defaults, offline gate). "
               "\\[default: retraining.yaml in $EFIMERO_CONFIG_DIR, else config/, when present]")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([mhd])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str, option: str) -> timedelta:
    """``30m``, ``12h`` or ``7d`` as a timedelta.

    Raises:
        ConfigError: not a number followed by m, h or d.
    """
    match = _DURATION.match(text.strip())
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(f"{option} must be a positive duration such as 30m, 12h or 7d. Got {text!r} instead.")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def bandit_settings(config: Path | None, models: Path | None, db: str | None = None) -> RetrainingSettings:
    from efimero.config import load_retraining_config

    overrides: dict[str, Any] = {}
    if models is not None:
        overrides["models_dir"] = models
    if db is not None:
        overrides["data_collection"] = {"db_url": db}
    return load_retraining_config(config, overrides={"retraining": overrides}).retraining


def _describe(policy: ExplorationPolicy | None) -> dict[str, Any]:
    if policy is None:
        return {"mode": "greedy", "policy_id": "greedy"}
    return policy.model_dump(mode="json", exclude={"salt"}) | {"policy_id": policy.policy_id}


def _print_policy(root: Path, policy: ExplorationPolicy | None) -> None:
    if policy is None:
        console.print(f"{root}: greedy (every visitor gets the model's labels; propensity 1 is logged)")
        return
    rate = f"epsilon {policy.epsilon:g}" if policy.mode == "epsilon_greedy" else f"temperature {policy.temperature:g}"
    console.print(f"{root}: {policy.mode}, {rate}, holdout {policy.holdout_share:.0%}, policy {policy.policy_id}, "
                  f"{len(policy.guardrails)} guardrail(s)", highlight=False)
    for rail in policy.guardrails:
        console.print(f"  {escape(rail.slot)} when {escape(str(rail.when))}: never below the greedy label's rank "
                      f"in {escape(str(rail.rank))}", highlight=False)


@app.command("set")
@reports_errors
def set_exploration(
    ctx: typer.Context,
    models: Path = typer.Option(None, help=MODELS_HELP),
    mode: str = typer.Option("epsilon_greedy", help="greedy, epsilon_greedy or softmax. "
                             "\\[default: retraining.bandit.exploration.mode]"),
    epsilon: float = typer.Option(0.1, min=0, max=1, help="Share of explored slot choices. "
                                  "\\[default: retraining.bandit.exploration.epsilon]"),
    temperature: float = typer.Option(1.0, min=0.01, max=100, help="Softmax temperature. "
                                      "\\[default: retraining.bandit.exploration.temperature]"),
    holdout: float = typer.Option(0.05, min=0, max=0.99, help="Share of visitors never explored. "
                                  "\\[default: retraining.bandit.exploration.holdout_share]"),
    salt: str = typer.Option(None, help="Seeds the draws and the holdout. \\[default: a new random salt]"),
    config: Path = typer.Option(None, help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Start exploring (servers follow at their next poll): the guardrails come from the config.

    Each prediction then logs, per class slot, the label served and the probability it had, which
    `efimero evaluate-offline` needs. Variables are never explored, only class labels.
    """
    from efimero.registry import ExplorationPolicy, Registry

    settings = bandit_settings(config, models)
    defaults = settings.bandit.exploration.model_dump()
    typed = given(ctx, mode="mode", epsilon="epsilon", temperature="temperature", holdout_share="holdout")
    try:
        policy = ExplorationPolicy.model_validate(defaults | typed | {"salt": salt or secrets.token_hex(8)})
    except ValueError as exc:
        raise ConfigError(f"exploration settings are invalid: {exc}") from None
    registry = Registry(settings.models_dir)
    registry.set_exploration(policy)
    if json_output:
        emit_json({"models": str(settings.models_dir), **_describe(policy)})
        return
    _print_policy(settings.models_dir, policy)


@app.command("show")
@reports_errors
def show_exploration(
    models: Path = typer.Option(None, help=MODELS_HELP),
    config: Path = typer.Option(None, help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """How the deployment explores now."""
    from efimero.registry import Registry

    root = bandit_settings(config, models).models_dir
    policy = Registry(root).exploration()
    if json_output:
        emit_json({"models": str(root), **_describe(policy)})
        return
    _print_policy(root, policy)


@app.command("off")
@reports_errors
def exploration_off(
    models: Path = typer.Option(None, help=MODELS_HELP),
    config: Path = typer.Option(None, help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Stop exploring: every visitor gets the model's labels again."""
    from efimero.registry import Registry

    root = bandit_settings(config, models).models_dir
    Registry(root).set_exploration(None)
    if json_output:
        emit_json({"models": str(root), **_describe(None)})
        return
    _print_policy(root, None)


@reports_errors
def evaluate_offline(
    candidate: str = typer.Option(..., help="Registry version to estimate, e.g. v_20261127_101500."),
    models: Path = typer.Option(None, help="Registry holding the candidate and the deployment's exploration.json. "
                                "\\[default: models_dir of the config]"),
    db: str = typer.Option(None, "--db", "--db-url",
                           help="Interaction store URL. \\[default: data_collection.db_url of the config]"),
    since: str = typer.Option("7d", help="Logged visits of this long before the window's end (30m, 12h, 7d)."),
    until: str = typer.Option(None, help="End of the window, ISO 8601. \\[default: just after the newest visit]"),
    greedy: bool = typer.Option(False, "--greedy", help="Estimate the candidate's greedy labels instead of the "
                                "candidate as it would be deployed (under the registry's exploration policy)."),
    confidence: float = typer.Option(0.95, min=0.5, max=0.999, help="Level of the confidence intervals."),
    seed: int = typer.Option(0, help="Seed of the reward model's cross-fitting folds."),
    config: Path = typer.Option(None, help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Estimate a candidate's mean reward on logged visits (IPS, SNIPS, DR), before anyone sees it.

    Beside the estimates: what each logged arm really earned, the effective sample size, the share
    of visits where the candidate's labels are the ones served, and the offline gate's verdict
    with the margins of retraining.bandit.offline_gate.
    """
    from efimero.bandit.evaluate import evaluate_in_store, offline_verdict
    from efimero.registry import Registry
    from efimero.store import open_engine

    settings = bandit_settings(config, models, db)
    length = parse_duration(since, "--since")
    registry = Registry(settings.models_dir)
    engine = open_engine(settings.data_collection.db_url, create=False)
    try:
        end, source = window_end(engine, until)
        evaluation = evaluate_in_store(
            engine, registry, candidate, start=end - length, end=end, reward=settings.bandit.reward,
            exploration=None if greedy else registry.exploration(), confidence=confidence, seed=seed)
    finally:
        engine.dispose()
    gate = settings.bandit.offline_gate
    verdict = offline_verdict(evaluation, estimator=gate.estimator, margin=gate.margin,
                              min_effective_sample_size=gate.min_effective_sample_size)
    if json_output:
        emit_json({**evaluation.to_dict(), "window": {"start": end - length, "end": end, "end_from": source},
                   "gate": verdict.to_dict()})
        return
    _show(evaluation, verdict, f"{since} up to {end:%Y-%m-%d %H:%M} UTC ({source})")


def _show(evaluation: OfflineEvaluation, verdict: GateVerdict, window: str) -> None:
    table = Table(title=f"{evaluation.candidate} ({evaluation.target_policy}) on {evaluation.used} logged visits, "
                  f"{window}; reward {evaluation.reward_version}", title_justify="left")
    for column in ("estimate", "mean reward", "95 % CI", "std error", "n"):
        table.add_column(column, justify="left" if column == "estimate" else "right")
    for name, estimate in evaluation.estimates.items():
        table.add_row(name.upper(), f"{estimate.value:.4f}", f"[{estimate.ci_low:.4f}, {estimate.ci_high:.4f}]",
                      f"{estimate.std_error:.4f}", str(estimate.n))
    for arm, estimate in evaluation.realised.items():
        table.add_row(f"realised ({escape(arm)})", f"{estimate.value:.4f}",
                      f"[{estimate.ci_low:.4f}, {estimate.ci_high:.4f}]", f"{estimate.std_error:.4f}", str(estimate.n))
    console.print(table)
    console.print(f"effective sample size {evaluation.effective_sample_size:.0f} of {evaluation.used}; the candidate "
                  f"agrees with what was served on {evaluation.agreement:.1%}; {evaluation.pending} still pending",
                  highlight=False)
    for note in evaluation.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    state = {True: "[green]passes[/]", False: "[red]fails[/]", None: "[yellow]could not run[/]"}[verdict.passed]
    console.print(f"offline gate {state}: {escape(verdict.reason)}", highlight=False)
