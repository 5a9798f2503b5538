"""The registry of drift statistics: what each one computes, accepts and counts as drift.

A :class:`DriftStatistic` names one statistic, its implementation per feature type
(``numeric`` and/or ``categorical``), whether its score is a ``p_value`` (drift when the score
is *below* the threshold) or a ``distance`` (drift when the score is *at or above* it), and its
default threshold. Each statistic module (:mod:`~efimero.monitor.drift.ks`,
:mod:`~efimero.monitor.drift.psi`, ...) registers itself once on import; reports then compose
whatever :func:`statistics_for` returns for a column's type, so adding a statistic is one new
module.

Every evaluation returns a :class:`StatResult`: the score, the threshold it was held against
and the drifted flag.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd

from efimero.errors import ConfigError, DataError

FeatureType = Literal["numeric", "categorical"]
ScoreKind = Literal["p_value", "distance"]
FEATURE_TYPES: tuple[str, ...] = ("numeric", "categorical")

Compute = Callable[[np.ndarray, np.ndarray], float]
"""``compute(reference, current) -> score`` on the non-missing values of one column."""


@dataclass(frozen=True)
class StatResult:
    """One statistic on one column: its score, the threshold used and whether that means drift.

    ``kind`` is ``"p_value"`` (drift when ``score < threshold``) or ``"distance"`` (drift when
    ``score >= threshold``).
    """

    name: str
    score: float
    threshold: float
    drifted: bool
    kind: ScoreKind

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftStatistic:
    """A registered statistic: its implementations per feature type, kind and default threshold."""

    name: str
    label: str
    kind: ScoreKind
    default_threshold: float
    numeric: Compute | None = None
    categorical: Compute | None = None
    description: str = ""

    @property
    def feature_types(self) -> tuple[str, ...]:
        """The feature types this statistic accepts (``numeric``, ``categorical``)."""
        return tuple(kind for kind in FEATURE_TYPES if getattr(self, kind) is not None)

    def is_drift(self, score: float, threshold: float) -> bool:
        """Whether ``score`` means drift: p-values below the threshold, distances at or above it."""
        return bool(score < threshold) if self.kind == "p_value" else bool(score >= threshold)

    def evaluate(self, reference: Any, current: Any, *, feature_type: FeatureType = "numeric",
                 threshold: float | None = None) -> StatResult:
        """Compute the statistic on two samples and compare it with ``threshold`` (or the default).

        Missing values are dropped. Numeric samples are converted to float.

        Raises:
            DataError: the statistic does not accept ``feature_type``, a sample is empty or a
                numeric sample holds values that are not numbers.

        Example:
            >>> from efimero.monitor.drift import get_statistic
            >>> get_statistic("ks").evaluate([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]).drifted
            False
        """
        compute = self.implementation(feature_type)
        ref, cur = prepare_pair(reference, current, feature_type)
        return self.result(compute(ref, cur), threshold)

    def implementation(self, feature_type: str) -> Compute:
        """The function that scores ``feature_type`` columns (on prepared samples, see :func:`prepare_pair`).

        Raises:
            DataError: the statistic does not accept ``feature_type``.
        """
        compute = getattr(self, feature_type, None) if feature_type in FEATURE_TYPES else None
        if compute is None:
            raise DataError(
                f"drift statistic {self.name!r} must be given a {' or '.join(self.feature_types)} column. "
                f"Got a {feature_type!r} column instead."
            )
        return compute

    def result(self, score: float, threshold: float | None = None) -> StatResult:
        """Hold ``score`` against ``threshold`` (default: the statistic's own)."""
        threshold = self.default_threshold if threshold is None else float(threshold)
        score = float(score)
        return StatResult(self.name, score, threshold, self.is_drift(score, threshold), self.kind)


def _non_missing(values: Any, what: str) -> pd.Series:
    series = (values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))).dropna()
    if series.empty:
        raise DataError(f"the {what} sample must hold at least one non-missing value. Got none instead.")
    return series.infer_objects()


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def prepare_pair(reference: Any, current: Any, feature_type: str) -> tuple[np.ndarray, np.ndarray]:
    """The non-missing values of both samples, made comparable.

    Numeric columns become float arrays. Categorical columns stay numbers when both samples are
    numeric (so ``1`` and ``1.0`` are one category) and become strings otherwise.

    Raises:
        DataError: a sample has no value left, or a numeric sample holds non-numbers or infinities.
    """
    ref, cur = _non_missing(reference, "reference"), _non_missing(current, "current")
    if feature_type == "numeric":
        arrays = []
        for series, what in ((ref, "reference"), (cur, "current")):
            try:
                array = series.to_numpy(dtype=float)
            except (TypeError, ValueError) as exc:
                raise DataError(f"the {what} sample of a numeric column must hold numbers. Got {exc} instead; "
                                "treat the column as categorical.") from exc
            if not np.isfinite(array).all():
                raise DataError(f"the {what} sample of a numeric column must hold finite numbers. "
                                "Got infinities instead.")
            arrays.append(array)
        return arrays[0], arrays[1]
    if _is_number(ref) and _is_number(cur):
        return ref.to_numpy(dtype=float), cur.to_numpy(dtype=float)
    return ref.astype(str).to_numpy(dtype=object), cur.astype(str).to_numpy(dtype=object)


