"""Environments for deployments, and a version that never saw one class (a different contract)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from efimero._api import train
from efimero.config import EnvironmentsConfig
from efimero.data import write_table
from tests.conftest import fast_config

MISSING_CLASS = "tema-alto-contraste"
"""The css_class_theme label the ``narrow_registry`` version was never trained on."""


def environments(tmp_path: Path, *, production_accuracy: float = 0.3) -> EnvironmentsConfig:
    return EnvironmentsConfig.model_validate({"environments": {
        "staging": {"model_dir": tmp_path / "staging", "validation_required": True, "backup_enabled": True,
                    "performance_threshold": {"latency_ms": 100, "accuracy_min": 0.3}},
        "production": {"model_dir": tmp_path / "prod", "validation_required": True, "backup_enabled": True,
                       "rollback_enabled": True, "max_versions_to_keep": 2,
                       "performance_threshold": {"latency_ms": 50, "accuracy_min": production_accuracy}},
    }})


def steps(record) -> list[tuple[str, bool]]:
    return [(s.name, s.ok) for s in record.steps]


@pytest.fixture
def source(registry_copy) -> tuple[Path, list[str]]:
    return registry_copy()


@pytest.fixture(scope="session")
def narrow_registry(tmp_path_factory: pytest.TempPathFactory, small_frame: pd.DataFrame) -> tuple[Path, str]:
    """(registry, version) trained without any ``MISSING_CLASS`` row; read it, never change it."""
    directory = tmp_path_factory.mktemp("narrow")
    rows = small_frame[small_frame["css_class_theme"] != MISSING_CLASS]
    data = write_table(rows, directory / "narrow.csv")
    run = train(data, output=directory / "models", config=fast_config())
    return directory / "models", run.version
