"""What one monitoring window shows per model version and traffic arm.

A window is [start, end) of visit time (the predictions' ``event_time``), so simulated traffic,
whose clock runs far from the wall clock, is measured where it happened. Per (version, arm):

* **online accuracy**: the share of the window's sessions whose behaviour confirmed the served
  style, judged by the rules of ``efimero collect`` (:func:`efimero.collect.judge`,
  :func:`efimero.collect.online_accuracy`). Every logged session counts: the service validated each
  log when it accepted it, and arms are compared within one window, so no length filter applies;
* **engagement**: mean session duration, bounce rate and scroll depth, and the mean rating;
* **latency** p50/p95/p99 of the server-side latency recorded with each prediction;
* **error rate**: failed / (served + failed) predictions;
* **prediction drift**: the largest PSI, over the class groups, between the classes served and
  the classes the version predicts on its own training data (every file its metadata records,
  checked against its sha256 by :func:`~efimero.monitor.drift.reference_of`). The version's
  predictions, not the training labels, are the reference: a model never predicts its labels'
  distribution exactly (rare classes are under-predicted), and that gap alone would read as drift.

A number behind too few observations means nothing, so it is never reported as 0 or as a
pass: its :class:`Measure` holds ``None`` and the reason (accuracy and engagement need
``min_sessions`` sessions, the rating as many ratings; latency, error rate and drift
``min_predictions`` predictions).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from efimero.collect import judge, online_accuracy
from efimero.errors import DataError, EfimeroError
from efimero.monitor.drift.psi import psi_categorical
from efimero.monitor.drift.reference import reference_of
from efimero.schema import CSS_TASK
from efimero.store import prediction_errors, predictions, sessions

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from efimero.registry import Registry

PERCENTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0}
"""The latency percentiles reported per version and arm."""


@dataclass(frozen=True)
class Measure:
    """A number measured over ``count`` observations, or ``None`` and the ``reason`` it was not."""

    value: float | None
    count: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _too_few(count: int, minimum: int, what: str) -> Measure | None:
    """An unmeasured :class:`Measure` saying so when ``count`` is below ``minimum``, else None."""
    return Measure(None, count, f"{count} {what}, fewer than the {minimum} needed") if count < minimum else None


def _measure(count: int, minimum: int, what: str, compute: Callable[[], float]) -> Measure:
    """``compute()`` when at least ``minimum`` observations back it; otherwise why not."""
    return _too_few(count, minimum, what) or Measure(float(compute()), count)


@dataclass(frozen=True)
class VersionWindow:
    """Everything one window shows about one version on one traffic arm."""

    model_version: str
    arm: str
    start: datetime
    end: datetime
    predictions: int
    errors: int
    sessions: int
    verdicts: dict[str, int]
    """Judged sessions per verdict: confirmed, rejected, ambiguous."""
    accuracy: Measure
    session_duration_s: Measure
    bounce_rate: Measure
    scroll_depth: Measure
    rating: Measure
    latency_ms: dict[str, Measure]
    """By percentile name: ``p50``, ``p95``, ``p99``."""
    error_rate: Measure
    prediction_drift: Measure
    """The largest PSI over the class groups."""
    drift_by_class: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        measures = {name: getattr(self, name).to_dict() for name in (
            "accuracy", "session_duration_s", "bounce_rate", "scroll_depth", "rating", "error_rate",
            "prediction_drift")}
        return {
            "model_version": self.model_version, "arm": self.arm, "start": self.start.isoformat(),
            "end": self.end.isoformat(), "predictions": self.predictions, "errors": self.errors,
            "sessions": self.sessions, "verdicts": self.verdicts, **measures,
            "latency_ms": {name: measure.to_dict() for name, measure in self.latency_ms.items()},
            "drift_by_class": self.drift_by_class,
        }


def window_metrics(
    engine: Engine, *, start: datetime, end: datetime, min_sessions: int = 30, min_predictions: int = 100,
    registry: Registry | None = None,
) -> list[VersionWindow]:
    """Per (version, arm) with predictions, errors or sessions in [start, end): the window's metrics.

    Args:
        engine: the interaction store (a reader's engine is enough).
        start: first visit time of the window (inclusive).
        end: end of the window (exclusive).
        min_sessions: fewer sessions (or ratings) leave accuracy and engagement (the rating) unmeasured.
        min_predictions: fewer predictions leave latency, error rate and prediction drift unmeasured.
        registry: where each version's metadata names its training data; without it prediction drift
            is not measured (and says so).

    Raises:
        StoreError: the store cannot be read.

    Example:
        >>> windows = window_metrics(open_engine("sqlite:///data/efimero.db", create=False),
        ...                          start=now - timedelta(minutes=5), end=now)  # doctest: +SKIP
        >>> [(w.model_version, w.arm, w.accuracy.value) for w in windows]  # doctest: +SKIP
        [('v_20261125_153000', 'canary', 0.71), ('v_20261125_091500', 'live', 0.74)]
    """
    served = predictions(engine, start=start, end=end)
    failed = prediction_errors(engine, start=start, end=end)
    logs = sessions(engine, start=start, end=end)
    records = cast(list[dict[str, Any]], logs.astype(object).where(logs.notna(), None).to_dict(orient="records"))
    logs["status"] = [judge(session).status for session in records]
    served_by, failed_by, logs_by = (_by_version_and_arm(frame) for frame in (served, failed, logs))
    return [
        _version_window(version, arm, start, end, served_by.get((version, arm), served.iloc[:0]),
                        len(failed_by.get((version, arm), ())), logs_by.get((version, arm), logs.iloc[:0]),
                        min_sessions=min_sessions, min_predictions=min_predictions, registry=registry)
        for version, arm in sorted({*served_by, *failed_by, *logs_by})
    ]


def _by_version_and_arm(frame: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    return {cast(tuple[str, str], key): rows for key, rows in frame.groupby(["model_version", "arm"])}


def _version_window(version: str, arm: str, start: datetime, end: datetime, served: pd.DataFrame, errors: int,
                    logs: pd.DataFrame, *, min_sessions: int, min_predictions: int,
                    registry: Registry | None) -> VersionWindow:
    n_sessions = len(logs)
    ratings = logs["user_satisfaction"].dropna()
    latencies = served["latency_ms"].dropna().to_numpy(dtype=float)
    drift, by_class = _prediction_drift(version, served, min_predictions, registry)

    def engagement(column: str, scale: float = 1.0) -> Measure:
        return _measure(n_sessions, min_sessions, "sessions", lambda: logs[column].mean() / scale)

    return VersionWindow(
        model_version=version, arm=arm, start=start, end=end, predictions=len(served), errors=errors,
        sessions=n_sessions, verdicts={str(k): int(v) for k, v in logs["status"].value_counts().items()},
        accuracy=_measure(n_sessions, min_sessions, "judged sessions", lambda: cast(float, online_accuracy(logs))),
        session_duration_s=engagement("session_duration_ms", 1000.0),
        bounce_rate=engagement("bounce_rate"),
        scroll_depth=engagement("scroll_depth"),
        rating=_measure(len(ratings), min_sessions, "ratings", ratings.mean),
        latency_ms={name: _latency(latencies, len(served), q, min_predictions) for name, q in PERCENTILES.items()},
        error_rate=_measure(len(served) + errors, min_predictions, "requests (served and failed)",
                            lambda: errors / (len(served) + errors)),
        prediction_drift=drift, drift_by_class=by_class,
    )


def _latency(latencies: np.ndarray, served: int, q: float, minimum: int) -> Measure:
    if served >= minimum and len(latencies) < minimum:
        return Measure(None, len(latencies), f"only {len(latencies)} of {served} predictions recorded their latency")
    return _measure(len(latencies), minimum, "predictions with a latency", lambda: np.percentile(latencies, q))


def _prediction_drift(version: str, served: pd.DataFrame, minimum: int,
                      registry: Registry | None) -> tuple[Measure, dict[str, float]]:
    """Largest PSI of the served classes against the version's predictions on its training data."""
    count = len(served)
    too_few = _too_few(count, minimum, "predictions")
    if too_few is not None:
        return too_few, {}
    if registry is None:
        return Measure(None, count, f"no registry was given to find the training data of {version}"), {}
    try:
        expected = training_predictions(registry.root, version)
    except EfimeroError as exc:
        return Measure(None, count, str(exc)), {}
    classes = pd.DataFrame(served["css_classes"].tolist()).add_prefix("css_class_")
    scores = {target: psi_categorical(expected[target].to_numpy(), classes[target].to_numpy())
              for target in CSS_TASK.class_target_names if target in classes and target in expected}
    if not scores:
        return Measure(None, count, f"the predictions of {version} hold none of its class groups"), {}
    return Measure(max(scores.values()), count), scores


@functools.lru_cache(maxsize=8)
def training_predictions(root: Path, version: str) -> pd.DataFrame:
    """The classes ``version`` of the registry at ``root`` predicts on its own training data.

    Cached per version: a version name is issued once and its files never change, and the
    service's loop asks every window. A failure is not cached, so restored files are used.

    Raises:
        RegistryError: the version cannot be found or loaded.
        DataError: its training data is gone, changed or unreadable.
    """
    from efimero.registry import Registry

    bundle = Registry(root).load(version)
    reference = reference_of(bundle)
    if reference.frame is None:
        raise DataError(f"the training data of {version} cannot serve as the reference: {reference.problem}")
    predicted = bundle.predict_frame(reference.frame)
    return predicted[[target for target in CSS_TASK.class_target_names if target in predicted]]