_REGISTRY: dict[str, DriftStatistic] = {}
STATISTICS: Mapping[str, DriftStatistic] = MappingProxyType(_REGISTRY)
"""Every registered statistic by name, in registration order (read-only)."""


def register(statistic: DriftStatistic) -> DriftStatistic:
    """Add a statistic to the registry and return it (module level, once per statistic).

    Raises:
        ConfigError: the name is taken by another statistic, or the statistic accepts no
            feature type, or its threshold is outside its range.
    """
    existing = _REGISTRY.get(statistic.name)
    if existing is not None and existing != statistic:
        raise ConfigError(f"drift statistic {statistic.name!r} is already registered. Choose another name.")
    if not statistic.feature_types:
        raise ConfigError(f"drift statistic {statistic.name!r} must accept numeric or categorical columns.")
    check_threshold(statistic, statistic.default_threshold)
    _REGISTRY[statistic.name] = statistic
    return statistic


def get_statistic(name: str) -> DriftStatistic:
    """The registered statistic called ``name``.

    Raises:
        ConfigError: no statistic has that name.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"drift statistic must be one of {', '.join(_REGISTRY)}. Got {name!r} instead."
        ) from None


def statistics_for(feature_type: FeatureType) -> list[DriftStatistic]:
    """The registered statistics that accept ``feature_type``, in registration order."""
    return [statistic for statistic in _REGISTRY.values() if feature_type in statistic.feature_types]


def check_threshold(statistic: DriftStatistic, threshold: float) -> float:
    """Return ``threshold`` as a float when it suits the statistic (p-values in (0, 1), distances > 0).

    Raises:
        ConfigError: the threshold is out of range.
    """
    value = float(threshold)
    ok = 0 < value < 1 if statistic.kind == "p_value" else value > 0 and np.isfinite(value)
    if not ok:
        bounds = "strictly between 0 and 1" if statistic.kind == "p_value" else "a positive finite number"
        raise ConfigError(f"the threshold of drift statistic {statistic.name!r} must be {bounds}. "
                          f"Got {threshold!r} instead.")
    return value


def resolve_thresholds(overrides: Mapping[str, float] | None) -> dict[str, float]:
    """Default thresholds of every statistic, with ``overrides`` (statistic name → threshold) applied.

    Raises:
        ConfigError: an override names no registered statistic or is out of range.
    """
    thresholds = {name: statistic.default_threshold for name, statistic in _REGISTRY.items()}
    for name, value in (overrides or {}).items():
        thresholds[name] = check_threshold(get_statistic(name), value)
    return thresholds
