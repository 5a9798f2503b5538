"""The CLI end to end on small data, through Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from efimero.cli.main import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def text(output: str) -> str:
    """Output with rich's line wrapping undone, for phrase assertions."""
    return " ".join(output.split())


@pytest.fixture
def fast_yaml(tmp_path: Path) -> Path:
    few = {"n_estimators": 15, "max_depth": 4}
    path = tmp_path / "training.yaml"
    training = {"data": {"cv_folds": 2}, "models": {"classifier": few, "regressor": few}, "n_jobs": 1}
    path.write_text(yaml.safe_dump({"training": training}))
    return path


def test_generate_validate_train_list_validate(tmp_path: Path, fast_yaml: Path) -> None:
    data, models = tmp_path / "train.csv", tmp_path / "models"
    result = invoke("data", "generate", "--size", 400, "--output", data, "--seed", 1,
                    "--user-patterns", "balanced", "--validate", "--export-metadata")
    assert result.exit_code == 0, result.output
    assert "wrote 400 rows" in text(result.output) and "validation passed" in text(result.output)
    assert (tmp_path / "train_metadata.json").is_file()

    assert invoke("data", "validate", data).exit_code == 0

    result = invoke("train", "--data", data, "--output", models, "--config", fast_yaml, "--random-state", 3)
    assert result.exit_code == 0, result.output
    assert "Class targets (test set)" in result.output and "set current" in text(result.output)

    listed = json.loads(invoke("models", "list", "--models", models, "--json").stdout)
    assert len(listed) == 1 and listed[0]["current"] and listed[0]["rows"]["total"] == 400

    result = invoke("validate", "--models", models, "--test-data", data, "--json")
    report = json.loads(result.stdout)
    assert [c["status"] for c in report["checks"]][:3] == ["PASS", "PASS", "PASS"], report
    assert result.exit_code == (0 if report["passed"] else 1)


def test_train_json_is_pure_json(tmp_path: Path, fast_yaml: Path, small_csv: Path) -> None:
    result = invoke("train", "--data", small_csv, "--output", tmp_path / "m", "--config", fast_yaml,
                    "--cv-folds", 0, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["metrics"]["cv"] == {} and payload["rows"]["total"] == 300
    assert payload["hyperparameters"]["css_class_theme"]["n_estimators"] == 15


def test_validate_exit_codes(registry_copy) -> None:
    root, versions = registry_copy()
    result = invoke("validate", "--models", root)
    assert result.exit_code == 0, result.output
    (root / versions[-1] / "models" / "css_variables.ubj").write_bytes(b"not a model")
    result = invoke("validate", "--models", root)
    assert result.exit_code == 1
    assert "FAIL" in result.stdout and "checksum mismatch" in text(result.stdout)
    assert invoke("validate", "--models", root, "--version", versions[0]).exit_code == 0


def test_bad_data_file_exits_1_with_the_rule_on_stderr(tmp_path: Path, small_frame) -> None:
    path = tmp_path / "bad.csv"
    small_frame.assign(hour_of_day=small_frame.hour_of_day.where(small_frame.index != 2, 31)).to_csv(path, index=False)
    result = invoke("data", "validate", path)
    assert result.exit_code == 1
    assert "column 'hour_of_day': must lie in [0, 23]" in text(result.stderr) and "first rows 3" in text(result.stderr)
    result = invoke("data", "validate", path, "--json")
    assert json.loads(result.stdout)["failures"][0]["column"] == "hour_of_day"


def test_user_errors_are_messages_not_tracebacks(tmp_path: Path, small_csv: Path) -> None:
    for args, message in [
        (("train", "--data", tmp_path / "none.csv", "--output", tmp_path / "m"), "no such data file"),
        (("train", "--data", small_csv, "--output", tmp_path / "m", "--config", tmp_path / "x.yaml"), "no such config file"),
        (("models", "list", "--models", tmp_path), "no versions yet"),
    ]:
        result = invoke(*args)
        assert message in text(result.output), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_every_command_has_help_with_defaults() -> None:
    for command in (["data", "generate"], ["data", "validate"], ["train"], ["models", "list"], ["validate"]):
        result = invoke(*command, "--help")
        assert result.exit_code == 0
    assert "default: 1000" in invoke("data", "generate", "--help").output.replace("[", "").replace("]", "")
