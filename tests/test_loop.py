"""The whole retraining loop end to end, on small numbers: does retraining win back the visitors?

train on synthetic data → deploy to staging → serve staging → simulate two weeks with a drift
→ auto-retrain --mode check (drift and performance triggers) → --mode force with deployment →
simulate the drifted regime again: engagement must be measurably higher.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from efimero._api import train
from efimero.collect import collect
from efimero.config import load_retraining_config, load_training_config
from efimero.data import read_table, write_table
from efimero.data.generate import generate_dataset
from efimero.deploy import deploy
from efimero.monitor import detect_drift
from efimero.registry import Registry
from efimero.pipeline import auto_retrain, read_runs
from efimero.schema import CSS_TASK
from efimero.serve import ServeSettings
from efimero.simulate import SHIFTED_FEATURES, simulate
from tests.serve.conftest import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    environments = {"environments": {"staging": {
        "model_dir": "models/staging", "validation_required": True, "backup_enabled": True,
        "performance_threshold": {"latency_ms": 100, "accuracy_min": 0.5}}}}
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "environments.yaml").write_text(yaml.safe_dump(environments))
    return tmp_path


def test_retraining_wins_back_engagement_after_a_drift(workspace: Path) -> None:
    data = write_table(generate_dataset(3000, seed=42), workspace / "data" / "train.csv")
    config = load_training_config(overrides={"training": {"data": {"cv_folds": 0}}})
    first = train(data, output="models", config=config).version
    assert deploy("models", "staging").status == "success"

    retraining = load_retraining_config(overrides={"retraining": {
        "models_dir": "models",
        "data_collection": {"db_url": f"sqlite:///{workspace}/store.db", "min_session_duration": 0},
        "triggers": {"data_volume": {"collection_window_days": 7, "min_new_samples": 200},
                     "drift": {"feature_drift_threshold": 0.1}},
        "strategies": {"full": {"parameters": {"cv_folds": 0}}},
        "deployment": {"auto_deploy": True, "target": "staging", "strategy": "immediate"},
    }})
    settings = ServeSettings(models_dir=workspace / "models" / "staging", db_url=retraining.retraining.data_collection.db_url,
                             poll_interval_s=0.05)
    with LiveServer(settings) as server:
        before = simulate(server.url, visitors=1400, days=14, drift_day=7, seed=1, concurrency=4)
        assert before.failures == 0
        drifted = before.phases["after_drift"]

        # the drift report flags what the simulator shifted, and nothing else
        collected = collect(settings.db_url, start_date=date(2026, 11, 8), end_date=date(2026, 11, 14))
        report = detect_drift(read_table(data)[CSS_TASK.feature_names], collected.frame[CSS_TASK.feature_names])
        assert set(report.drifted_features) == set(SHIFTED_FEATURES)

        checked = auto_retrain(retraining, mode="check")
        fired = set(checked.fired)
        assert {"feature_drift", "performance"} <= fired, checked.triggers
        assert checked.outcome == "checked" and checked.strategy == "full"
        assert Registry("models").current() == first

        forced = auto_retrain(retraining, mode="force")
        assert forced.outcome == "success", (forced.error, forced.stages)
        assert [s["stage"] for s in forced.stages] == ["collect", "triggers", "retrain", "validate", "deploy"]
        assert Registry("models/staging").current() == forced.new_version != first
        server.wait_for_version(forced.new_version)

        after = simulate(server.url, visitors=700, days=7, drift_day=0, seed=2, concurrency=4,
                         start_date=date(2026, 11, 15))
    regained = after.phases["after_drift"]
    print(f"after drift: session {drifted.mean_session_s:.1f} s, match {drifted.mean_match_score:.3f}, "
          f"online accuracy {drifted.online_accuracy:.3f}; after retraining: session {regained.mean_session_s:.1f} s, "
          f"match {regained.mean_match_score:.3f}, online accuracy {regained.online_accuracy:.3f}")
    assert regained.mean_session_s > drifted.mean_session_s * 1.15
    assert regained.online_accuracy > drifted.online_accuracy + 0.1
    assert [run["outcome"] for run in read_runs("models")] == ["checked", "success"]
