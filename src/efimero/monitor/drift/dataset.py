"""Drift between a reference and a current dataset: per column, predictions, and a dataset verdict.

:func:`detect_drift` runs every registered statistic that accepts a column's type
(numeric: KS, PSI, Wasserstein/σ, Jensen–Shannon; categorical: PSI, Jensen–Shannon, chi²),
decides per column whether it drifted, does the same over the predicted class columns, and
summarises the features in one number, the share of drifted features.

The rule that decides a column drifted (:data:`DRIFT_RULE`): **the column's test is significant
and at least one distance statistic reaches its threshold.** The test (KS p-value for numeric
columns, chi² for categorical ones, default p < 0.05) says the difference is unlikely to be
sampling noise; the distances (PSI ≥ 0.1, Wasserstein ≥ 0.1 σ, Jensen–Shannon ≥ 0.1) say it is
large enough to matter. Either alone misleads: with thousands of rows a test flags shifts far
too small to affect a model, and with a few hundred rows the histogram distances are inflated
by noise. Any one distance suffices because each sees a different change: PSI the shares of the
reference's deciles (tails included), Wasserstein a move of the mass in units of spread,
Jensen–Shannon the shape over the pooled range.

Column types: explicit ``categorical`` columns; otherwise the kinds of
:data:`efimero.schema.CSS_TASK` (binary features and integers with at most 10 possible values are
categorical, e.g. ``user_density_group``); otherwise booleans, text and integer-valued columns
with at most 10 distinct values are categorical and the rest numeric.

The dataset verdict: ``drift_share`` is the share of feature columns that drifted, in [0, 1].
Given the live model's feature ``importance``, each feature counts by its importance instead
(``weighted_drift_share``): a share of 19 features lets a large shift in the three features the
model relies on pass as 0.16 and lets a shift in features it never splits on count as much, so
the weighted share is the one the verdict holds against ``share_threshold`` (default 0.5), with
the unweighted share reported beside it. Without importance the unweighted share decides, and
``share_basis`` says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from efimero.errors import ConfigError, DataError, format_list
from efimero.monitor.drift.registry import (
    FeatureType,
    StatResult,
    get_statistic,
    prepare_pair,
    resolve_thresholds,
    statistics_for,
)
from efimero.schema import CSS_TASK, TabularTask

logger = logging.getLogger(__name__)

NO_DRIFT = "no drift"
PREDICTION_DRIFT = "prediction drift"
FEATURE_DRIFT = "feature drift"
DATASET_DRIFT = "dataset drift"
"""Verdicts, least to most severe: nothing drifted; only predicted classes; some features; the dataset."""
DEFAULT_SHARE_THRESHOLD = 0.5
"""Share of drifted features from which the whole dataset counts as drifted."""
CATEGORICAL_MAX_VALUES = 10
"""Integer columns with at most this many (possible or seen) values are treated as categorical."""
TESTS: dict[str, str] = {"numeric": "ks", "categorical": "chi2"}
"""The hypothesis test of each column type (its p-value gates the distances)."""

DRIFT_RULE = (
    "a column drifted when its test is significant (KS for numeric, chi² for categorical columns: p below its "
    "threshold) and at least one distance reaches its threshold (PSI, Wasserstein/σ and Jensen–Shannon for numeric, "
    "PSI and Jensen–Shannon for categorical columns); the dataset drifted when the share of drifted features, each "
    "weighted by the model's feature importance when given, reaches the share threshold"
)
WEIGHTED_BASIS = "each feature counts by the model's feature importance"
UNWEIGHTED_BASIS = "no feature importance was given"
ZERO_IMPORTANCE_BASIS = "the given importance is zero for every compared feature"
"""``DriftReport.share_basis``: why the verdict used the weighted or the unweighted share."""

Role = Literal["feature", "prediction"]


@dataclass(frozen=True)
class ColumnDrift:
    """Every applicable statistic on one column, whether it drifted and why."""

    column: str
    role: Role
    feature_type: FeatureType
    reference_rows: int
    current_rows: int
    stats: dict[str, StatResult]
    drifted: bool
    reason: str
    importance: float | None = None
    """The feature's share of the model's importance (features only, when importance was given)."""

    @property
    def test(self) -> StatResult | None:
        """The column's hypothesis test (KS or chi²), when it ran."""
        return self.stats.get(TESTS[self.feature_type])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DriftReport:
    """What :func:`detect_drift` found: per column, over the predictions, and for the dataset.

    ``drift_share`` is the unweighted share of drifted features and ``weighted_drift_share`` the
    importance-weighted one (``None`` without importance), both in [0, 1]; ``decision_share`` is
    the one the verdict used (``share_basis`` says which and why) and ``dataset_drift`` is
    ``decision_share >= share_threshold``. ``prediction_share`` is the share of predicted class
    columns that drifted and ``prediction_drift`` whether any did (both ``None`` without
    prediction columns).
    """

    reference_rows: int
    current_rows: int
    features: list[ColumnDrift]
    predictions: list[ColumnDrift]
    drift_share: float
    weighted_drift_share: float | None
    share_basis: str
    share_threshold: float
    dataset_drift: bool
    prediction_share: float | None
    prediction_drift: bool | None
    verdict: str
    summary: str
    thresholds: dict[str, float]
    rule: str = DRIFT_RULE
    drifted_features: list[str] = field(default_factory=list)

    @property
    def drifted_predictions(self) -> list[str]:
        return [c.column for c in self.predictions if c.drifted]

    @property
    def decision_share(self) -> float:
        """The share the dataset verdict was decided on: weighted when importance was given."""
        return self.drift_share if self.weighted_drift_share is None else self.weighted_drift_share

    @property
    def share_text(self) -> str:
        """Both shares in words, the deciding one first (trigger details, summaries)."""
        return _share_text(self.drift_share, self.weighted_drift_share, self.share_basis)

    def column(self, name: str) -> ColumnDrift:
        """The result of one feature or prediction column.

        Raises:
            DataError: the column was not compared.
        """
        for result in (*self.features, *self.predictions):
            if result.column == name:
                return result
        raise DataError(f"column must be one of the compared columns. Got {name!r} instead.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"drifted_predictions": self.drifted_predictions, "decision_share": self.decision_share}


def _is_integer_valued(values: pd.Series) -> bool:
    array = values.dropna().to_numpy(dtype=float)
    return bool(np.all(np.isfinite(array)) and np.all(array == np.round(array)))


def _numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def infer_feature_types(reference: pd.DataFrame, current: pd.DataFrame, columns: Sequence[str], *,
                        categorical: Sequence[str] | None = None,
                        task: TabularTask = CSS_TASK) -> dict[str, FeatureType]:
    """The type of each column for the drift statistics: ``numeric`` or ``categorical``.

    With ``categorical`` given, exactly those columns (and any that hold text) are categorical.
    Otherwise a column of ``task`` follows its kind (binary, or integer with at most 10 possible
    values → categorical); any other column is categorical when it holds booleans or text, or
    integers with at most 10 distinct values in both samples together.

    Example:
        >>> frame = pd.DataFrame({"hour_of_day": [1, 5, 23], "is_mobile": [0, 1, 1]})
        >>> infer_feature_types(frame, frame, ["hour_of_day", "is_mobile"])
        {'hour_of_day': 'numeric', 'is_mobile': 'categorical'}
    """
    kinds = {feature.name: feature for feature in task.features}
    types: dict[str, FeatureType] = {}
    for name in columns:
        ref, cur = reference[name], current[name]
        if not (_numeric(ref.dropna().infer_objects()) and _numeric(cur.dropna().infer_objects())):
            types[name] = "categorical"
        elif categorical is not None:
            types[name] = "categorical" if name in categorical else "numeric"
        elif name in kinds:
            feature = kinds[name]
            small = feature.kind == "integer" and feature.maximum - feature.minimum + 1 <= CATEGORICAL_MAX_VALUES
            types[name] = "categorical" if feature.kind == "binary" or small else "numeric"
        else:
            pooled = pd.concat([ref, cur], ignore_index=True)
            few = pooled.nunique(dropna=True) <= CATEGORICAL_MAX_VALUES
            types[name] = "categorical" if few and _is_integer_valued(pooled) else "numeric"
    return types


def _require(frame: pd.DataFrame, what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"the {what} data must be a pandas DataFrame. Got {type(frame).__name__} instead.")
    if frame.empty:
        raise DataError(f"the {what} data must hold at least one row. Got {len(frame)} rows instead.")


def _check_present(names: Sequence[str], reference: pd.DataFrame, current: pd.DataFrame, what: str) -> list[str]:
    names = list(dict.fromkeys(names))
    for frame, side in ((reference, "reference"), (current, "current")):
        missing = [name for name in names if name not in frame.columns]
        if missing:
            raise DataError(f"the {side} data must hold every {what} column. Got no column {format_list(missing)}; "
                            "name columns present in both files.")
    return names


def _default_columns(reference: pd.DataFrame, current: pd.DataFrame, predictions: Sequence[str],
                     task: TabularTask) -> list[str]:
    """The task's features when the data holds any of them, else every shared non-prediction column."""
    schema = [name for name in task.feature_names if name in reference.columns or name in current.columns]
    if schema:
        return _check_present(schema, reference, current, "feature")
    shared = [name for name in reference.columns if name in current.columns and name not in predictions]
    if not shared:
        raise DataError("the reference and current data must share at least one column to compare. Got none; "
                        "check that both files hold the same columns.")
    return shared


def column_drifted(stats: Mapping[str, StatResult]) -> tuple[bool, str]:
    """Apply :data:`DRIFT_RULE` to one column's results: (drifted, the reason in words).

    A column with no test (or no distance) is decided by the distances (or the test) alone.
    """
    def describe(result: StatResult) -> str:
        label = get_statistic(result.name).label
        sign = ("<" if result.drifted else "≥") if result.kind == "p_value" else ("≥" if result.drifted else "<")
        return f"{label} {result.score:.3g} {sign} {result.threshold:g}"

    tests = [r for r in stats.values() if r.kind == "p_value"]
    distances = [r for r in stats.values() if r.kind == "distance"]
    significant = [r for r in tests if r.drifted]
    large = [r for r in distances if r.drifted]
    if tests and not significant:
        return False, "; ".join(describe(r) for r in tests)
    if distances and not large:
        head = f"{'; '.join(describe(r) for r in significant)} but " if significant else ""
        return False, f"{head}no distance reaches its threshold"
    return True, "; ".join(describe(r) for r in (*significant, *large))


def _evaluate(name: str, role: Role, feature_type: FeatureType, reference: pd.Series, current: pd.Series,
              thresholds: Mapping[str, float], importance: float | None = None) -> ColumnDrift:
    try:
        ref, cur = prepare_pair(reference, current, feature_type)
    except DataError as exc:
        raise DataError(f"column {name!r}: {exc}") from None
    stats: dict[str, StatResult] = {}
    for statistic in statistics_for(feature_type):
        score = statistic.implementation(feature_type)(ref, cur)
        stats[statistic.name] = statistic.result(score, thresholds[statistic.name])
    drifted, reason = column_drifted(stats)
    return ColumnDrift(name, role, feature_type, len(ref), len(cur), stats, drifted, reason, importance)


def _non_negative(value: Any) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(number) and number >= 0)


