"""Schema validation of training data with pandera.

Rules, all checked at once so one run lists every problem:

* every schema column is present (extra columns are reported, not fatal);
* each column has the schema's dtype (numbers are coerced; text in a numeric column fails);
* numeric values lie in the schema's closed range, binary flags are 0 or 1;
* class targets use only their allowed labels;
* no missing values in features or targets;
* exactly one of ``is_mobile``/``is_tablet``/``is_desktop`` is set per row;
* no duplicate rows (unless ``allow_duplicates``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from efimero.data._parts import DEFAULT_BATCH_ROWS, is_partitioned, iter_part, parquet_parts
from efimero.data._tables import read_table
from efimero.errors import ROW_RULE, DataValidationError, ValidationFailure
from efimero.schema import CSS_TASK, TabularTask

_MAX_EXAMPLES = 5
_DEVICE_FLAGS = ("is_mobile", "is_tablet", "is_desktop")


@dataclass(frozen=True)
class ValidationReport:
    """What validation found in a dataset that passed: row count and notes."""

    source: str
    rows: int
    columns: int
    warnings: list[str] = field(default_factory=list)


def _whole_numbers(series: pd.Series) -> pd.Series:
    return series.isna() | (series == series.round())


def build_schema(task: TabularTask = CSS_TASK) -> pa.DataFrameSchema:
    """The pandera schema of a task's training file (numbers as float64, checked whole where needed)."""
    columns: dict[str, pa.Column] = {}
    for feature in task.features:
        checks = [pa.Check.in_range(feature.minimum, feature.maximum)]
        if feature.kind == "binary":
            checks = [pa.Check.isin([0, 1])]
        elif feature.kind == "integer":
            checks.append(pa.Check(_whole_numbers, name="whole number"))
        columns[feature.name] = pa.Column(float, checks=checks)
    for class_target in task.class_targets:
        columns[class_target.name] = pa.Column(str, checks=[pa.Check.isin(list(class_target.labels))])
    for target in task.regression_targets:
        columns[target.name] = pa.Column(float, checks=[pa.Check.in_range(target.minimum, target.maximum)])
    if task.weight_column:
        columns[task.weight_column] = pa.Column(float, checks=[pa.Check.gt(0), pa.Check.le(1000)], required=False)
        for name in task.weight_columns[1:]:  # a class head's own weights may be 0: a reward of 0 teaches nothing
            columns[name] = pa.Column(float, checks=[pa.Check.ge(0), pa.Check.le(1000)], required=False)
    checks = []
    if set(_DEVICE_FLAGS) <= set(task.feature_names):
        checks.append(
            pa.Check(
                lambda frame: frame[list(_DEVICE_FLAGS)].sum(axis=1) == 1,
                name=f"exactly one of {', '.join(_DEVICE_FLAGS)} is 1",
            )
        )
    return pa.DataFrameSchema(columns, checks=checks, strict=False, name=task.name)


def _plain(number: str) -> str:
    """A bound as written in the schema: ``10.0`` → ``10``, ``0.25`` stays."""
    value = float(number)
    return str(int(value)) if value.is_integer() else number


def _rule_text(check: str) -> str:
    """Turn pandera's check name into the rule a person reads."""
    if check == "column_in_dataframe":
        return "column is missing (every schema column must be present)"
    if check == "not_nullable":
        return "must not be empty or NaN"
    if check.startswith("dtype"):
        return f"must have dtype {check.split('(', 1)[1].rstrip(')')}"
    if check.startswith("in_range"):
        low, high = (_plain(bound) for bound in check[len("in_range(") : -1].split(", "))
        return f"must lie in [{low}, {high}]"
    if check.startswith("isin"):
        return f"must be one of {check[len('isin(') : -1]}"
    return f"must be a {check}" if check == "whole number" else f"must satisfy: {check}"


def _failure(column: str, rule: str, rows: list[int], values: list) -> ValidationFailure:
    rows = sorted(set(rows))
    return ValidationFailure(column, rule, rows[:_MAX_EXAMPLES], values[:_MAX_EXAMPLES], count=len(rows))


def _coerce_numbers(frame: pd.DataFrame, task: TabularTask) -> tuple[pd.DataFrame, list, dict]:
    """Convert numeric columns to float64; report text that is not a number.

    Returns the converted frame, the failures and, per column, the rows already reported,
    so that the same cells are not reported again as empty.
    """
    frame = frame.copy()
    failures: list[ValidationFailure] = []
    reported: dict[str, set[int]] = {}
    for name in task.feature_names + task.regression_target_names + task.weight_columns:
        if name not in frame.columns:
            continue
        numbers = pd.to_numeric(frame[name], errors="coerce")
        not_numbers = frame[name].notna() & numbers.isna()
        if not_numbers.any():
            rows = frame.index[not_numbers].tolist()
            failures.append(_failure(name, "must be a number", rows, frame.loc[not_numbers, name].tolist()))
            reported[name] = set(rows)
        frame[name] = numbers.astype(float)
    return frame, failures, reported


