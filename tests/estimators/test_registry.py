"""The algorithm registry: names, task kinds, default grids and the errors for what it does not know."""

from __future__ import annotations

import pytest

from efimero.errors import TrainingError, UnknownAlgorithmError
from efimero.estimators import ALGORITHMS, TaskKind, algorithm_class, algorithms_for, default_grid, make_estimator
from tests.estimators._cases import FAST_PARAMS, dataset

EXPECTED_TASKS = {
    "xgboost": {"binary", "multiclass", "regression", "multi_output"},
    "lightgbm": {"binary", "multiclass", "regression"},
    "random_forest": {"binary", "multiclass", "regression", "multi_output"},
    "logistic_regression": {"binary", "multiclass"},
    "linear_regression": {"regression", "multi_output"},
    "gradient_boosting": {"binary", "multiclass", "regression"},
    "mlp": {"binary", "multiclass", "regression", "multi_output"},
    "kmeans": {"clustering"},
    "dbscan": {"clustering"},
    "agglomerative": {"clustering"},
}


def test_every_algorithm_is_registered_with_its_task_kinds() -> None:
    assert {name: {kind.value for kind in cls.tasks} for name, cls in ALGORITHMS.items()} == EXPECTED_TASKS


def test_every_task_kind_has_algorithms_in_registry_order() -> None:
    assert algorithms_for("clustering") == ["kmeans", "dbscan", "agglomerative"]
    assert algorithms_for(TaskKind.MULTI_OUTPUT) == ["xgboost", "random_forest", "linear_regression", "mlp"]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_default_grids_hold_hyperparameters_the_library_accepts(name: str) -> None:
    grid = default_grid(name)
    assert grid and all(isinstance(values, list) and values for values in grid.values())
    task = min(ALGORITHMS[name].tasks)
    split = dataset(task)
    for pick in (0, -1):
        params = {**FAST_PARAMS.get(name, {}), **{key: values[pick] for key, values in grid.items()}}
        params |= {key: FAST_PARAMS[name][key] for key in ("n_estimators", "max_iter") if key in params}
        estimator = make_estimator(name, task, params=params).fit(split.x, split.y)
        assert len(estimator.predict(split.x_val)) == len(split.x_val)
    grid[next(iter(grid))].append("changed")
    assert default_grid(name) != grid, "default_grid returns a copy"


def test_an_unknown_algorithm_lists_the_known_ones() -> None:
    with pytest.raises(UnknownAlgorithmError, match=r"must be one of xgboost, lightgbm, .*agglomerative\. Got 'svm'"):
        algorithm_class("svm")
    with pytest.raises(LookupError):
        make_estimator("svm", "binary")


def test_an_unsupported_task_kind_lists_the_supported_ones() -> None:
    with pytest.raises(UnknownAlgorithmError, match=r"kmeans supports task kinds clustering\. Got 'binary'"):
        make_estimator("kmeans", "binary")
    with pytest.raises(UnknownAlgorithmError, match=r"supports task kinds binary, multiclass\. Got 'regression'"):
        make_estimator("logistic_regression", TaskKind.REGRESSION)


def test_an_unknown_task_kind_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownAlgorithmError, match=r"task kind must be one of binary, .*clustering\. Got 'ranking'"):
        make_estimator("xgboost", "ranking")


def test_params_merge_over_the_defaults() -> None:
    estimator = make_estimator("xgboost", "binary", params={"max_depth": 2}, seed=3)
    assert estimator.params["max_depth"] == 2
    assert estimator.params["n_estimators"] == ALGORITHMS["xgboost"].default_params["n_estimators"]
    assert estimator.seed == 3


def test_the_missing_value_message_names_exactly_the_algorithms_that_handle_them() -> None:
    handle = [name for name, cls in ALGORITHMS.items() if cls.allows_nan]
    assert sorted(handle) == ["gradient_boosting", "lightgbm", "random_forest", "xgboost"]
    with pytest.raises(TrainingError) as raised:
        make_estimator("logistic_regression", "binary").fit([[0.0], [float("nan")]], [0, 1])
    assert all(name in str(raised.value) for name in handle)
