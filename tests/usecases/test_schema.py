"""A use-case YAML is validated with pydantic; every error names the file and the dotted key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from efimero.errors import ConfigError
from efimero.usecases import load_usecase
from tests.usecases.conftest import WORKED, WriteUseCase, tiny_binary


def _error(write_usecase: WriteUseCase, **changes: object) -> str:
    path = write_usecase(tiny_binary(**changes))
    with pytest.raises(ConfigError) as caught:
        load_usecase(path)
    return str(caught.value)


def test_a_scalar_grid_value_is_named_by_file_and_dotted_key(write_usecase: WriteUseCase) -> None:
    message = _error(write_usecase, algorithms=[{"name": "xgboost", "grid": {"max_depth": 3}}])
    assert re.search(r"usecases/tiny\.yaml: algorithms\.0\.grid\.max_depth: .*valid list", message), message


def test_an_algorithm_that_cannot_learn_the_task_is_named_at_its_index(write_usecase: WriteUseCase) -> None:
    message = _error(write_usecase, algorithms=[{"name": "xgboost"}, {"name": "kmeans"}])
    assert "tiny.yaml: algorithms.1.name: kmeans cannot learn task binary" in message


def test_an_unknown_algorithm_lists_the_known_ones(write_usecase: WriteUseCase) -> None:
    message = _error(write_usecase, algorithms=[{"name": "svm"}])
    assert "algorithms.0.name: must be one of xgboost, lightgbm" in message and "Got 'svm'" in message


def test_a_misspelt_key_gets_a_suggestion_and_an_unknown_one_is_refused(write_usecase: WriteUseCase) -> None:
    assert "did you mean target?" in _error(write_usecase, targte="label")
    assert "colour: not a key of a use case" in _error(write_usecase, colour="blue")


def test_a_gate_metric_must_belong_to_the_task(write_usecase: WriteUseCase) -> None:
    message = _error(write_usecase, gate={"silhouette": 0.3})
    assert "tiny.yaml: gate.silhouette: not a metric of task binary" in message


def test_a_data_source_must_be_exactly_one(write_usecase: WriteUseCase) -> None:
    message = _error(write_usecase, data={"path": "a.csv", "builtin": "sklearn:wine"})
    assert "tiny.yaml: data: must name exactly one of path, sql, builtin, generator" in message
    assert "data.builtin: must be sklearn:<name>" in _error(write_usecase, data={"builtin": "sklearn:mnist"})


def test_targets_must_fit_the_task(write_usecase: WriteUseCase) -> None:
    assert "target must be left out for task clustering" in _error(write_usecase, task="clustering",
                                                                    algorithms=None)
    assert "at least two columns for task multi_output" in _error(write_usecase, task="multi_output")


def test_the_key_must_match_the_file_name(write_usecase: WriteUseCase) -> None:
    path = write_usecase(tiny_binary(), name="other")
    with pytest.raises(ConfigError, match=r"other\.yaml: key: must match the file name"):
        load_usecase(path)


def test_defaults_are_the_guides(write_usecase: WriteUseCase) -> None:
    spec = load_usecase(write_usecase(tiny_binary()))
    assert spec.thresholds == {"accuracy": 0.75, "precision": 0.70, "recall": 0.65, "f1": 0.70, "roc_auc": 0.75}
    assert (spec.split.train, spec.split.validation, spec.split.test) == (0.8, 0.1, 0.1)
    assert spec.metric == "roc_auc"


@pytest.mark.parametrize("path", [p for p in sorted(WORKED.glob("*.yaml")) if not p.name.endswith(".inferred.yaml")],
                         ids=lambda p: p.stem)
def test_every_shipped_use_case_is_valid(path: Path) -> None:
    load_usecase(path)
