"""The README's examples run, top to bottom, as written.

In one temporary directory, in README order: every ``efimero`` line of its ```bash and ```text
blocks runs and must exit 0, its ```python block runs on the data, registry and store those
commands made, and the body of its ``curl`` example must be a valid ``/v1/predict`` request.
Every command and ``--flag`` the README shows anywhere (blocks, inline code, prose) must exist
and be listed by that command's ``--help``.

What the test changes, and why (each the least that lets an example run unattended, fast):

- The directory gets the repository's ``config/`` (the README runs from the repository root)
  with ``training.n_jobs: 1`` and ``training.data.cv_folds: 2``: threads and folds change only
  the cost here (``-1`` oversubscribes a shared 2-core machine many times over); every command
  and flag is still the README's.
- ``efimero serve`` serves until stopped, so it is not run (:data:`NOT_RUN`): from its line on,
  a real server (:class:`~tests.serve.conftest.LiveServer`) serves the registry and store that
  line names, on a free port, and the README's ``http://127.0.0.1:8000`` becomes its address.
- Version names are examples: ``v_20261125_153000`` stands for the first version the run
  trained and ``v_20261126_091500`` for the second.
- The cron line runs its ``efimero`` command, without its ``cd`` and log redirection.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import shlex
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from efimero.cli.main import app
from efimero.registry import Registry
from efimero.serve import ServeSettings, create_app
from tests.serve.conftest import LiveServer

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
README_URL = "http://127.0.0.1:8000"
EXAMPLE_VERSIONS = ("v_20261125_153000", "v_20261126_091500")  # the 1st and 2nd version trained
CLI = typer.main.get_command(app)

NOT_RUN = {
    ("serve",): "serves until stopped; a LiveServer serves the same registry and store instead",
}
"""Commands of the README that are not run, with the reason; their flags are checked all the same."""

RUN_ORDER = [
    "data generate", "data validate", "train", "train", "models list", "models compile", "validate", "serve",
    "store forget",
    "store retain", "store retain", "store load-simulated",
    "deploy", "deployments", "deploy", "deploy", "rollback", "rollback", "analyze",
    "data generate", "compare", "simulate", "collect", "collect", "drift", "drift", "monitor", "monitor",
    "rollout start", "rollout status", "rollout step", "rollout abort",
    "experiment start", "experiment status", "experiment stop", "explore set", "explore show", "evaluate-offline",
    "collect", "explore off", "retrain incremental", "retrain full", "auto-retrain", "auto-retrain",
]
"""The README's commands in order: the substitutions above rely on it (serve before the store)."""


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int  # the README line of its first content line


def blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    return [
        Block(m["lang"], m["body"], text[: m.start("body")].count("\n") + 1)
        for m in re.finditer(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```", text, flags=re.S | re.M)
    ]


def command_lines(block: Block) -> list[str]:
    """The ``efimero`` command lines of a bash or text block; a cron line's command alone."""
    lines = []
    for line in block.text.splitlines():
        if line.startswith("efimero "):
            lines.append(line)
        elif "bin/efimero " in line:  # 15 3 * * * cd /srv/efimero && .venv/bin/efimero ... >> log 2>&1
            lines.append("efimero " + line.split("bin/efimero ")[1].split(" >>")[0])
    return lines


def prose(text: str) -> str:
    """The README without its fenced blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


# -- every command and flag the README shows exists ---------------------------------------------

def resolve(words: list[str]) -> tuple[tuple[str, ...], Any] | None:
    """The longest command path that ``words`` starts with, and its (click) command."""
    command: Any = CLI
    path: list[str] = []
    for word in words:
        if word not in getattr(command, "commands", {}):
            break
        command = command.commands[word]
        path.append(word)
    return (tuple(path), command) if path else None


def walk(path: tuple[str, ...], command: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    """A command and, for a group, every command below it, each with its path."""
    yield path, command
    for name, child in getattr(command, "commands", {}).items():
        yield from walk((*path, name), child)


def options(command: Any) -> set[str]:
    return {"--help"} | {opt for p in command.params for opt in [*p.opts, *p.secondary_opts] if opt.startswith("--")}


@functools.cache
def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "250"})  # no wrapped flag names
    assert result.exit_code == 0, result.output
    return result.output


FLAG = re.compile(r"(?<![\w\"-])(--[a-z][a-z0-9-]*)(?![\w:-])(?:[ =]((?:[\w.-]+\|)+[\w.-]+))?")
"""``--flag``, and its choices when shown as ``--flag a|b|c``; not a CSS variable (``"--a-b"``, ``--a-b: 0``)."""


def help_problem(path: tuple[str, ...], command: Any, flag: str, choices: str) -> str | None:
    """Why ``efimero <path> --help`` does not show ``flag`` (accepting ``choices``), or ``None``."""
    name = " ".join(["efimero", *path])
    rows = [row for row in help_text(path).splitlines() if re.search(rf"{flag}(?![\w-])", row)]
    if flag not in options(command) or not rows:
        return f"`{name} --help` has no {flag}"
    accepted = re.search(r"[\[<]([\w.|-]+)[\]>]", rows[0])  # the flag's row: [realistic|extreme|balanced]
    if choices and not (accepted and set(choices.split("|")) <= set(accepted[1].split("|"))):
        return f"`{name} {flag}` accepts {accepted[1] if accepted else 'no fixed choices'}, not {choices}"
    return None


def check_flags(path: tuple[str, ...], command: Any, text: str, where: str) -> None:
    """Every ``--flag`` (and each choice of ``--flag a|b|c``) in ``text`` belongs to ``command``."""
    for flag, choices in FLAG.findall(text):
        problem = help_problem(path, command, flag, choices)
        assert problem is None, f"{where}: {problem}"


def test_every_command_and_flag_shown_exists() -> None:
    text = README.read_text(encoding="utf-8")
    checked = 0
    # In a line of a block or an inline code span, the flags after a command are its own.
    spans = [
        (f"README line {block.line + i}", line)
        for block in blocks() if block.lang in ("bash", "text", "")
        for i, line in enumerate(block.text.splitlines())
    ] + [(f"`{span}`", span) for span in re.findall(r"`(efimero [^`\n]+)`", prose(text))]
    for where, span in spans:
        for match in re.finditer(r"(?:^|[\s/])efimero ((?:[a-z][a-z-]*(?: |$))+)(.*?)(?=[\s/]efimero |$)", span):
            resolved = resolve(match[1].split())
            assert resolved, f"{where}: no such command `efimero {match[1].strip()}`"
            path, command = resolved
            rest = match[1].split()[len(path):]  # a positional argument, e.g. a file
            check_flags(path, command, " ".join([*rest, match[2].split(" >>")[0]]), where)  # not a log redirect
            checked += 1
    # A flag in prose belongs to a command its section names (a group names its subcommands).
    for section in re.split(r"^(?=#{2,3} )", prose(text), flags=re.M):
        named = [
            resolved
            for m in re.finditer(r"(?:efimero |`)((?:[a-z][a-z-]*(?: |`|$))+)", section)  # or `collect --x`
            if (resolved := resolve(m[1].replace("`", " ").split()))
        ] or [((), CLI)]  # the introduction: "Every command has `--help` ..."
        commands = dict(item for path, command in named for item in walk(path, command))
        for flag, choices in set(FLAG.findall(section)):
            problems = [help_problem(path, c, flag, choices) for path, c in commands.items()]
            assert None in problems, f"section {section.splitlines()[0]!r}: no command it names has {flag} {choices}"
            checked += 1
    assert checked > 50


def test_serve_help_mentions_every_flag_of_the_readme_serve_line() -> None:
    (line,) = [line for block in blocks() for line in command_lines(block) if line.startswith("efimero serve ")]
    shown = help_text(("serve",))
    for flag in re.findall(r"--[a-z][a-z-]*", line):
        assert re.search(rf"{flag}(?![\w-])", shown), f"`efimero serve --help` does not mention {flag}"


# -- the examples run ---------------------------------------------------------------------------

def edit_yaml(path: Path, keys: list[str], value: object) -> None:
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    node = config
    for key in keys[:-1]:
        node = node[key]
    assert keys[-1] in node, f"{path.name} has no {'.'.join(keys)}"
    node[keys[-1]] = value
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    edit_yaml(tmp_path / "config" / "training.yaml", ["training", "n_jobs"], 1)
    edit_yaml(tmp_path / "config" / "training.yaml", ["training", "data", "cv_folds"], 2)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def substitute(text: str, server: LiveServer | None) -> str:
    """The README's example version names and server address, made this run's."""
    versions = Registry("models").versions()
    for i, example in enumerate(EXAMPLE_VERSIONS):
        if example in text:
            assert len(versions) > i, f"{example} stands for version {i + 1}; models/ holds {versions}"
            text = text.replace(example, versions[i])
    if README_URL in text:
        assert server, f"{README_URL} is used before the README's `efimero serve` line"
        text = text.replace(README_URL, server.url)
    return text


def serve(line: str) -> LiveServer:
    """A server over the registry and store that the README's serve line names (parsed by the CLI)."""
    params = CLI.commands["serve"].make_context("serve", shlex.split(line)[2:]).params
    return LiveServer(ServeSettings(models_dir=Path(params["models"]).resolve(), db_url=params["db"]))


def post_curl_body(curl: str, models: Path, store: Path) -> None:
    assert "/v1/predict " in curl and "content-type: application/json" in curl, curl
    body = json.loads(re.search(r"-d '(.*)'", curl, flags=re.S)[1])
    settings = ServeSettings(models_dir=models, db_url=f"sqlite:///{store}")
    with TestClient(create_app(settings)) as client:
        response = client.post("/v1/predict", json=body)
    assert response.status_code == 200, response.text
    assert set(response.json()["css_classes"]) == {"density", "font", "theme"}


def test_readme_examples_run(workdir: Path) -> None:
    runner = CliRunner()
    ran: list[str] = []
    server: LiveServer | None = None
    with contextlib.ExitStack() as stack:
        for block in blocks():
            if block.lang == "python":
                code = "\n" * (block.line - 1) + substitute(block.text, server)  # tracebacks name README lines
                exec(compile(code, str(README), "exec"), {"__name__": "readme"})
                ran.append("python")
            elif block.lang == "bash" and block.text.startswith("curl "):
                post_curl_body(block.text, workdir / "models", workdir / "curl.db")
                ran.append("curl")
            elif block.lang in ("bash", "text"):
                for line in command_lines(block):
                    path, _ = resolve(shlex.split(line)[1:]) or ((), None)
                    ran.append(" ".join(path))
                    if path == ("serve",):
                        server = stack.enter_context(serve(line))
                    if path in NOT_RUN:
                        continue
                    command = substitute(line, server)
                    result = runner.invoke(app, shlex.split(command, comments=True)[1:])
                    assert result.exit_code == 0, f"README block at line {block.line}: {command}\n{result.output}"
    assert [name for name in ran if name not in ("python", "curl")] == RUN_ORDER
    assert ran.count("python") == 1 and ran.count("curl") == 1
