"""Small real objects built once per run: a seeded dataset and a tiny trained registry."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from efimero._api import train
from efimero.config import TrainingConfig, load_training_config
from efimero.data import write_table
from efimero.data.generate import generate_dataset
from tests._postgres import postgres_server, postgres_url, store_url  # noqa: F401 - shared fixtures

SMALL_ROWS = 300


def fast_config(**training: object) -> TrainingConfig:
    """A config that trains in well under a second: few trees, no CV, Optuna studies in memory."""
    few_trees = {"n_estimators": 15, "max_depth": 4, "early_stopping_rounds": 5}
    tuning = {"storage": None, **training.pop("tuning", {})}  # type: ignore[dict-item]
    overrides = {
        "training": {
            "data": {"cv_folds": 0},
            "models": {"classifier": few_trees, "regressor": few_trees},
            "n_jobs": 1,
            "tuning": tuning,
            **training,
        }
    }
    return load_training_config(overrides=overrides)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No EFIMERO_* variable (nor MLFLOW_TRACKING_URI, which turns tracking on) of the developer's shell leaks in."""
    import os

    for name in list(os.environ):
        if name.startswith("EFIMERO_") or name == "MLFLOW_TRACKING_URI":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def small_frame() -> pd.DataFrame:
    return generate_dataset(SMALL_ROWS, seed=3)


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory: pytest.TempPathFactory, small_frame: pd.DataFrame) -> Path:
    return write_table(small_frame, tmp_path_factory.mktemp("data") / "small.csv")


@pytest.fixture(scope="session")
def _tiny_registry(tmp_path_factory: pytest.TempPathFactory, small_csv: Path) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("registry") / "models"
    versions = [train(small_csv, output=root, config=fast_config()).version for _ in range(2)]
    return root, versions


@pytest.fixture
def registry_copy(tmp_path: Path, _tiny_registry: tuple[Path, list[str]]) -> Callable[[], tuple[Path, list[str]]]:
    """Factory: a private copy of the tiny two-version registry (the second is current)."""

    def make() -> tuple[Path, list[str]]:
        root, versions = _tiny_registry
        target = tmp_path / f"models-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(root, target)
        return target, list(versions)

    return make


@pytest.fixture(scope="session")
def tiny_registry(_tiny_registry: tuple[Path, list[str]]) -> tuple[Path, list[str]]:
    """The shared tiny registry; read it, never change it (use ``registry_copy`` for that)."""
    return _tiny_registry


def run_and_kill(script: str, *args: object, after_s: float) -> None:
    """Run ``script`` in a fresh interpreter, wait for its "ready" line, SIGKILL it ``after_s`` later."""
    import os
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    time.sleep(after_s)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