def _failures_from(errors: pa.errors.SchemaErrors, reported: dict[str, set[int]]) -> list[ValidationFailure]:
    cases = errors.failure_cases
    failures: list[ValidationFailure] = []
    frame_level = cases["schema_context"] == "DataFrameSchema"
    for check, group in cases[frame_level].groupby("check", sort=False):
        if check == "column_in_dataframe":
            failures.extend(ValidationFailure(str(c), _rule_text(check)) for c in group["failure_case"])
        else:
            rows = [int(i) for i in group["index"].dropna()]
            failures.append(_failure(ROW_RULE, _rule_text(str(check)), rows, []))
    for (column, check), group in cases[~frame_level].groupby(["column", "check"], sort=False):
        rows = [int(i) for i in group["index"].dropna() if int(i) not in reported.get(column, ())]
        if not rows and check == "not_nullable":
            continue
        values = [v for v in group["failure_case"].tolist() if not pd.isna(v)]
        failures.append(_failure(str(column), _rule_text(str(check)), rows, values))
    return failures


def _display_rows(failures: list[ValidationFailure]) -> list[ValidationFailure]:
    """Shift 0-based frame positions to 1-based data rows (the header is not a row)."""
    return [
        ValidationFailure(f.column, f.rule, [r + 1 for r in f.rows], f.values, f.count) for f in failures
    ]


