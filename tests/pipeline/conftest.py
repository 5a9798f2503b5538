"""A project directory the weekly pipeline runs in: a registry with a live version, a store of judged sessions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from efimero.config import load_environments_config
from efimero.deploy import deploy
from tests.collect.conftest import ENGAGED, contexts, crafted_store  # noqa: F401 - fixture

SESSIONS = 120
"""Judged sessions in the store (every one confirms the served style: a labelled row)."""


def project_config(store_url: str, *, min_new_samples: int = 50) -> dict:
    """A retraining.yaml for small numbers: incremental retraining that saves what it makes, a safe rollout."""
    return {"retraining": {
        "models_dir": "models",
        "triggers": {"data_volume": {"min_new_samples": min_new_samples, "collection_window_days": 7}},
        "strategies": {
            "incremental": {"parameters": {"min_samples": 20, "min_improvement_threshold": -1.0,
                                           "forgetting_tolerance": 1.0}},
            "full": {"on_performance_trigger": False, "on_drift_trigger": False, "min_days_since_last": 1000,
                     "parameters": {"cv_folds": 0}}},
        "deployment": {"target": "production", "strategy": "safe", "monitoring_duration_hours": 12},
        "data_collection": {"db_url": store_url, "min_session_duration": 0, "output_dir": "data/production"},
    }}


@pytest.fixture
def weekly_project(tmp_path: Path, registry_copy, crafted_store) -> tuple[Path, list[str]]:  # noqa: F811
    """(project dir, registry versions): models/ (its last version live, and deployed to production),
    a store of :data:`SESSIONS` judged sessions, config/retraining.yaml and config/environments.yaml."""
    root, versions = registry_copy()
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    shutil.copytree(root, project / "models", symlinks=True)
    url = crafted_store((context, ENGAGED) for context in contexts(SESSIONS, seed=4))
    (project / "config" / "retraining.yaml").write_text(yaml.safe_dump(project_config(url)))
    environments = project / "config" / "environments.yaml"
    environments.write_text(yaml.safe_dump({"environments": {"production": {"model_dir": str(project / "prod")}}}))
    assert deploy(project / "models", "production", version=versions[-1], validate=False,
                  environments=load_environments_config(environments)).status == "success"
    return project, versions
