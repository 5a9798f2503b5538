"""Against a real ``mlflow server``: what each command logs, the registry mirror, read back with MlflowClient."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from efimero import tracking
from efimero._io import sha256_file
from efimero.cli.main import app
from efimero.deploy import deploy, rollback
from efimero.registry import Registry
from efimero.tracking.mirror import PENDING_FILE
from tests._postgres import free_port
from tests.deploy.conftest import environments

pytestmark = pytest.mark.slow


def runs(client, experiment: str, command: str | None = None) -> list:
    found = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=500)
    return [r for r in found if command is None or r.data.tags.get("efimero.command") == command]


def artefacts(client, run_id: str, path: str = "") -> set[str]:
    """Every artefact file of a run, recursively."""
    found = set()
    for item in client.list_artifacts(run_id, path or None):
        found |= artefacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def invoke(*args: str) -> str:
    """Run an efimero command; its stdout."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_train_logs_its_flags_metrics_trials_version_and_boosters_and_registers_it(
        tracking_to_server: str, client, small_csv: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    output = invoke("train", "--data", str(small_csv), "--output", str(models), "--tune-hyperparams",
                    "--tuner", "optuna", "--n-trials", "2", "--cv-folds", "2", "--n-jobs", "1",
                    "--study-storage", f"sqlite:///{tmp_path}/studies.db", "--json")
    version = json.loads(output)["version"]  # stdout is still JSON alone
    (run,) = runs(client, tracking_to_server, "train")
    assert run.info.status == "FINISHED"
    assert run.data.tags["efimero.version"] == version
    assert run.data.params["cli.tune_hyperparams"] == "True"
    assert run.data.params["hyperparameters.css_class_theme.max_depth"]
    assert 0 < run.data.metrics["summary.mean_accuracy"] <= 1
    assert "classification.css_class_theme.accuracy" in run.data.metrics
    files = artefacts(client, run.info.run_id)
    version_dir = models / version
    assert {f"efimero/{version}/{name}" for name in json.loads((version_dir / "MANIFEST.json").read_text())["files"]
            } <= files
    trials = runs(client, tracking_to_server, "trial")
    assert len(trials) == 2 * 4  # two candidates for each of the four models
    assert {t.data.tags["mlflow.parentRunId"] for t in trials} == {run.info.run_id}
    assert all("accuracy.mean" in t.data.metrics or "r2.mean" in t.data.metrics for t in trials)

    import mlflow.xgboost

    logged = client.search_logged_models([run.info.experiment_id])
    assert {m.name for m in logged} == {"css_class_density", "css_class_font", "css_class_theme", "css_variables"}
    booster = mlflow.xgboost.load_model(f"models:/{logged[0].model_id}")
    assert booster.num_boosted_rounds() > 0

    (model_version,) = client.search_model_versions(f"name = 'css-{tracking_to_server}'")
    tags = model_version.tags
    assert tags["efimero.version"] == version
    assert tags["efimero.manifest_sha256"] == sha256_file(version_dir / "MANIFEST.json")
    assert tags["efimero.data_sha256"] == sha256_file(small_csv)
    assert tags["efimero.sha256.metrics.json"] == sha256_file(version_dir / "metrics.json")
    assert model_version.run_id == run.info.run_id


def test_compare_logs_the_verdict_the_metrics_and_the_report(
        tracking_to_server: str, client, tiny_registry, small_csv: Path, tmp_path: Path) -> None:
    root, (old, new) = tiny_registry
    invoke("compare", "--model-a", str(root / old), "--model-b", str(root / new), "--test-data", str(small_csv),
           "--export-report", "--output", str(tmp_path / "comparison"), "--n-bootstrap", "50")
    (run,) = runs(client, tracking_to_server, "compare")
    assert run.data.tags["compare.verdict"] in ("B better", "no significant difference", "B worse")
    assert (run.data.tags["compare.version_a"], run.data.tags["compare.version_b"]) == (old, new)
    assert "compare.css_class_theme.b_minus_a.observed" in run.data.metrics
    assert "compare.css_class_theme.a.accuracy" in run.data.metrics
    assert {"comparison/compare.html", "comparison/compare.json", "comparison/compare_accuracy.png",
            "comparison/compare_rmse.png"} <= artefacts(client, run.info.run_id)


def test_retraining_runs_log_their_outcome_and_register_the_version_they_save(
        tracking_to_server: str, client, registry_copy, small_csv: Path) -> None:
    root, _ = registry_copy()
    invoke("retrain", "incremental", "--data", str(small_csv), "--models", str(root), "--min-improvement", "0",
           "--max-new-trees", "2")
    (incremental,) = runs(client, tracking_to_server, "retrain-incremental")
    assert incremental.data.tags["efimero.retrain.strategy"] == "incremental"
    assert incremental.data.tags["efimero.retrain.status"] in ("success", "no_improvement")
    assert "scores.new_holdout.current.combined" in incremental.data.metrics
    invoke("retrain", "full", "--data", str(small_csv), "--output", str(root), "--cv-folds", "0")
    (full,) = runs(client, tracking_to_server, "retrain-full")
    assert full.data.tags["efimero.retrain.status"] in ("success", "not_better")
    assert full.data.tags["compare.verdict"]  # the comparison with the live version, logged into the same run
    saved = full.data.tags["efimero.version"]
    assert saved in Registry(root).versions()
    registered = client.search_model_versions(f"name = 'css-{tracking_to_server}'")
    assert saved in {mv.tags["efimero.version"] for mv in registered}


def test_deployments_and_a_rollback_move_the_aliases_and_a_failed_mirror_is_retried(
        tracking_to_server: str, client, registry_copy, tmp_path: Path) -> None:
    root, (old, new) = registry_copy()
    config = environments(tmp_path)
    name = f"css-{tracking_to_server}"
    with tracking.tracking_to(f"http://127.0.0.1:{free_port()}"):  # the server is away: production goes on
        assert deploy(root, "production", version=old, environments=config).status == "success"
    assert json.loads((tmp_path / "prod" / PENDING_FILE).read_text())["production"]["version"] == old

    staged = deploy(root, "staging", version=new, environments=config)
    assert staged.steps[-1].name == "mlflow mirror" and staged.steps[-1].ok, staged.steps[-1].detail
    assert client.get_model_version_by_alias(name, "staging").tags["efimero.version"] == new
    live = deploy(root, "production", version=new, environments=config)
    assert live.steps[-1].ok, live.steps[-1].detail
    assert client.get_model_version_by_alias(name, "production").tags["efimero.version"] == new
    assert not (tmp_path / "prod" / PENDING_FILE).exists()

    back = rollback("production", environments=config)
    assert back.status == "success" and back.version == old
    assert back.steps[-1].name == "mlflow mirror" and back.steps[-1].ok
    assert client.get_model_version_by_alias(name, "production").tags["efimero.version"] == old
    assert client.get_model_version_by_alias(name, "staging").tags["efimero.version"] == new
    versions = {mv.tags["efimero.version"]: mv for mv in client.search_model_versions(f"name = '{name}'")}
    assert set(versions) == {old, new}  # each registered once, by the mirror ("register" runs)
    assert {r.data.tags["efimero.version"] for r in runs(client, tracking_to_server, "register")} == {old, new}
    assert set(client.get_model_version(name, versions[old].version).aliases) == {"production"}