def validate_frame(
    frame: pd.DataFrame,
    *,
    task: TabularTask = CSS_TASK,
    source: str = "<dataframe>",
    allow_duplicates: bool = False,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Validate ``frame`` against the task schema; return it in schema column order and dtypes.

    Rows in messages are 1-based data rows (row 1 is the first line after a CSV header).

    Raises:
        DataValidationError: listing every broken rule with column, rows and values.
    """
    frame, failures, reported = _coerce_numbers(frame.reset_index(drop=True), task)
    try:
        frame = build_schema(task).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        failures.extend(_failures_from(errors, reported))
    if not allow_duplicates:
        duplicated = frame.index[frame.duplicated(keep="first")].tolist()
        if duplicated:
            rule = "rows must be unique (each listed row repeats an earlier one)"
            failures.append(_failure(ROW_RULE, rule, duplicated, []))
    if failures:
        raise DataValidationError(source, _display_rows(failures))
    kept = task.columns + [name for name in task.weight_columns if name in frame.columns]
    extra = [c for c in frame.columns if c not in set(kept)]
    warnings = [f"ignored extra columns: {', '.join(extra)}"] if extra else []
    integers = [f.name for f in task.features if f.kind != "float"]
    frame = frame[kept].astype({name: "int64" for name in integers})
    report = ValidationReport(source, rows=len(frame), columns=len(task.columns), warnings=warnings)
    return frame, report


def _merge(failures: list[ValidationFailure], offset: int) -> dict[tuple[str, str], ValidationFailure]:
    return {(f.column, f.rule): ValidationFailure(f.column, f.rule, [r + offset for r in f.rows], f.values, f.count)
            for f in failures}


def _combine(found: dict[tuple[str, str], ValidationFailure], more: dict[tuple[str, str], ValidationFailure]) -> None:
    for key, failure in more.items():
        if key in found:
            old = found[key]
            failure = ValidationFailure(old.column, old.rule, (old.rows + failure.rows)[:_MAX_EXAMPLES],
                                        (old.values + failure.values)[:_MAX_EXAMPLES], old.count + failure.count)
        found[key] = failure


@dataclass(frozen=True)
class PartCheck:
    """What validating one Parquet part file found: its rows, the merged failures, a hash per valid row."""

    part: Path
    rows: int
    failures: list[ValidationFailure]
    hashes: np.ndarray


def _part_batches(part: Path, task: TabularTask, found: dict[tuple[str, str], ValidationFailure],
                  batch_rows: int) -> Iterator[tuple[int, pd.DataFrame]]:
    """Validate one part file batch by batch: yield each valid batch, merge failures into ``found``."""
    for offset, raw in iter_part(part, batch_rows=batch_rows):
        try:
            frame, _ = validate_frame(raw, task=task, source=str(part), allow_duplicates=True)
        except DataValidationError as error:
            _combine(found, _merge(error.failures, offset))
            continue
        if not found:
            yield offset, frame


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()


def check_part(part: str | Path, *, task: TabularTask = CSS_TASK, batch_rows: int = DEFAULT_BATCH_ROWS) -> PartCheck:
    """Validate one Parquet part file in batches (as a Dask worker does for its files).

    Failures name the 1-based row inside ``part``; ``hashes`` (one 64-bit hash per row) let the
    caller find duplicates across parts with :func:`check_duplicates`.
    """
    part = Path(part)
    found: dict[tuple[str, str], ValidationFailure] = {}
    hashes = [_row_hashes(frame) for _, frame in _part_batches(part, task, found, batch_rows)]
    rows = sum(map(len, hashes))
    return PartCheck(part, rows, list(found.values()), np.concatenate(hashes) if hashes else np.empty(0, np.uint64))


def validated_chunks(
    path: str | Path, *, task: TabularTask = CSS_TASK, allow_duplicates: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> Iterator[pd.DataFrame]:
    """Validate a partitioned Parquet dataset batch by batch; yield each batch validated.

    Every rule of :func:`validate_frame` holds per batch. Failures name the part file and the
    1-based row inside it; the first part file with a problem is reported whole (all its batches)
    and stops the reading. Duplicates are found across the whole dataset through one 64-bit
    hash per row (8 bytes a row kept, not the rows), and named by file and row.

    Raises:
        DataValidationError: naming the part file, the rules broken, rows and values.
    """
    hashes: list[np.ndarray] = []
    places: list[tuple[Path, int, int]] = []  # (part, first row in the part, rows) of each batch
    for part in parquet_parts(path):
        found: dict[tuple[str, str], ValidationFailure] = {}
        for offset, frame in _part_batches(part, task, found, batch_rows):
            if not allow_duplicates:
                hashes.append(_row_hashes(frame))
                places.append((part, offset, len(frame)))
            yield frame
        if found:
            raise DataValidationError(str(part), list(found.values()))
    if hashes:
        check_duplicates(np.concatenate(hashes), places)


def check_duplicates(hashes: np.ndarray, places: list[tuple[Path, int, int]]) -> None:
    """Raise naming the first part file holding a row that repeats an earlier one.

    ``hashes`` holds one hash per row in dataset order; ``places`` gives ``(part, first row in the
    part, rows)`` of each run of rows, in the same order.

    Raises:
        DataValidationError: a row repeats an earlier one (file and 1-based rows named).
    """
    order = np.argsort(hashes, kind="stable")
    repeats = np.sort(order[1:][hashes[order][1:] == hashes[order][:-1]])
    if not repeats.size:
        return
    starts = np.cumsum([0] + [rows for _, _, rows in places])
    batch = np.searchsorted(starts, repeats, side="right") - 1
    part = places[int(batch[0])][0]
    rows = [int(r - starts[b] + places[b][1]) for r, b in zip(repeats, batch, strict=True) if places[b][0] == part]
    rule = "rows must be unique (each listed row repeats an earlier one, maybe in an earlier file)"
    raise DataValidationError(str(part), _display_rows([_failure(ROW_RULE, rule, rows, [])]))


def load_training_data(
    path: str | Path, *, task: TabularTask = CSS_TASK, allow_duplicates: bool = False
) -> tuple[pd.DataFrame, ValidationReport]:
    """Read a CSV/JSON/Parquet training file, or a partitioned Parquet directory, and validate it.

    Example:
        >>> frame, report = load_training_data("data/synthetic_training_data.csv")  # doctest: +SKIP
    """
    if is_partitioned(path):
        frames = list(validated_chunks(path, task=task, allow_duplicates=allow_duplicates))
        frame = pd.concat(frames, ignore_index=True)
        return frame, ValidationReport(str(path), rows=len(frame), columns=len(task.columns))
    return validate_frame(
        read_table(path), task=task, source=str(path), allow_duplicates=allow_duplicates
    )


def validate_dataset(
    path: str | Path, *, task: TabularTask = CSS_TASK, allow_duplicates: bool = False
) -> ValidationReport:
    """Validate a file, or a partitioned Parquet directory chunk by chunk (bounded memory)."""
    if not is_partitioned(path):
        return load_training_data(path, task=task, allow_duplicates=allow_duplicates)[1]
    rows = sum(len(frame) for frame in validated_chunks(path, task=task, allow_duplicates=allow_duplicates))
    return ValidationReport(str(path), rows=rows, columns=len(task.columns))