def _weights(importance: Mapping[str, float] | None, names: Sequence[str]) -> tuple[dict[str, float] | None, str]:
    """Each compared feature's share of ``importance`` (absent features count 0), and the share basis.

    Raises:
        DataError: an importance is negative or not a finite number.
    """
    if importance is None:
        return None, UNWEIGHTED_BASIS
    bad = [f"{name}={value!r}" for name, value in importance.items() if not _non_negative(value)]
    if bad:
        raise DataError(f"importance must map features to finite numbers ≥ 0. Got {format_list(bad)} instead.")
    total = sum(float(importance.get(name, 0.0)) for name in names)
    if total == 0:
        return None, ZERO_IMPORTANCE_BASIS
    return {name: float(importance.get(name, 0.0)) / total for name in names}, WEIGHTED_BASIS


def _share_text(share: float, weighted: float | None, basis: str) -> str:
    if weighted is None:
        return f"unweighted drift share {share:.2f}, as {basis}"
    return f"importance-weighted drift share {weighted:.2f}, unweighted {share:.2f}"


def _summary(features: list[ColumnDrift], predictions: list[ColumnDrift], share: float, weighted: float | None,
             basis: str, threshold: float) -> str:
    drifted = [c.column for c in features if c.drifted]
    text = (f"{len(drifted)} of {len(features)} features drifted ({_share_text(share, weighted, basis)}; the "
            f"dataset drifts from {threshold:g})" + (f": {format_list(drifted)}" if drifted else ""))
    if predictions:
        moved = [c.column for c in predictions if c.drifted]
        text += (f"; {len(moved)} of {len(predictions)} predicted class columns drifted"
                 + (f": {format_list(moved)}" if moved else ""))
    return text


