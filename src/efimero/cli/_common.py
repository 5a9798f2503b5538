"""Shared pieces of the CLI: consoles, error reporting, JSON output, progress bars."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from efimero.errors import EfimeroError

if TYPE_CHECKING:
    from efimero.css import StyleTokens

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

JSON_HELP = "Print the result as JSON on stdout (nothing else goes to stdout)."

TOKENS_HELP = ("A site's style tokens (YAML: class groups and CSS variables, like config/tokens/editorial.yaml). "
               "\\[default: efimero's own, 3 class groups and 8 variables]")


def style_tokens(path: Path | None) -> StyleTokens:
    """The tokens of ``--tokens``, or efimero's default tokens when it is not given."""
    from efimero.css import DEFAULT_TOKENS, load_tokens

    return DEFAULT_TOKENS if path is None else load_tokens(path)


def emit_json(payload: Any) -> None:
    """Write ``payload`` as JSON on stdout, bypassing rich markup."""
    typer.echo(json.dumps(payload, indent=2, default=str))


def given(ctx: typer.Context, **settings: str) -> dict[str, Any]:
    """The settings (name → CLI parameter) whose flag was typed, with its value.

    Only those override: a flag left at its default must not hide an ``EFIMERO_*`` variable or a
    config file, since defaults < file < environment < flags. Sources are told apart by name, as
    recent Typer releases vendor their own copy of click's ``ParameterSource``.
    """
    typed = {}
    for name, param in settings.items():
        source = ctx.get_parameter_source(param)
        if source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP"):
            typed[name] = ctx.params[param]
    return typed


def reports_errors(command: F) -> F:
    """Turn an :class:`EfimeroError` into a red message on stderr (or JSON) and exit 1.

    Any other exception is a bug and keeps its traceback.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EfimeroError as exc:
            if kwargs.get("json_output"):
                emit_json(exc.to_dict())
            else:
                err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from None

    return cast(F, wrapper)


@contextmanager
def progress_bar(total: int, *, quiet: bool = False) -> Iterator[Callable[[str, int], None]]:
    """A rich progress bar fed by ``advance(description, steps)``; on stderr when ``quiet``."""
    with Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console if quiet else console,
        transient=quiet,
    ) as progress:
        task_id = progress.add_task("starting", total=total)

        def advance(description: str, steps: int) -> None:
            progress.update(task_id, advance=steps, description=description)

        yield advance
        progress.update(task_id, description="done")
