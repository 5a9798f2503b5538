"""`efimero deploy`, `efimero rollback`, `efimero deployments`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from efimero.cli._common import JSON_HELP, console, emit_json, reports_errors
from efimero.cli._tracking import tracked

if TYPE_CHECKING:
    from efimero.deploy import DeploymentRecord, Step

TARGET_HELP = "Environment from config/environments.yaml (development, staging, production)."
CONFIG_HELP = "Environments YAML. \\[default: environments.yaml in $EFIMERO_CONFIG_DIR, else config/, when present]"
LOCK_WAIT_HELP = "Seconds to wait while another deploy or rollback of the target runs, then fail."


def _render(record: DeploymentRecord, json_output: bool) -> None:
    if json_output:
        emit_json(record.to_dict())
    else:
        verdict = "[green]SUCCESS[/]" if record.status == "success" else f"[red]FAILED[/]: {record.error}"
        console.print(f"{record.action} of {record.version} to {record.target}: {verdict}", highlight=False)
    if record.status != "success":
        raise typer.Exit(1)


def _echo(json_output: bool) -> Callable[[Step], None] | None:
    return None if json_output else (lambda step: console.print("  " + step.line(), highlight=False))


@reports_errors
@tracked()
def deploy(
    source: Path = typer.Option(Path("models"), help="Registry to deploy from."),
    target: str = typer.Option(..., help=TARGET_HELP),
    version: str = typer.Option("latest", help="Version name, 'latest' or 'current' of the source."),
    validate: bool = typer.Option(
        None, "--validate/--no-validate",
        help="Check the target's thresholds first. \\[default: validation_required of the target]"),
    backup_existing: bool = typer.Option(
        None, "--backup-existing/--no-backup",
        help="Back up the live version first. \\[default: backup_enabled of the target]"),
    test_data: Path = typer.Option(
        None, help="Labelled data for the accuracy threshold. \\[default: the test metrics recorded with the version]"),
    allow_contract_change: bool = typer.Option(
        False, "--allow-contract-change",
        help="Deploy even if the features, targets or classes differ from the live version's (recorded in the log)."),
    lock_wait: float = typer.Option(60.0, min=0, help=LOCK_WAIT_HELP),
    config: Path = typer.Option(None, help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Check the contract, validate, back up, copy (verified), switch atomically, smoke-test and record; any failure restores the target."""  # noqa: E501 - the command list shows this line as written
    from efimero.config import load_environments_config
    from efimero.deploy import deploy as run_deploy

    record = run_deploy(source, target, version=version, validate=validate, backup=backup_existing,
                        test_data=test_data, allow_contract_change=allow_contract_change, lock_wait_s=lock_wait,
                        environments=load_environments_config(config), echo=_echo(json_output))
    _render(record, json_output)


@reports_errors
@tracked()
def rollback(
    target: str = typer.Option(..., help=TARGET_HELP),
    to: str = typer.Option(None, help="Version to go back to. \\[default: the version live before the current one]"),
    lock_wait: float = typer.Option(60.0, min=0, help=LOCK_WAIT_HELP),
    config: Path = typer.Option(None, help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Point the target back at the previous (or named) version after verifying its integrity."""
    from efimero.config import load_environments_config
    from efimero.deploy import rollback as run_rollback

    record = run_rollback(target, to=to, lock_wait_s=lock_wait, environments=load_environments_config(config),
                          echo=_echo(json_output))
    _render(record, json_output)


@reports_errors
def deployments(
    target: str = typer.Option(..., help=TARGET_HELP),
    config: Path = typer.Option(None, help=CONFIG_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The deployment history of a target, newest first."""
    from efimero.config import load_environments_config
    from efimero.deploy import DeploymentLog

    environment = load_environments_config(config).get(target)
    records = list(reversed(DeploymentLog(environment.model_dir).records()))
    if json_output:
        emit_json(records)
        return
    table = Table(title=f"Deployments to {target} ({environment.model_dir})", caption="who and every step: --json")
    for column in ("started (UTC)", "action", "version", "previous", "status"):
        table.add_column(column, no_wrap=True)
    for r in records:
        status = {"success": "[green]success[/]", "failed": "[red]failed[/]"}.get(r["status"], "[yellow]interrupted[/]")
        table.add_row(r["started_at"][:16].replace("T", " "), r["action"], r["version"],
                      r["previous_version"] or "—", status)
    console.print(table)
