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
    # Seeded visitors and a reference drawn from the same design rules: only the hour features
    # move after the drift day, too little of the model's weight for a caution.
    assert collected["rows"] > 100 and collected["quality"]["recommendation"] == "proceed"

    result = invoke("retrain", "incremental", "--data", data, "--models", root, "--min-samples", 50,
                    "--min-improvement", 5, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "no_improvement"

    result = invoke("retrain", "full", "--data", data, "--output", root, "--cv-folds", 0, "--json")
    assert result.exit_code == 0, result.output
    # A few hundred collected rows cannot beat the live model significantly on its own held-out rows.
    full = json.loads(result.stdout)
    assert full["status"] == "not_better" and "no significant difference" in full["reason"]


def test_auto_retrain_check_from_the_cli(simulated, tmp_path) -> None:
    root, versions, url = simulated
    config = tmp_path / "retraining.yaml"
    config.write_text(f"retraining:\n  models_dir: {root}\n  data_collection:\n    db_url: {url}\n")
    result = invoke("auto-retrain", "--mode", "check", "--config", config)
    assert result.exit_code == 0, result.output
    assert "Triggers" in result.output and "outcome: checked" in result.output
    result = invoke("auto-retrain", "--mode", "check", "--config", config, "--json")
    assert json.loads(result.stdout)["outcome"] == "checked"


def test_readers_given_a_mistyped_store_url_fail_naming_it_and_create_nothing(registry_copy, tmp_path) -> None:
    typo = tmp_path / "dta" / "efimero.db"
    config = tmp_path / "retraining.yaml"
    config.write_text(f"retraining:\n  models_dir: {registry_copy()[0]}\n")  # the failed run is recorded there
    for args in (("collect", "--db", f"sqlite:///{typo}", "--output", tmp_path / "out.csv"),
                 ("auto-retrain", "--mode", "check", "--db", f"sqlite:///{typo}", "--config", config)):
        result = invoke(*args)
        assert result.exit_code == 1, result.output
        assert str(typo) in result.output and "does not exist" in result.output
        assert not typo.parent.exists()


def test_full_with_deploy_if_better_deploys_what_became_current(registry_copy, small_csv, tmp_path, monkeypatch) -> None:
    root, _ = registry_copy()
    monkeypatch.chdir(tmp_path)  # config/environments.yaml's staging model_dir is relative
    result = invoke("retrain", "full", "--data", small_csv, "--output", root, "--cv-folds", 0, "--no-compare",
                    "--deploy-if-better", "--target", "staging", "--json")
    assert result.exit_code == 0, result.output
    retrained = json.loads(result.stdout)
    assert retrained["status"] == "success" and retrained["scores"]["deployment"]["status"] == "success"
    staging = json.loads((tmp_path / "models" / "staging" / "deployments.json").read_text())
    assert staging["deployments"][-1]["version"] == retrained["version"]


def test_retraining_never_imports_deployment() -> None:
    import subprocess
    import sys

    script = "import sys, efimero.retrain, efimero.retrain.triggers; print('efimero.deploy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip() == "False"
