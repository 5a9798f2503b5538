"""The schema of a use case: ``usecases/<key>.yaml``, validated with pydantic.

A use case says where its rows come from, which columns are features (with kinds and ranges)
and targets, the task, the preprocessing, the algorithms to try with their grids, the split,
cross-validation, tuning, the primary metric and the gate. Everything has a default but the
key, the data source and the task, so a first use case is five lines::

    key: churn
    department: marketing
    data: {path: customers.csv}
    target: churned
    task: binary

Errors name the file and the dotted key (``usecases/churn.yaml: algorithms.0.grid.max_depth:
Input should be a valid list``), read through the same reader as ``config/*.yaml`` (so a
misspelt key gets a "did you mean"), and every unknown key is refused, never ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from efimero._config_reader import KeyedError, load_strict
from efimero.errors import ConfigError, format_list
from efimero.estimators import ALGORITHMS, TaskKind, algorithms_for, default_grid
from efimero.usecases._metrics import DEFAULT_GATES, DEFAULT_PRIMARY, METRICS, SCORERS

KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
"""Keys become directory names in the registry: lower-case letters, digits and underscores."""

BUILTIN_DATASETS = ("breast_cancer", "wine", "iris", "diabetes", "digits", "linnerud")
"""scikit-learn datasets shipped inside the package (``sklearn:<name>``): nothing is downloaded."""

GENERATORS = ("classification", "regression", "blobs", "churn")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SqlSource(_Strict):
    url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///data/efimero.db; a relative SQLite file is "
                     "relative to the YAML file")
    query: str = Field(min_length=1, description="SELECT returning the feature and target columns")


class GeneratorSource(_Strict):
    """A seeded synthetic table (see :mod:`efimero.usecases._generate` for each kind's columns)."""

    kind: Literal["classification", "regression", "blobs", "churn"]
    rows: int = Field(1000, ge=30, le=1_000_000)
    seed: int = 0
    features: int = Field(8, ge=2, le=200, description="Numeric columns (classification, regression, blobs)")
    classes: int = Field(2, ge=2, le=20, description="Classes (classification) or centres (blobs)")
    targets: int = Field(1, ge=1, le=10, description="Target columns (regression)")
    noise: float = Field(0.1, ge=0, description="Label noise share (classification) or noise scale (regression)")
    missing: float = Field(0.0, ge=0, lt=0.5, description="Share of feature cells left empty")


class DataSource(_Strict):
    """Exactly one of ``path``, ``sql``, ``builtin`` or ``generator``."""

    path: str | None = Field(None, description="CSV or Parquet file, relative to the YAML file")
    sql: SqlSource | None = None
    builtin: str | None = Field(None, description="sklearn:<name>, one of " + ", ".join(BUILTIN_DATASETS))
    generator: GeneratorSource | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> DataSource:
        given = [name for name in ("path", "sql", "builtin", "generator") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"must name exactly one of path, sql, builtin, generator. Got {given or 'none'} instead")
        return self

    @field_validator("path")
    @classmethod
    def _known_format(cls, path: str | None) -> str | None:
        if path is not None and Path(path).suffix.lower() not in (".csv", ".parquet", ".pq"):
            raise ValueError(f"must end in .csv or .parquet. Got {path!r} instead")
        return path

    @field_validator("builtin")
    @classmethod
    def _known_builtin(cls, name: str | None) -> str | None:
        if name is not None and (not name.startswith("sklearn:")
                                 or name.removeprefix("sklearn:") not in BUILTIN_DATASETS):
            raise ValueError(f"must be sklearn:<name> with a name in {', '.join(BUILTIN_DATASETS)}. "
                             f"Got {name!r} instead")
        return name


class Feature(_Strict):
    name: str = Field(min_length=1)
    kind: Literal["numeric", "categorical"] = "numeric"
    min: float | None = Field(None, description="Smallest value allowed (numeric)")
    max: float | None = Field(None, description="Largest value allowed (numeric)")
    categories: list[str] | None = Field(None, description="Values allowed (categorical); others are refused")

    @model_validator(mode="after")
    def _range(self) -> Feature:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min must not exceed max. Got min {self.min} and max {self.max} instead")
        if self.kind == "categorical" and (self.min is not None or self.max is not None):
            raise ValueError("min and max apply to numeric features only; list categories instead")
        return self


class Missing(_Strict):
    numeric: Literal["median", "mean", "most_frequent", "constant"] = "median"
    categorical: Literal["most_frequent", "constant"] = "most_frequent"
    fill_value: float | str | None = Field(None, description="What `constant` fills in (0 / 'missing' by default)")


class Preprocessing(_Strict):
    scaling: Literal["standard", "none"] = "standard"
    encoding: Literal["one_hot", "ordinal"] = "one_hot"
    missing: Missing = Missing()


class AlgorithmSpec(_Strict):
    """One algorithm to try: fixed ``params`` and the ``grid`` tuned over (default: its default grid)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] | None = None

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in ALGORITHMS:
            raise ValueError(f"must be one of {', '.join(ALGORITHMS)}. Got {name!r} instead")
        return name

    @field_validator("grid")
    @classmethod
    def _non_empty(cls, grid: dict[str, list[Any]] | None) -> dict[str, list[Any]] | None:
        empty = [key for key, values in (grid or {}).items() if not values]
        if empty:
            raise ValueError(f"every parameter needs at least one value to try. Got none for {', '.join(empty)}")
        return grid

    def search_space(self) -> dict[str, list[Any]]:
        return default_grid(self.name) if self.grid is None else {k: list(v) for k, v in self.grid.items()}


class Split(_Strict):
    """The guide's 80/10/10 split; classification splits are stratified on the target."""

    train: float = Field(0.8, gt=0, lt=1)
    validation: float = Field(0.1, gt=0, lt=1)
    test: float = Field(0.1, gt=0, lt=1)
    stratify: bool = True
    seed: int = 42

    @model_validator(mode="after")
    def _sums_to_one(self) -> Split:
        if abs(self.train + self.validation + self.test - 1.0) > 1e-9:
            raise ValueError(f"train + validation + test must be 1. Got {self.train + self.validation + self.test:g}")
        return self


class CrossValidation(_Strict):
    folds: int = Field(3, ge=2, le=20, description="k of the k-fold CV on the training split that tunes each grid")
    scoring: list[str] | None = Field(None, description="Metrics averaged over the folds (default: the task's)")


class Tuning(_Strict):
    method: Literal["grid", "random", "optuna"] = "grid"
    n_iter: int = Field(10, ge=1, description="Candidates sampled by `random`")
    n_trials: int = Field(20, ge=1, description="Trials of `optuna` (TPE, seeded)")


class UseCaseSpec(_Strict):
    """One use case; see the module docstring."""

    key: str
    name: str = ""
    department: str = "general"
    description: str = ""
    data: DataSource
    features: list[Feature] | None = Field(None, description="Default: every column but targets and `exclude`, "
                                           "inferred and written to <key>.inferred.yaml for review")
    exclude: list[str] = Field(default_factory=list, description="Columns that are neither features nor targets")
    target: str | list[str] | None = None
    task: TaskKind
    preprocessing: Preprocessing = Preprocessing()
    algorithms: list[AlgorithmSpec] | None = Field(None, description="Default: every algorithm for the task")
    split: Split = Split()
    cv: CrossValidation = CrossValidation()
    tuning: Tuning = Tuning()
    primary_metric: str | None = Field(None, description="Default: roc_auc, f1_macro, r2 or silhouette")
    gate: dict[str, float] | None = Field(None, description="Thresholds per metric (default: the MLOps guide's)")
    beat_baseline: bool = Field(True, description="Refuse a model no better than the baseline on the primary metric")

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        if not KEY_PATTERN.match(key):
            raise ValueError(f"must match {KEY_PATTERN.pattern} (it names a registry folder). Got {key!r} instead")
        return key

    @model_validator(mode="after")
    def _consistent(self) -> UseCaseSpec:
        targets = self.targets
        if self.task is TaskKind.CLUSTERING and targets:
            raise ValueError("target must be left out for task clustering (list label columns under exclude)")
        if self.task is TaskKind.MULTI_OUTPUT and len(targets) < 2:
            raise ValueError("target must list at least two columns for task multi_output")
        if self.task not in (TaskKind.CLUSTERING, TaskKind.MULTI_OUTPUT) and len(targets) != 1:
            raise ValueError(f"target must name exactly one column for task {self.task}")
        for index, algorithm in enumerate(self.algorithms or []):
            if self.task not in ALGORITHMS[algorithm.name].tasks:
                raise _at(("algorithms", index, "name"), f"{algorithm.name} cannot learn task {self.task}; "
                          f"choose one of {', '.join(algorithms_for(self.task))}")
        known = METRICS[self.task]
        if self.primary_metric is not None and self.primary_metric not in known:
            raise _at(("primary_metric",), f"must be one of {', '.join(known)} for task {self.task}. "
                      f"Got {self.primary_metric!r} instead")
        for metric in self.gate or {}:
            if metric not in known:
                raise _at(("gate", metric), f"not a metric of task {self.task}; use one of {', '.join(known)}")
        for index, scorer in enumerate(self.cv.scoring or []):
            if scorer not in SCORERS[self.task]:
                raise _at(("cv", "scoring", index), f"must be one of {', '.join(SCORERS[self.task])}. "
                          f"Got {scorer!r} instead")
        return self

    # -- what the defaults resolve to --------------------------------------------------------

    @property
    def targets(self) -> list[str]:
        return [] if self.target is None else [self.target] if isinstance(self.target, str) else list(self.target)

    @property
    def metric(self) -> str:
        return self.primary_metric or DEFAULT_PRIMARY[self.task]

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(DEFAULT_GATES[self.task] if self.gate is None else self.gate)

    @property
    def scorers(self) -> list[str]:
        return list(self.cv.scoring or SCORERS[self.task])

    def algorithm_specs(self, only: list[str] | None = None) -> list[AlgorithmSpec]:
        """The algorithms to train: the listed ones (or every one for the task), narrowed to ``only``.

        Raises:
            ConfigError: ``only`` names an algorithm the use case cannot train.
        """
        specs = self.algorithms or [AlgorithmSpec(name=name) for name in algorithms_for(self.task)]
        if only is None:
            return specs
        by_name = {spec.name: spec for spec in specs}
        unknown = [name for name in only if name not in by_name and name not in algorithms_for(self.task)]
        if unknown:
            raise ConfigError(f"--algorithms must name algorithms for task {self.task} "
                              f"({', '.join(algorithms_for(self.task))}). Got {format_list(unknown)} instead.")
        return [by_name.get(name) or AlgorithmSpec(name=name) for name in only]


def _at(loc: tuple[str | int, ...], message: str) -> KeyedError:
    return KeyedError(loc, message)


def load_usecase(path: str | Path) -> UseCaseSpec:
    """Read and validate ``usecases/<key>.yaml``.

    Raises:
        ConfigError: naming the file and each dotted key at fault, e.g.
            ``usecases/churn.yaml: algorithms.0.grid.max_depth: Input should be a valid list``.

    Example:
        >>> spec = load_usecase("usecases/breast_cancer.yaml")  # doctest: +SKIP
        >>> spec.metric
        'roc_auc'
    """
    path = Path(path)
    spec = load_strict(path, UseCaseSpec, "a use case")
    if spec.key != path.stem:
        raise ConfigError(f"{path}: key: must match the file name ({path.stem}). Got {spec.key!r} instead.")
    return spec
