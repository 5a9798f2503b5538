"""`efimero collect`, `retrain incremental|full` and `auto-retrain` through the real CLI."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from efimero.cli.main import app
from efimero.data import write_table
from efimero.data.generate import generate_dataset

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_collect_then_retrain_from_the_cli(simulated, tmp_path) -> None:
    root, versions, url = simulated
    data = tmp_path / "prod.csv"
    write_table(generate_dataset(500, seed=5), tmp_path / "reference.csv")
    result = invoke("collect", "--db", url, "--days-back", 8, "--min-session-duration", 0, "--output", data,
                    "--validate", "--reference", data.with_name("reference.csv"), "--json")
    assert result.exit_code == 0, result.output
    collected = json.loads(result.stdout)
    assert collected["rows"] > 100 and collected["quality"]["recommendation"] in {"proceed", "caution", "abort"}

    result = invoke("retrain", "incremental", "--data", data, "--models", root, "--min-samples", 50,
                    "--min-improvement", 5, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "no_improvement"

    result = invoke("retrain", "full", "--data", data, "--output", root, "--cv-folds", 0, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] in {"success", "not_better"}


def test_auto_retrain_check_from_the_cli(simulated, tmp_path) -> None:
    root, versions, url = simulated
    config = tmp_path / "retraining.yaml"
    config.write_text(f"retraining:\n  models_dir: {root}\n  data_collection:\n    db_url: {url}\n")
    result = invoke("auto-retrain", "--mode", "check", "--config", config)
    assert result.exit_code == 0, result.output
    assert "Triggers" in result.output and "outcome: checked" in result.output
    result = invoke("auto-retrain", "--mode", "check", "--config", config, "--json")
    assert json.loads(result.stdout)["outcome"] == "checked"
