"""`efimero store forget|retain|load-simulated`: privacy, retention and bulk loading of the interaction store."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from efimero.cli._common import JSON_HELP, console, emit_json, progress_bar, reports_errors
from efimero.errors import EfimeroError

if TYPE_CHECKING:
    from efimero.store import Deleted

app = typer.Typer(help="Privacy, retention and bulk loading of the interaction store (forget a visitor, delete "
                  "old logs, load simulated logs).",
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
def retain(
    older_than: str | None = typer.Option(
        None, help="Delete logs older than this (e.g. 90d, 12h, 30m). Default: "
        "retraining.data_collection.data_retention_days of the config (90 days)."),
    db: str | None = typer.Option(None, help=DB_HELP + " Default: retraining.data_collection.db_url of the config "
                                  "(sqlite:///data/efimero.db)."),
    config: Path | None = typer.Option(None, help="retraining.yaml to read the defaults from "
                                       "(default: config/retraining.yaml, $EFIMERO_CONFIG_DIR)."),
    batch_size: int = typer.Option(5000, min=1, help="Rows deleted per transaction (writers wait at most one)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be deleted; delete nothing."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Delete predictions and interactions older than the retention period, in small batches.

    Predictions go with every interaction that answers them; interactions received before the
    cutoff go too. Each batch is one short transaction, so the service keeps writing meanwhile.
    """
    from efimero.config import load_retraining_config
    from efimero.store import open_engine, prune_older_than

    collection = load_retraining_config(config).retraining.data_collection
    age = parse_age(older_than) if older_than is not None else timedelta(days=collection.data_retention_days)
    shown = older_than or f"{collection.data_retention_days}d"
    engine = open_engine(db or collection.db_url, create=False)
    try:
        if dry_run or json_output:
            deleted = prune_older_than(engine, age, batch_size=batch_size, dry_run=dry_run)
        else:
            planned = prune_older_than(engine, age, dry_run=True)
            with progress_bar(planned.predictions + planned.interactions) as advance:
                deleted = prune_older_than(engine, age, batch_size=batch_size,
                                           progress=lambda p, i: advance("deleting old logs", p + i))
    finally:
        engine.dispose()
    what = f"logs older than {shown}"
    _report(deleted, json_output, f"would delete {what}" if dry_run else f"deleted {what}", dry_run=dry_run)


@app.command("prune", hidden=True)
@reports_errors
def prune(
    older_than: str = typer.Option("90d", help="Delete logs older than this (e.g. 90d, 12h)."),
    db: str = typer.Option("sqlite:///data/efimero.db", help=DB_HELP),
    batch_size: int = typer.Option(5000, min=1, help="Rows deleted per transaction (writers wait at most one)."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """The old name of `efimero store retain` (kept for scripts)."""
    from efimero.store import open_engine, prune_older_than

    age = parse_age(older_than)
    engine = open_engine(db, create=False)
    try:
        deleted = prune_older_than(engine, age, batch_size=batch_size)
    finally:
        engine.dispose()
    _report(deleted, json_output, f"pruned logs older than {older_than}")


@app.command("load-simulated")
@reports_errors
def load_simulated(
    rows: int = typer.Option(..., "--rows", min=1, help="How many logs (a prediction and its interaction each)."),
    db: str = typer.Option("sqlite:///data/efimero.db", help=DB_HELP + " Created (with the schema) if missing."),
    seed: int = typer.Option(42, help="Seed of every random draw: the same seed, rows, days, end and chunk size "
                             "give the same logs."),
    days: int = typer.Option(90, min=1, help="Simulated days the logs spread over, evenly."),
    end: datetime | None = typer.Option(None, formats=["%Y-%m-%d"],
                                        help="The day after the last simulated day (default: today, UTC)."),
    chunk_size: int = typer.Option(20_000, min=1, help="Most logs per chunk (one transaction each)."),
    method: str = typer.Option("auto", help="copy (PostgreSQL COPY), insert (executemany) or auto "
                               "(copy on PostgreSQL, insert on SQLite)."),
    defer_indexes: bool | None = typer.Option(
        None, "--defer-indexes/--keep-indexes",
        help="PostgreSQL: drop the logs' secondary indexes during the load and build them once at the end. "
        "Default: only when the store holds no log yet."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Fill a store with simulated interaction logs, fast (COPY on PostgreSQL), for sizing and benchmarks."""
    from efimero.store import open_engine
    from efimero.store.load import METHODS, load_simulated

    if method not in METHODS:
        raise EfimeroError(f"--method must be one of {', '.join(METHODS)}. Got {method!r} instead.")
    engine = open_engine(db)
    try:
        with progress_bar(rows, quiet=json_output) as advance:
            result = load_simulated(engine, rows, seed=seed, days=days, end=end.date() if end else None,
                                    chunk_size=chunk_size, method=method,  # type: ignore[arg-type]
                                    defer_indexes=defer_indexes,
                                    progress=lambda n: advance("writing logs", n))
    finally:
        engine.dispose()
    if json_output:
        emit_json(result.to_dict())
    else:
        console.print(f"wrote {result.rows:,} logs ({result.rows:,} predictions and interactions) over "
                      f"{result.days} days before {result.end.date()} by {result.method} in {result.seconds:.1f} s "
                      f"({result.rows_per_s:,.0f} logs/s)")


def _report(deleted: Deleted, json_output: bool, what: str, *, dry_run: bool = False) -> None:
    counts = asdict(deleted)
    if json_output:
        emit_json(counts | {"dry_run": dry_run} if dry_run else counts)
    elif dry_run:
        console.print(f"{what}: {counts['predictions']} prediction(s), {counts['interactions']} interaction(s) "
                      "(dry run: nothing deleted)")
    else:
        console.print(f"{what}: {counts['predictions']} prediction(s), {counts['interactions']} interaction(s) "
                      f"deleted in {counts['batches']} batch(es)")
