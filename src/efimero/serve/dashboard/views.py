"""The dashboard's views: plain functions of the store, the registries and the configs.

They block (SQL, files, pandas), so the routes run them in the thread pool behind the view
cache. The deployment and retraining modules import the training stack, which the service
must not load just to predict (``tests/serve/test_footprint.py``), so they are imported here,
inside the functions, the first time a dashboard asks.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
import pandas as pd

from efimero.errors import EfimeroError
from efimero.registry import LIVE_ARM, Registry
from efimero.serve.dashboard.schemas import (
    AlertView,
    ArmSeries,
    ClockReading,
    DeploymentView,
    DriftView,
    ExperimentView,
    FeatureDrift,
    Measurement,
    MetricsView,
    RetrainingRunView,
    RetrainingView,
    RolloutView,
    Schedule,
    StatView,
    Summary,
    WindowPoint,
)
from efimero.serve.dashboard.sources import DashboardSources, NotAnEnvironmentError
from efimero.serve.schemas import ModelInfo
from efimero.store import recent_alerts, sessions

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from efimero.bundle import ModelBundle
    from efimero.config import MonitoringRules, TimeTrigger
    from efimero.deploy.rollout_state import RolloutState
    from efimero.experiment.live import ExperimentState
    from efimero.monitor import Measure, VersionWindow

T = TypeVar("T")
Public = Callable[[Any], Any]
"""``ModelHolder.public``: a value as shown over HTTP, absolute paths reduced to registry-relative names."""

ALPHA = 0.05
"""The intervals are 95 %."""
RECENT_DEPLOYMENTS = 10
RECENT_ALERTS = 20


def summary(live: ModelInfo | None, sources: DashboardSources, engine: Engine, *, public: Public) -> Summary:
    """The served version, its environment, rollout, deployments, alerts and retraining status.

    A section that cannot be read (a damaged ``rollout.json``, a store that does not answer) is
    left empty and named in ``problems`` with the reason, so the rest of the dashboard still shows.
    """
    problems: list[str] = []

    def section(name: str, read: Callable[[], T]) -> T | None:
        try:
            return read()
        except EfimeroError as exc:
            problems.append(public(f"{name}: {exc}"))
            return None

    def environment() -> str | None:
        try:
            return sources.environment()
        except NotAnEnvironmentError:
            return None

    def alerts() -> list[AlertView]:
        return [AlertView.model_validate(row) for row in recent_alerts(engine, limit=RECENT_ALERTS)]

    return Summary(
        live=live,
        environment=section("environment", environment),
        rollout=section("rollout", lambda: _rollout(sources.served, public)),
        experiment=section("experiment", lambda: _experiment(sources.served, public)),
        deployments=section("deployments", lambda: _deployments(sources.served, public)) or [],
        alerts=section("alerts", alerts) or [],
        retraining=section("retraining", lambda: _retraining(sources, public)),
        problems=problems,
    )


def rollout_view(state: RolloutState, public: Public) -> RolloutView:
    """A rollout as shown over HTTP: the plan's stages beside the state, no store URL, no server paths."""
    return RolloutView.model_validate(public(state.model_dump()) | {
        "stages": list(state.plan.stages), "hold_minutes": state.plan.hold_minutes})


def experiment_view(state: ExperimentState, public: Public) -> ExperimentView:
    """An experiment as shown over HTTP: no store URL, no server paths."""
    return ExperimentView.model_validate(public(state.model_dump()))


def deployment_view(record: dict[str, Any], public: Public) -> DeploymentView:
    """A record of ``deployments.json`` as shown over HTTP: each step as one line, no host or source path."""
    from efimero.deploy import Step

    return DeploymentView.model_validate(public(record | {
        "steps": [Step(**step).line() for step in record.get("steps", [])]}))


def _rollout(root: Path, public: Public) -> RolloutView | None:
    from efimero.deploy.rollout_state import read_state

    state = read_state(root)
    return None if state is None else rollout_view(state, public)


def _experiment(root: Path, public: Public) -> ExperimentView | None:
    from efimero.experiment.live import read_state

    state = read_state(root)
    return None if state is None else experiment_view(state, public)


