"""`efimero store forget|prune`: privacy and retention of the interaction store."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from efimero.cli._common import JSON_HELP, console, emit_json, reports_errors
from efimero.errors import EfimeroError

if TYPE_CHECKING:
    from efimero.store import Deleted

app = typer.Typer(help="Privacy and retention of the interaction store (forget a visitor, prune old logs).",
                  no_args_is_help=True)

DB_HELP = "Interaction store URL (SQLite or postgresql://...)."
_AGE = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_age(text: str) -> timedelta:
    """``90d``, ``12h`` or ``30m`` as a timedelta.

    Raises:
        EfimeroError: the text is not a whole number followed by d, h or m.
    """
    match = _AGE.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise EfimeroError(f"--older-than must be a positive whole number of days, hours or minutes such as 90d. "
                           f"Got {text!r} instead.")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@app.command()
@reports_errors
def forget(
    user_id: str = typer.Option(..., "--user-id", help="The visitor's user id, as the site sent it."),
    db: str = typer.Option("sqlite:///data/efimero.db", help=DB_HELP),
    pepper_file: Path | None = typer.Option(None, help="The service's user-id pepper file "
                                     "($EFIMERO_USER_ID_PEPPER wins; default as for `efimero serve`)."),
    batch_size: int = typer.Option(5000, min=1, help="Rows deleted per transaction."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Delete every interaction of one visitor and the page contexts they answered (right to erasure)."""
    from efimero.store import default_pepper_file, forget_user, load_pepper, open_engine

    engine = open_engine(db, create=False)
    try:
        pepper = load_pepper(pepper_file or default_pepper_file(db))
        deleted = forget_user(engine, user_id, pepper=pepper, batch_size=batch_size)
    finally:
        engine.dispose()
    _report(deleted, json_output, f"forgot user {user_id!r}")


@app.command()
@reports_errors
def prune(
    older_than: str = typer.Option("90d", help="Delete logs older than this (e.g. 90d, 12h)."),
    db: str = typer.Option("sqlite:///data/efimero.db", help=DB_HELP),
    batch_size: int = typer.Option(5000, min=1, help="Rows deleted per transaction (writers wait at most one)."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Delete predictions and interactions older than the retention period, in small batches."""
    from efimero.store import open_engine, prune_older_than

    age = parse_age(older_than)
    engine = open_engine(db, create=False)
    try:
        deleted = prune_older_than(engine, age, batch_size=batch_size)
    finally:
        engine.dispose()
    _report(deleted, json_output, f"pruned logs older than {older_than}")


def _report(deleted: Deleted, json_output: bool, what: str) -> None:
    counts = asdict(deleted)
    if json_output:
        emit_json(counts)
    else:
        console.print(f"{what}: {counts['predictions']} prediction(s), {counts['interactions']} interaction(s) "
                      f"deleted in {counts['batches']} batch(es)")
