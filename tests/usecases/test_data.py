"""Reading a use case's rows: every source, features inferred and written back, ranges checked, seeded split."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from efimero.errors import DataValidationError
from efimero.usecases import load_usecase
from efimero.usecases._data import check_columns, infer_features, read_source, split_rows, write_inferred
from tests.usecases.conftest import WriteUseCase, tiny_binary


def _table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"age": rng.integers(18, 80, 200), "plan": rng.choice(["basic", "pro"], 200),
                         "label": np.tile([0, 1, 1, 1], 50)})


def test_csv_parquet_and_sql_sources_read_the_same_rows(write_usecase: WriteUseCase, tmp_path: Path) -> None:
    frame = _table()
    frame.to_csv(tmp_path / "usecases_rows.csv", index=False)
    frame.to_parquet(tmp_path / "rows.parquet")
    with sqlite3.connect(tmp_path / "rows.db") as connection:
        frame.to_sql("customers", connection, index=False)
    sources = [{"path": "../usecases_rows.csv"}, {"path": "../rows.parquet"},
               {"sql": {"url": "sqlite:///../rows.db", "query": "SELECT * FROM customers"}}]
    for source in sources:
        path = write_usecase(tiny_binary(data=source))
        read = read_source(load_usecase(path), base=path.parent)
        pd.testing.assert_frame_equal(read.reset_index(drop=True), frame, check_dtype=False)


def test_builtin_datasets_come_from_the_installed_package(write_usecase: WriteUseCase) -> None:
    path = write_usecase(tiny_binary(data={"builtin": "sklearn:breast_cancer"}, target="target"))
    frame = read_source(load_usecase(path), base=path.parent)
    assert frame.shape == (569, 31)


def test_inferred_features_are_written_back_for_review(write_usecase: WriteUseCase) -> None:
    frame = _table()
    path = write_usecase(tiny_binary())
    spec = load_usecase(path)
    features = infer_features(frame, spec)
    review = write_inferred(path, spec, features)
    assert review.name == "tiny.inferred.yaml"
    listed = yaml.safe_load(review.read_text(encoding="utf-8"))["features"]
    assert listed[0] == {"name": "age", "kind": "numeric", "min": float(frame.age.min()), "max": float(frame.age.max())}
    assert listed[1] == {"name": "plan", "kind": "categorical", "categories": ["basic", "pro"]}
    assert [f["name"] for f in listed] == ["age", "plan"]  # the target is no feature
    pasted = write_usecase(tiny_binary(features=listed))
    assert load_usecase(pasted).features == features  # the review file pastes back as it is


def test_declared_ranges_and_categories_refuse_rows_outside_them(write_usecase: WriteUseCase) -> None:
    spec = load_usecase(write_usecase(tiny_binary(features=[
        {"name": "age", "kind": "numeric", "min": 18, "max": 60},
        {"name": "plan", "kind": "categorical", "categories": ["basic"]},
    ])))
    with pytest.raises(DataValidationError) as caught:
        check_columns(_table(), spec, list(spec.features or []))
    message = str(caught.value)
    assert "column 'age': must lie in [18.0, 60.0]" in message and "column 'plan': must be one of basic" in message


def test_the_split_is_80_10_10_stratified_and_seeded(write_usecase: WriteUseCase) -> None:
    frame = _table()
    spec = load_usecase(write_usecase(tiny_binary()))
    features = infer_features(frame, spec)
    first, again = split_rows(frame, spec, features), split_rows(frame, spec, features)
    assert (len(first.X_train), len(first.X_val), len(first.X_test)) == (160, 20, 20)
    for part in (first.y_train, first.y_val, first.y_test):
        assert part is not None and part.mean() == pytest.approx(0.75)  # the class shares of the whole table
    assert list(first.X_test.index) == list(again.X_test.index)
    other = split_rows(frame, spec.model_copy(update={"split": spec.split.model_copy(update={"seed": 7})}), features)
    assert list(other.X_test.index) != list(first.X_test.index)
