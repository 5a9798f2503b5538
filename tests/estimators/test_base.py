"""The sidecar every saved estimator carries, and loading refusing what it cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from efimero.errors import EstimatorError, TrainingError
from efimero.estimators import SIDECAR, Estimator, load_estimator, make_estimator
from efimero.estimators._boosters import LightGBMEstimator, XGBoostEstimator


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    x = np.random.default_rng(0).normal(size=(80, 3))
    labels = np.where(x[:, 0] > 0, "yes", "no")
    make_estimator("xgboost", "binary", params={"n_estimators": 5}).fit(x, labels).save(tmp_path)
    return tmp_path


def edit_sidecar(directory: Path, **changes: object) -> None:
    path = directory / SIDECAR
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_string_labels_survive_the_round_trip(saved: Path) -> None:
    loaded = XGBoostEstimator.load(saved)
    assert loaded.labels is not None and loaded.labels.tolist() == ["no", "yes"]
    assert set(loaded.predict(np.zeros((2, 3)))) <= {"no", "yes"}


def test_loading_through_another_algorithms_class_is_refused(saved: Path) -> None:
    with pytest.raises(EstimatorError, match="is a xgboost model, not lightgbm"):
        LightGBMEstimator.load(saved)
    assert isinstance(Estimator.load(saved), XGBoostEstimator)


def test_a_directory_without_a_sidecar_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EstimatorError, match="holds no saved estimator"):
        load_estimator(tmp_path)


def test_a_newer_sidecar_format_is_refused_with_what_to_do(saved: Path) -> None:
    edit_sidecar(saved, format_version=99)
    with pytest.raises(EstimatorError, match=r"format_version 99; this efimero reads up to 1\. Upgrade efimero"):
        load_estimator(saved)


def test_a_sidecar_missing_keys_names_them(saved: Path) -> None:
    (saved / SIDECAR).write_text(json.dumps({"format_version": 1, "algorithm": "xgboost"}))
    with pytest.raises(EstimatorError, match="lacks key\\(s\\) task, params"):
        load_estimator(saved)


def test_validation_rows_need_their_targets_and_known_labels() -> None:
    x = np.random.default_rng(0).normal(size=(40, 2))
    y = (x[:, 0] > 0).astype(int)
    estimator = make_estimator("lightgbm", "binary", params={"n_estimators": 5})
    with pytest.raises(TrainingError, match="given together"):
        estimator.fit(x, y, X_val=x)
    with pytest.raises(TrainingError, match="unseen labels: 7"):
        estimator.fit(x, y, X_val=x[:3], y_val=[0, 1, 7])


def test_a_binary_task_refuses_three_classes_and_points_to_multiclass() -> None:
    x = np.zeros((9, 2))
    with pytest.raises(TrainingError, match=r"exactly two classes for task binary\. Got 3 .* use task multiclass"):
        make_estimator("logistic_regression", "binary").fit(x, [0, 1, 2] * 3)


def test_text_features_and_infinity_are_refused_clearly() -> None:
    estimator = make_estimator("xgboost", "regression")
    with pytest.raises(TrainingError, match="must hold numbers only"):
        estimator.fit([["a", 1.0], ["b", 2.0]], [1.0, 2.0])
    with pytest.raises(TrainingError, match=r"finite numbers. Got infinity in column\(s\) 1"):
        estimator.fit([[0.0, np.inf], [1.0, 2.0]], [1.0, 2.0])


def test_an_unknown_scikit_learn_hyperparameter_is_named() -> None:
    with pytest.raises(TrainingError, match=r"random_forest got a hyperparameter it does not have.*n_trees"):
        make_estimator("random_forest", "binary", params={"n_trees": 5}).fit(np.eye(4), [0, 1, 0, 1])


def test_an_unfitted_estimator_has_no_importance() -> None:
    with pytest.raises(EstimatorError, match="not fitted yet"):
        make_estimator("xgboost", "binary").importance()


def test_a_missing_model_file_is_named(saved: Path) -> None:
    (saved / "model.ubj").unlink()
    with pytest.raises(EstimatorError, match=r"lacks model\.ubj, which estimator\.json lists"):
        load_estimator(saved)
