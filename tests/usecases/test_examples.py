"""The 64 generated use cases: 8 departments × 8 kinds, every algorithm, all valid."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from efimero.estimators import ALGORITHMS
from efimero.usecases import load_usecase, train_usecase, write_examples


def test_64_use_cases_span_8_departments_every_task_and_algorithm(tmp_path: Path) -> None:
    specs = [load_usecase(path) for path in write_examples(tmp_path, count=64)]
    assert len({spec.key for spec in specs}) == 64
    assert collections.Counter(spec.department for spec in specs) == {d: 8 for d in {s.department for s in specs}}
    assert len({spec.department for spec in specs}) == 8
    assert {spec.task.value for spec in specs} == {"binary", "multiclass", "regression", "multi_output", "clustering"}
    used = {algorithm.name for spec in specs for algorithm in spec.algorithm_specs()}
    assert used == set(ALGORITHMS)


@pytest.mark.slow
def test_one_department_trains_and_passes_its_gates(tmp_path: Path) -> None:
    results = [train_usecase(path, models=tmp_path / "models") for path in write_examples(tmp_path, count=8)]
    assert all(result.passed for result in results), [(r.key, r.gate_failures) for r in results]
