from __future__ import annotations

from datetime import date

import pytest

from efimero.collect import collect
from efimero.config import IncrementalParameters, load_environments_config, load_retraining_config
from efimero.data.validate import load_training_data
from efimero.registry import Registry
from efimero.pipeline import auto_retrain, read_runs
from efimero.retrain import incremental


def test_collected_rows_are_training_data(simulated, tmp_path) -> None:
    root, versions, url = simulated
    result = collect(url, start_date=date(2026, 11, 1), end_date=date(2026, 11, 8), output=tmp_path / "prod.csv",
                     export_metadata=True)
    assert result.quality.total == 600 and result.quality.invalid == 0
    assert sum(result.statuses.values()) == 600 and 0 < result.online_accuracy < 1
    frame, _ = load_training_data(tmp_path / "prod.csv")
    assert len(frame) == len(result.frame) > 100
    assert set(frame["sample_weight"]) <= {0.5, 1.0, 3.0}
    assert (tmp_path / "prod_metadata.json").is_file()
    later = collect(url, start_date=date(2026, 11, 5), end_date=date(2026, 11, 8))
    assert later.quality.total < 600 and later.online_accuracy < result.online_accuracy


def test_incremental_adds_at_most_max_new_trees_and_keeps_the_scaler(simulated, tmp_path) -> None:
    root, versions, url = simulated
    data = collect(url, days_back=8, output=tmp_path / "prod.csv").output
    live = Registry(root).load()
    settings = IncrementalParameters(max_new_trees=7, min_samples=50, min_improvement_threshold=-1.0,
                                     forgetting_tolerance=1.0)
    result = incremental([data], models=root, settings=settings)
    assert result.status == "success", result.reason
    updated = Registry(root).load()
    assert updated.version == result.version == Registry(root).current() != live.version
    for name, model in updated.models.items():
        grown = model.booster.num_boosted_rounds() - live.models[name].booster.num_boosted_rounds()
        assert 0 < grown <= 7, name
    assert (updated.preprocessor.mean == live.preprocessor.mean).all()
    assert updated.metadata["parent_version"] == live.version


def test_no_improvement_keeps_the_old_version_live(simulated, tmp_path) -> None:
    root, versions, url = simulated
    data = collect(url, days_back=8, output=tmp_path / "prod.csv").output
    before = Registry(root).versions()
    result = incremental([data], models=root, settings=IncrementalParameters(min_samples=50, min_improvement_threshold=10.0))
    assert result.status == "no_improvement" and "below 1000%" in result.reason
    assert Registry(root).current() == versions[-1] and Registry(root).versions() == before
    skipped = incremental([data], models=root, settings=IncrementalParameters(min_samples=100_000))
    assert skipped.status == "skipped" and "fewer than min_samples" in skipped.reason


def test_a_failed_run_leaves_the_live_model_untouched(simulated, tmp_path) -> None:
    root, versions, url = simulated
    config = load_retraining_config(overrides={"retraining": {
        "models_dir": str(root),
        "data_collection": {"db_url": url, "min_session_duration": 0, "output_dir": str(tmp_path / "prod"),
                            "max_samples_per_collection": 20},
        "strategies": {"full": {"parameters": {"cv_folds": 0}}},
    }})
    before = Registry(root).versions()
    run = auto_retrain(config, mode="force")
    assert run.outcome == "failed" and "at least 50 rows" in run.error, run
    assert Registry(root).current() == versions[-1]
    assert Registry(root).versions() == before
    assert not list((tmp_path / "prod").glob("*.csv"))
    [recorded] = read_runs(root)
    assert recorded["outcome"] == run.outcome and recorded["stages"][0]["stage"] == "collect"


@pytest.mark.parametrize("mode", ["check", "scheduled"])
def test_check_and_dry_runs_change_nothing(simulated, tmp_path, mode) -> None:
    root, versions, url = simulated
    config = load_retraining_config(overrides={"retraining": {
        "models_dir": str(root), "data_collection": {"db_url": url, "output_dir": str(tmp_path / "prod")},
        "triggers": {"data_volume": {"min_new_samples": 10**6}, "performance": {"enabled": False},
                     "drift": {"enabled": False}}}})
    run = auto_retrain(config, mode=mode, dry_run=mode == "scheduled")
    assert run.outcome == "checked" and run.new_version is None
    assert {t["name"] for t in run.triggers} == {"time", "data_volume", "performance", "negative_feedback",
                                                 "feature_drift", "prediction_drift"}
    assert Registry(root).versions() == versions and not (tmp_path / "prod").exists()


def test_auto_deploy_starts_a_safe_rollout_instead_of_switching_everyone(simulated, tmp_path, monkeypatch) -> None:
    from efimero.deploy import deploy
    from efimero.deploy.rollout import status

    root, versions, url = simulated
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "environments.yaml").write_text(
        f"environments:\n  production:\n    model_dir: {tmp_path / 'prod'}\n")
    assert deploy(root, "production", version=versions[-1], validate=False,
                  environments=load_environments_config()).status == "success"
    config = load_retraining_config(overrides={"retraining": {
        "models_dir": str(root),
        "data_collection": {"db_url": url, "min_session_duration": 0, "output_dir": str(tmp_path / "collected")},
        "strategies": {
            "incremental": {"parameters": {"min_samples": 50, "min_improvement_threshold": -1.0,
                                           "forgetting_tolerance": 1.0}},
            "full": {"on_performance_trigger": False, "on_drift_trigger": False, "min_days_since_last": 1000}},
        "deployment": {"auto_deploy": True, "target": "production", "monitoring_duration_hours": 12},
    }})
    run = auto_retrain(config, mode="force")
    assert run.outcome == "success", (run.error, run.stages)
    deployed = run.stages[-1]
    assert (deployed["stage"], deployed["strategy"], deployed["status"]) == ("deploy", "safe", "rollout started")
    prod = Registry(tmp_path / "prod")
    assert prod.current() == versions[-1] and prod.traffic().arm("canary").version == run.new_version
    state = status("production", environments=load_environments_config())
    assert state.plan.stages == (0.05, 0.10, 0.25, 0.50, 1.0) and state.plan.hold_minutes == 180
