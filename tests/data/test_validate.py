"""Every validation rule rejects a crafted bad file with a message naming column, rows and rule."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from efimero.data import write_table
from efimero.data.validate import load_training_data
from efimero.errors import DataError, DataValidationError


def _broken_file(tmp_path: Path, frame: pd.DataFrame, change) -> Path:
    frame = frame.copy().astype(object)
    frame = change(frame) if change(frame) is not None else frame
    return write_table(frame, tmp_path / "bad.csv")


def _errors(path: Path) -> DataValidationError:
    with pytest.raises(DataValidationError) as info:
        load_training_data(path)
    return info.value


def _set(row: int, column: str, value):
    def change(frame: pd.DataFrame) -> None:
        frame.loc[row, column] = value
    return change


@pytest.mark.parametrize(
    ("change", "column", "rule", "row"),
    [
        (_set(4, "hour_of_day", 24), "hour_of_day", "must lie in [0, 23]", 5),
        (_set(2, "device_pixel_ratio", 0), "device_pixel_ratio", "must lie in [0.25, 8", 3),
        (_set(7, "viewport_area", -5), "viewport_area", "must lie in", 8),
        (_set(0, "font_size_base", 99), "font_size_base", "must lie in [10, 32]", 1),
        (_set(3, "is_weekend", 2), "is_weekend", "must be one of [0, 1]", 4),
        (_set(5, "total_interactions", 2.5), "total_interactions", "must be a whole number", 6),
        (_set(6, "css_class_theme", "tema-rosa"), "css_class_theme", "must be one of ['tema-claro'", 7),
        (_set(8, "avg_session_duration", "soon"), "avg_session_duration", "must be a number", 9),
        (_set(9, "spacing_base", None), "spacing_base", "must not be empty or NaN", 10),
        (_set(1, "css_class_font", None), "css_class_font", "must not be empty or NaN", 2),
    ],
)
def test_rule_names_column_rule_and_row(tmp_path, small_frame, change, column, rule, row) -> None:
    error = _errors(_broken_file(tmp_path, small_frame, change))
    [failure] = [f for f in error.failures if f.column == column]
    assert rule in failure.rule
    assert failure.rows == [row]
    assert column in str(error) and "bad.csv" in str(error)


def test_missing_column_is_named(tmp_path, small_frame) -> None:
    error = _errors(_broken_file(tmp_path, small_frame, lambda f: f.drop(columns=["aspect_ratio"])))
    assert [(f.column, f.rule) for f in error.failures] == [
        ("aspect_ratio", "column is missing (every schema column must be present)")
    ]


def test_duplicate_rows_are_reported_unless_allowed(tmp_path, small_frame) -> None:
    path = _broken_file(tmp_path, small_frame, lambda f: pd.concat([f, f.iloc[[10, 20]]], ignore_index=True))
    error = _errors(path)
    assert error.failures[-1].rows == [len(small_frame) + 1, len(small_frame) + 2]
    assert "unique" in error.failures[-1].rule
    frame, _ = load_training_data(path, allow_duplicates=True)
    assert len(frame) == len(small_frame) + 2


def test_device_flags_must_be_one_hot(tmp_path, small_frame) -> None:
    def two_devices(frame: pd.DataFrame) -> None:
        frame.loc[11, ["is_mobile", "is_tablet", "is_desktop"]] = [1, 1, 0]
    error = _errors(_broken_file(tmp_path, small_frame, two_devices))
    [failure] = error.failures
    assert "exactly one of is_mobile, is_tablet, is_desktop" in failure.rule and failure.rows == [12]


def test_all_problems_are_listed_at_once_and_capped(tmp_path, small_frame) -> None:
    def many(frame: pd.DataFrame) -> None:
        frame.loc[0:9, "hour_of_day"] = 99
        frame.loc[0, "css_class_density"] = "densidad-total"
    error = _errors(_broken_file(tmp_path, small_frame, many))
    hour = next(f for f in error.failures if f.column == "hour_of_day")
    assert hour.count == 10 and hour.rows == [1, 2, 3, 4, 5]
    assert "10 row(s) fail, first rows 1, 2, 3, 4, 5" in str(error)
    assert {f.column for f in error.failures} == {"hour_of_day", "css_class_density"}


def test_valid_file_returns_schema_dtypes(small_csv, small_frame) -> None:
    frame, report = load_training_data(small_csv)
    assert report.rows == len(small_frame) and report.warnings == []
    pd.testing.assert_frame_equal(frame, small_frame)


def test_unreadable_files_are_data_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="no such data file"):
        load_training_data(tmp_path / "missing.csv")
    (tmp_path / "data.txt").write_text("x")
    with pytest.raises(DataError, match="suffix must be one of"):
        load_training_data(tmp_path / "data.txt")
