"""`efimero usecase …` end to end through Typer's CliRunner: JSON on stdout, clear errors, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from efimero.cli.main import app
from tests.usecases.conftest import WriteUseCase, tiny_binary

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["usecase", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output.replace("\n", "")  # rich wraps long lines at the runner's width


def test_train_json_then_list_and_promote(write_usecase: WriteUseCase, models: Path) -> None:
    folder = write_usecase(tiny_binary()).parent
    code, out = _invoke("train", "tiny", "--dir", str(folder), "--models", str(models), "--json")
    assert code == 0, out
    trained = json.loads(out)
    assert trained["passed"] and trained["entry"]["status"] == "candidate" and trained["best"] == "logistic_regression"
    code, out = _invoke("list", "--dir", str(folder), "--models", str(models), "--json")
    assert code == 0 and json.loads(out)[0]["production"] is None
    code, out = _invoke("promote", "tiny", "1.0.0", "--models", str(models), "--json")
    assert code == 0 and json.loads(out)["promoted"]["status"] == "production"
    code, out = _invoke("list", "--dir", str(folder), "--models", str(models))
    assert code == 0 and "1.0.0" in out and "tiny" in out


def test_a_refused_model_exits_1_naming_the_failed_metric(write_usecase: WriteUseCase, models: Path) -> None:
    folder = write_usecase(tiny_binary(gate={"accuracy": 0.999})).parent
    code, out = _invoke("train", "tiny", "--dir", str(folder), "--models", str(models), "--json")
    assert code == 1
    result = json.loads(out)
    assert not result["passed"] and result["gate_failures"][0].startswith("accuracy ")
    code, out = _invoke("train", "tiny", "--dir", str(folder), "--models", str(models))
    assert code == 1 and "refused by the gate: accuracy" in out


def test_errors_name_the_file_and_key_without_a_traceback(write_usecase: WriteUseCase, models: Path) -> None:
    folder = write_usecase(tiny_binary(algorithms=[{"name": "xgboost", "grid": {"max_depth": 3}}])).parent
    code, out = _invoke("train", "tiny", "--dir", str(folder), "--models", str(models))
    assert code == 1 and "tiny.yaml: algorithms.0.grid.max_depth" in out and "Traceback" not in out
    code, out = _invoke("train", "nope", "--dir", str(folder), "--models", str(models), "--json")
    assert code == 1 and json.loads(out)["error"] == "ConfigError" and "nope.yaml: no such use case" in out
    code, out = _invoke("promote", "tiny", "1.0.0", "--models", str(models))
    assert code == 1 and "has no version '1.0.0'" in out
    code, out = _invoke("train", "--dir", str(folder))
    assert code == 1 and "KEY or --all" in out


def test_train_all_shows_a_summary_of_every_use_case(write_usecase: WriteUseCase, models: Path) -> None:
    write_usecase(tiny_binary())
    folder = write_usecase(tiny_binary("tiny_refused", gate={"accuracy": 0.999})).parent
    code, out = _invoke("train", "--all", "--dir", str(folder), "--models", str(models), "--json")
    assert code == 1  # one use case was refused
    rows = {row["key"]: row for row in json.loads(out)}
    assert rows["tiny"]["status"] == "candidate" and rows["tiny_refused"]["status"] == "refused"
    code, out = _invoke("train", "--all", "--dir", str(folder), "--models", str(models), "--algorithms",
                        "logistic_regression")
    assert "2 use case(s)" in out and "tiny_refused" in out


def test_generate_examples_writes_valid_use_cases(tmp_path: Path) -> None:
    code, out = _invoke("generate-examples", "--count", "16", "--output", str(tmp_path / "gen"), "--json")
    assert code == 0 and len(json.loads(out)["files"]) == 16


def test_help_shows_the_defaults() -> None:
    code, out = _invoke("train", "--help")
    assert code == 0 and "usecases" in out and "models/usecases" in out
