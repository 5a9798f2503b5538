"""Training a use case: every algorithm tuned and compared, the best gated against the guide's thresholds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from efimero.usecases import UseCaseRegistry, load_usecase, train_usecase
from tests.usecases.conftest import WORKED, WriteUseCase, tiny_binary

FAST = {
    "breast_cancer": ["logistic_regression"],
    "wine": ["logistic_regression"],
    "diabetes": ["linear_regression"],
    "segmentation": ["kmeans", "dbscan"],
    "churn": ["logistic_regression"],
}
"""One or two quick algorithms per worked example; the slow test trains every algorithm each lists."""


def _beats_baseline(key: str, models: Path, algorithms: list[str] | None) -> None:
    path = models.parent / f"{key}.yaml"  # a copy: inferred features are written beside it, not into the repository
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(WORKED / f"{key}.yaml", path)
    result = train_usecase(path, models=models, algorithms=algorithms)
    metric = result.primary_metric
    assert result.passed, result.gate_failures
    for run in result.runs:
        assert run.error is None, run.error
    assert result.test[metric] > result.baseline_test[metric] + 0.1, (result.test, result.baseline_test)


@pytest.mark.parametrize("key", list(FAST))
def test_each_worked_example_beats_its_baseline_and_passes_its_gate(key: str, models: Path) -> None:
    _beats_baseline(key, models, FAST[key])


@pytest.mark.slow
@pytest.mark.parametrize("key", list(FAST))
def test_every_algorithm_of_each_worked_example_trains(key: str, models: Path) -> None:
    _beats_baseline(key, models, None)


def test_the_churn_gate_refuses_a_weak_model_naming_the_failed_metric(models: Path) -> None:
    spec = load_usecase(WORKED / "churn.yaml")
    weak = spec.model_copy(update={"features": [f for f in spec.features or [] if f.name in
                                                ("senior_citizen", "paperless_billing")]})
    result = train_usecase(weak, models=models, algorithms=["logistic_regression"])
    assert not result.passed and result.entry["status"] == "refused"
    assert any(failure.startswith("recall ") and "below the minimum 0.65" in failure
               for failure in result.gate_failures), result.gate_failures
    assert UseCaseRegistry(models).entries("churn")[-1]["gate_failures"] == result.gate_failures


def test_the_best_algorithm_is_chosen_on_validation_and_every_run_is_logged(
        write_usecase: WriteUseCase, models: Path) -> None:
    path = write_usecase(tiny_binary(algorithms=[
        {"name": "logistic_regression", "grid": {"C": [0.01, 1.0]}},
        {"name": "random_forest", "params": {"n_estimators": 20}, "grid": {"max_depth": [2, None]}},
    ]))
    result = train_usecase(path, models=models)
    best = max(result.runs, key=lambda run: run.validation["roc_auc"])
    assert result.best == best.algorithm
    assert all(run.candidates == 2 and run.cv["roc_auc"] is not None for run in result.runs)
    train_usecase(path, models=models, algorithms=["logistic_regression"])
    log = UseCaseRegistry(models).experiments("tiny")
    assert [record["algorithm"] for record in log] == ["logistic_regression", "random_forest", "logistic_regression"]
    assert sum(record["chosen"] for record in log) == 2
    assert len({record["run_id"] for record in log}) == 2


def test_random_and_optuna_tuning_stay_within_their_budget(write_usecase: WriteUseCase, models: Path) -> None:
    grid = {"name": "logistic_regression", "grid": {"C": [0.01, 0.1, 1.0, 10.0]}}
    for tuning, most in (({"method": "random", "n_iter": 2}, 2), ({"method": "optuna", "n_trials": 3}, 3)):
        result = train_usecase(write_usecase(tiny_binary(algorithms=[grid], tuning=tuning)), models=models)
        assert 1 <= result.runs[0].candidates <= most


def test_the_same_seed_gives_the_same_model(write_usecase: WriteUseCase, models: Path) -> None:
    path = write_usecase(tiny_binary())
    first, again = (train_usecase(path, models=models, seed=3) for _ in range(2))
    assert first.test == again.test and first.runs[0].params == again.runs[0].params


def test_a_stored_use_case_masks_the_password_of_its_sql_url() -> None:
    from efimero.usecases._train import _without_secrets

    stored = _without_secrets({"data": {"sql": {"url": "postgresql://ml:s3cret@db/crm", "query": "SELECT 1"}}})
    assert stored["data"]["sql"]["url"] == "postgresql://ml:***@db/crm"