def detect_drift(reference: pd.DataFrame, current: pd.DataFrame, *, columns: Sequence[str] | None = None,
                 categorical: Sequence[str] | None = None, prediction_columns: Sequence[str] | None = None,
                 thresholds: Mapping[str, float] | None = None,
                 share_threshold: float = DEFAULT_SHARE_THRESHOLD,
                 importance: Mapping[str, float] | None = None) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column and decide what drifted.

    Args:
        reference: the data the model was trained on (or a trusted earlier window).
        current: the data to check.
        columns: feature columns to compare. Default: the features of :data:`~efimero.schema.CSS_TASK`
            when the data holds them, else every column both frames share (predictions excluded).
        categorical: columns to treat as categorical (replaces the inference, see
            :func:`infer_feature_types`).
        prediction_columns: predicted class columns. Default: the ``css_class_*`` targets present in
            both frames. Pass ``[]`` to skip prediction drift.
        thresholds: statistic name → threshold, overriding the defaults (``ks`` 0.05, ``chi2`` 0.05,
            ``psi`` 0.1, ``wasserstein`` 0.1, ``jensen_shannon`` 0.1).
        share_threshold: share of drifted features from which the dataset drifted, in (0, 1]; held
            against the importance-weighted share when ``importance`` is given.
        importance: feature → importance of the model the data feeds (e.g.
            :func:`~efimero.monitor.drift.feature_importance` of the live version); normalised over
            the compared features, features it does not name count 0.

    Returns:
        The :class:`DriftReport`; its ``decision_share`` is the dataset's drift score in [0, 1].

    Raises:
        DataError: a frame is empty, a named column is missing (or ``categorical`` names a column
            not compared), a column has no usable value, or an importance is negative.
        ConfigError: a threshold names an unknown statistic or is out of range.

    Example:
        >>> from efimero.data.generate import generate_dataset
        >>> report = detect_drift(generate_dataset(500, seed=1), generate_dataset(500, seed=2))
        >>> report.verdict, report.drift_share
        ('no drift', 0.0)
    """
    _require(reference, "reference")
    _require(current, "current")
    if not 0 < share_threshold <= 1:
        raise ConfigError(f"share_threshold must be in (0, 1]. Got {share_threshold!r} instead.")
    limits = resolve_thresholds(thresholds)
    if prediction_columns is None:
        predictions = [name for name in CSS_TASK.class_target_names
                       if name in reference.columns and name in current.columns]
    else:
        predictions = _check_present(prediction_columns, reference, current, "prediction")
    if columns is None:
        names = _default_columns(reference, current, predictions, CSS_TASK)
    else:
        names = _check_present(columns, reference, current, "requested")
    if not names:
        raise DataError("columns must name at least one feature column to compare. Got none instead.")
    unknown = [name for name in categorical or () if name not in names]
    if unknown:
        raise DataError(f"categorical must name compared feature columns ({format_list(names)}). "
                        f"Got {format_list(unknown)} instead.")
    weights, basis = _weights(importance, names)
    types = infer_feature_types(reference, current, names, categorical=categorical)
    features = [_evaluate(name, "feature", types[name], reference[name], current[name], limits,
                          None if weights is None else weights[name]) for name in names]
    outputs = [_evaluate(name, "prediction", "categorical", reference[name], current[name], limits)
               for name in predictions]

    share = sum(c.drifted for c in features) / len(features)
    weighted = None if weights is None else float(min(sum(weights[c.column] for c in features if c.drifted), 1.0))
    dataset_drift = (share if weighted is None else weighted) >= share_threshold
    prediction_share = sum(c.drifted for c in outputs) / len(outputs) if outputs else None
    prediction_drift = bool(prediction_share) if outputs else None
    verdict = (DATASET_DRIFT if dataset_drift else FEATURE_DRIFT if share > 0
               else PREDICTION_DRIFT if prediction_drift else NO_DRIFT)
    report = DriftReport(
        reference_rows=len(reference), current_rows=len(current), features=features, predictions=outputs,
        drift_share=share, weighted_drift_share=weighted, share_basis=basis, share_threshold=float(share_threshold),
        dataset_drift=dataset_drift, prediction_share=prediction_share, prediction_drift=prediction_drift,
        verdict=verdict, summary=_summary(features, outputs, share, weighted, basis, share_threshold),
        thresholds=limits,
        drifted_features=[c.column for c in features if c.drifted],
    )
    logger.info("drift: %s (%s)", report.verdict, report.summary)
    return report