def _deployments(root: Path, public: Public) -> list[DeploymentView]:
    from efimero.deploy import DeploymentLog

    records = DeploymentLog(root).records()[-RECENT_DEPLOYMENTS:]
    return [deployment_view(record, public) for record in reversed(records)]


def _retraining(sources: DashboardSources, public: Public) -> RetrainingView:
    from efimero.pipeline.runs import read_runs

    settings = sources.retraining.retraining
    runs = read_runs(settings.models_dir)
    last = RetrainingRunView.model_validate(public(runs[-1])) if runs else None
    schedule = _schedule(Registry(settings.models_dir), settings.triggers.time_based)
    return RetrainingView(last_run=last, schedule=schedule)


def _schedule(registry: Registry, time_based: TimeTrigger) -> Schedule:
    """When the time trigger makes a scheduled run retrain, from the live version's training time."""
    live = registry.current()
    if live is None:
        return Schedule(enabled=time_based.enabled, detail="the retraining registry has no live version yet")
    trained = datetime.fromisoformat(registry.info(live).created_at)
    if not time_based.enabled:
        return Schedule(enabled=False, live_version=live, trained_at=trained,
                        detail="the time trigger is disabled: only the other triggers start a retraining")
    earliest = trained + timedelta(days=time_based.min_days_since_last)
    due = trained + timedelta(days=time_based.max_days_since_last)
    return Schedule(
        enabled=True, live_version=live, trained_at=trained, earliest=earliest, due=due,
        detail=f"a scheduled run retrains {live} on any fired trigger from {earliest:%Y-%m-%d %H:%M} UTC "
        f"({time_based.min_days_since_last:g} days after training), and in any case from {due:%Y-%m-%d %H:%M} UTC "
        f"({time_based.max_days_since_last:g} days)",
    )


def metrics(engine: Engine, rules: MonitoringRules, *, clock: ClockReading, window_minutes: float,
            windows: int) -> MetricsView:
    """``windows`` consecutive windows of ``window_minutes`` ending at ``clock.now``, per version and arm.

    Each window is :func:`efimero.monitor.window_metrics` (prediction drift left out: the drift
    view covers it), plus 95 % intervals: Wilson for online accuracy (a share of sessions),
    Student's t for the mean session duration (from the window's session durations).
    """
    from efimero.monitor import window_metrics

    length = timedelta(minutes=window_minutes)
    starts = [clock.now - length * (windows - index) for index in range(windows)]
    measured = [
        {(window.model_version, window.arm): window
         for window in window_metrics(engine, start=start, end=start + length, min_sessions=rules.min_sessions,
                                      min_predictions=rules.min_predictions)}
        for start in starts
    ]
    durations = _session_durations(engine, starts[0], length, windows)
    arms = sorted(set().union(*measured), key=lambda key: (key[1] != LIVE_ARM, key[1], key[0]))
    return MetricsView(
        clock=clock, window_minutes=window_minutes, windows=windows, min_sessions=rules.min_sessions,
        min_predictions=rules.min_predictions,
        series=[ArmSeries(model_version=version, arm=arm, points=[
            _point(measured[index].get((version, arm)), start, length, durations.get((version, arm, index)))
            for index, start in enumerate(starts)]) for version, arm in arms],
    )


def _session_durations(engine: Engine, start: datetime, length: timedelta,
                       windows: int) -> dict[tuple[str, str, int], np.ndarray]:
    """Session durations in seconds by (version, arm, window index): what the duration interval needs."""
    logs = sessions(engine, start=start, end=start + length * windows)
    if logs.empty:
        return {}
    index = (pd.to_datetime(logs["event_time"], utc=True) - pd.Timestamp(start)) // pd.Timedelta(length)
    seconds = logs["session_duration_ms"].astype(float) / 1000.0
    groups = seconds.groupby([logs["model_version"], logs["arm"], index])
    return {cast(tuple[str, str, int], key): values.to_numpy() for key, values in groups}


