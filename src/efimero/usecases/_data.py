"""A use case's rows: read from its source, its features inferred or checked, split 80/10/10.

Sources: a CSV or Parquet file (relative to the YAML file), a SQL query read with SQLAlchemy
and pandas, a dataset shipped inside scikit-learn (nothing is downloaded), or a seeded
generator. Features left out of the YAML are inferred from the rows (numbers → numeric with
their observed range, anything else → categorical with its values) and written beside the
YAML as ``<key>.inferred.yaml``, so a person can review them and paste them in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.model_selection import train_test_split

from efimero._io import atomic_write_text
from efimero.errors import DataError, DataValidationError, TrainingError, ValidationFailure, format_list
from efimero.usecases._generate import generate_table
from efimero.usecases._schema import Feature, UseCaseSpec

logger = logging.getLogger(__name__)

MAX_CATEGORIES = 50
"""An inferred categorical feature lists at most this many values (more: declare it yourself)."""


def read_source(spec: UseCaseSpec, *, base: Path) -> pd.DataFrame:
    """The use case's whole table, as its source gives it; relative paths are relative to ``base``.

    Raises:
        DataError: the file, query or dataset cannot be read (the message names which).
    """
    source = spec.data
    if source.generator is not None:
        return generate_table(source.generator)
    if source.builtin is not None:
        return _builtin(source.builtin.removeprefix("sklearn:"))
    if source.sql is not None:
        return _sql(source.sql.url, source.sql.query, base=base)
    assert source.path is not None
    path = base / source.path
    try:
        return pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except (OSError, ValueError, ImportError) as exc:
        raise DataError(f"{path}: cannot be read as {path.suffix.lstrip('.')} ({exc}); fix data.path.") from exc


def _builtin(name: str) -> pd.DataFrame:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
    frame: pd.DataFrame = bunch.frame
    if name == "linnerud":  # targets apart from the frame; join them under their own names
        frame = pd.concat([bunch.data, bunch.target], axis=1)
    return frame


def _sql(url: str, query: str, *, base: Path) -> pd.DataFrame:
    import sqlalchemy

    from efimero._config_reader import ProjectRelative

    # a relative SQLite file is relative to the YAML file: ProjectRelative resolves it against a root
    url = ProjectRelative(sqlite=True).resolve(url, base)
    try:
        engine = sqlalchemy.create_engine(url)
        try:
            with engine.connect() as connection:
                return pd.read_sql_query(sqlalchemy.text(query), connection)
        finally:
            engine.dispose()
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
        raise DataError(f"data.sql: the query cannot be read from {url.split('@')[-1]} ({exc}).") from exc


def infer_features(frame: pd.DataFrame, spec: UseCaseSpec) -> list[Feature]:
    """Every column but the targets and ``exclude``: numeric with its range, or categorical with its values."""
    skip = set(spec.targets) | set(spec.exclude)
    features = []
    for column in frame.columns:
        if column in skip:
            continue
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            features.append(Feature(name=str(column), kind="numeric", min=_number(values.min()),
                                    max=_number(values.max())))
        else:
            seen = sorted(str(v) for v in values.dropna().unique())
            features.append(Feature(name=str(column), kind="categorical",
                                    categories=seen if len(seen) <= MAX_CATEGORIES else None))
    return features


def _number(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def write_inferred(path: Path, spec: UseCaseSpec, features: list[Feature]) -> Path:
    """Write ``<key>.inferred.yaml`` beside ``path``: the inferred features, ready to review and paste."""
    target = path.with_name(f"{spec.key}.inferred.yaml")
    listed = [feature.model_dump(exclude_none=True) for feature in features]
    header = (f"# Features of use case {spec.key!r} inferred from its data by efimero. Review them, then copy the\n"
              f"# `features:` list into {path.name} to fix kinds and ranges (a range refuses rows outside it).\n")
    atomic_write_text(target, header + yaml.safe_dump({"features": listed}, sort_keys=False))
    return target


def check_columns(frame: pd.DataFrame, spec: UseCaseSpec, features: list[Feature]) -> None:
    """Refuse a table that lacks a column or breaks a declared range or category list.

    Raises:
        DataValidationError: listing every column at fault with the values seen.
    """
    failures = []
    missing = [name for name in [*(f.name for f in features), *spec.targets] if name not in frame.columns]
    if missing:
        raise DataError(f"use case {spec.key}: the data lacks column(s) {format_list(missing)}. "
                        f"It has {format_list(list(frame.columns), limit=10)}.")
    for feature in features:
        values = frame[feature.name]
        if feature.kind == "numeric":
            bad = _out_of_range(values, feature)
            rule = f"must lie in [{feature.min}, {feature.max}]"
        else:
            bad = values.notna() & ~values.astype(str).isin(feature.categories) if feature.categories else \
                pd.Series(False, index=values.index)
            rule = f"must be one of {format_list(feature.categories or [])}"
        if bad.any():
            rows = [int(i) + 1 for i in np.flatnonzero(bad.to_numpy())]
            failures.append(ValidationFailure(column=feature.name, rule=rule, rows=rows[:5], count=len(rows),
                                              values=[str(v) for v in values[bad].unique()[:5]]))
    if failures:
        raise DataValidationError(f"use case {spec.key}", failures)


def _out_of_range(values: pd.Series, feature: Feature) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values.notna() & numbers.isna()
    if feature.min is not None:
        bad |= numbers < feature.min
    if feature.max is not None:
        bad |= numbers > feature.max
    return bad


@dataclass(frozen=True)
class Splits:
    """The rows of each split: feature tables and targets (None for clustering)."""

    X_train: pd.DataFrame
    X_val: pd.DataFrame
    X_test: pd.DataFrame
    y_train: np.ndarray | None
    y_val: np.ndarray | None
    y_test: np.ndarray | None


def split_rows(frame: pd.DataFrame, spec: UseCaseSpec, features: list[Feature]) -> Splits:
    """The guide's train/validation/test split (80/10/10 by default), seeded, stratified for classification.

    Raises:
        TrainingError: a class is too rare to appear in every split; the message names it.
    """
    X = frame[[feature.name for feature in features]]
    y = None if not spec.targets else frame[spec.targets[0]].to_numpy() if len(spec.targets) == 1 \
        else frame[spec.targets].to_numpy(dtype=np.float64)
    stratify = spec.task.is_classification and spec.split.stratify
    held_out = spec.split.validation + spec.split.test
    try:
        first = train_test_split(X, *([y] if y is not None else []), test_size=held_out,
                                 random_state=spec.split.seed, stratify=y if stratify else None)
        X_train, X_rest = first[0], first[1]
        y_train, y_rest = (first[2], first[3]) if y is not None else (None, None)
        second = train_test_split(X_rest, *([y_rest] if y_rest is not None else []),
                                  test_size=spec.split.test / held_out, random_state=spec.split.seed,
                                  stratify=y_rest if stratify else None)
    except ValueError as exc:
        raise TrainingError(f"use case {spec.key}: the rows cannot be split {spec.split.train:g}/"
                            f"{spec.split.validation:g}/{spec.split.test:g} ({exc}). Add rows or set "
                            "split.stratify: false.") from exc
    X_val, X_test = second[0], second[1]
    y_val, y_test = (second[2], second[3]) if y is not None else (None, None)
    return Splits(X_train, X_val, X_test, y_train, y_val, y_test)