def _point(window: VersionWindow | None, start: datetime, length: timedelta,
           durations: np.ndarray | None) -> WindowPoint:
    if window is None:
        nothing = Measurement(value=None, count=0, reason="no traffic in this window")
        return WindowPoint(start=start, end=start + length, predictions=0, errors=0, sessions=0, accuracy=nothing,
                           session_duration_s=nothing, latency_p95_ms=nothing, error_rate=nothing)
    confirmed = window.verdicts.get("confirmed", 0)
    return WindowPoint(
        start=window.start, end=window.end, predictions=window.predictions, errors=window.errors,
        sessions=window.sessions,
        accuracy=_measurement(window.accuracy, lambda: _wilson(confirmed, window.sessions)),
        session_duration_s=_measurement(window.session_duration_s,
                                        None if durations is None else lambda: _mean_interval(durations)),
        latency_p95_ms=_measurement(window.latency_ms["p95"]),
        error_rate=_measurement(window.error_rate),
    )


def _measurement(measure: Measure, interval: Callable[[], tuple[float, float]] | None = None) -> Measurement:
    """The monitor's measure, with its interval when it was measured and one applies."""
    low = high = None
    if measure.value is not None and interval is not None:
        low, high = interval()
        low, high = min(low, measure.value), max(high, measure.value)  # rounding at 0 and 1 must not exclude it
    return Measurement(value=measure.value, count=measure.count, low=low, high=high, reason=measure.reason)


def _wilson(successes: int, trials: int) -> tuple[float, float]:
    """Wilson's interval: unlike the normal approximation it stays inside [0, 1] and holds for small samples."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(successes, trials, alpha=ALPHA, method="wilson")
    return float(low), float(high)


def _mean_interval(values: np.ndarray) -> tuple[float, float]:
    """Student's t interval of the mean (a single session has no spread: its interval is the value)."""
    from statsmodels.stats.weightstats import DescrStatsW

    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    low, high = DescrStatsW(values).tconfint_mean(alpha=ALPHA)
    return float(low), float(high)


def drift(engine: Engine, sources: DashboardSources, bundle: ModelBundle | None, rules: MonitoringRules, *,
          clock: ClockReading, minutes: float) -> DriftView:
    """Each feature of the last ``minutes``' sessions against the live version's training data.

    The sessions are those the retraining drift trigger measures (every logged visit of the
    window, :func:`efimero.collect.collect.session_drift`); the statistics and the rule that
    calls a feature drifted are :func:`efimero.monitor.detect_drift`'s, weighted by the live
    model's importance. Fewer than ``rules.min_sessions`` sessions say nothing, so then the view
    gives the reason instead of numbers.
    """
    from efimero.monitor import detect_drift

    start = clock.now - timedelta(minutes=minutes)

    def view(**fields: Any) -> DriftView:
        return DriftView(clock=clock, start=start, end=clock.now, version=bundle.version if bundle else None,
                         **fields)

    if bundle is None:
        return view(current_rows=0, problem="no model is loaded yet")
    reference = sources.reference(bundle)
    if reference.frame is None:
        return view(current_rows=0, problem=f"the training data of {bundle.version} cannot serve as the reference: "
                    f"{reference.problem}")
    logs = sessions(engine, start=start, end=clock.now)
    if len(logs) < rules.min_sessions:
        return view(current_rows=len(logs), problem=f"{len(logs)} sessions in the last {minutes:g} minutes, fewer "
                    f"than the {rules.min_sessions} needed (retraining.monitoring.min_sessions)")
    current = pd.DataFrame(logs["features"].tolist())
    features = [name for name in bundle.feature_names if name in current.columns and name in reference.frame.columns]
    report = detect_drift(reference.frame[features], current[features], prediction_columns=[],
                          importance=reference.importance)
    columns = sorted(report.features, key=lambda column: (not column.drifted, -(column.importance or 0.0)))
    return view(
        reference_rows=report.reference_rows, current_rows=report.current_rows, verdict=report.verdict,
        drift_share=report.drift_share, weighted_drift_share=report.weighted_drift_share,
        share_threshold=report.share_threshold, summary=report.summary,
        features=[FeatureDrift(
            feature=column.column, kind=column.feature_type, drifted=column.drifted, reason=column.reason,
            importance=column.importance,
            stats={name: StatView(score=result.score, threshold=result.threshold, kind=result.kind,
                                  drifted=result.drifted) for name, result in column.stats.items()},
        ) for column in columns],
    )
