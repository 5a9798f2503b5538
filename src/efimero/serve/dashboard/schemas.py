"""Bodies of the dashboard's JSON endpoints and admin actions; every field documents itself in OpenAPI."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from efimero.serve.schemas import ModelInfo

ClockSource = Literal["wall", "store", "given"]
RolloutClock = Literal["wall", "store"]


class ClockReading(BaseModel):
    """The moment a view ends at, and where that moment came from (see :mod:`efimero.serve.dashboard`)."""

    now: datetime = Field(..., description="End of the newest window shown (UTC)")
    source: ClockSource = Field(
        ..., description="wall: the server's clock; store: the newest visit in the store, because the wall clock's "
        "span holds no visit (simulated or replayed traffic); given: the request's ?at="
    )
    newest_visit: datetime | None = Field(None, description="The newest visit in the store (None while it is empty)")


class Measurement(BaseModel):
    """A number over ``count`` observations with its 95 % interval where one is computed, or why it is missing."""

    value: float | None = Field(..., description="None when too few observations back it (see reason)")
    count: int = Field(..., ge=0, description="Observations behind the value")
    low: float | None = Field(None, description="Lower end of the 95 % interval (accuracy, session duration)")
    high: float | None = Field(None, description="Upper end of the 95 % interval (accuracy, session duration)")
    reason: str | None = Field(None, description="Why value is None")


class WindowPoint(BaseModel):
    """One monitoring window of one version on one arm."""

    start: datetime
    end: datetime
    predictions: int = Field(..., ge=0)
    errors: int = Field(..., ge=0, description="Failed predictions")
    sessions: int = Field(..., ge=0, description="Interaction logs of the window's predictions")
    accuracy: Measurement = Field(
        ..., description="Online accuracy: share of sessions that confirmed the served style, Wilson 95 % interval")
    session_duration_s: Measurement = Field(..., description="Mean session duration, Student-t 95 % interval")
    latency_p95_ms: Measurement = Field(..., description="95th percentile of the server-side prediction latency")
    error_rate: Measurement = Field(..., description="Failed / (served + failed) predictions")


class ArmSeries(BaseModel):
    """Consecutive windows of one (version, arm), aligned with :attr:`MetricsView.windows`."""

    model_version: str
    arm: str = Field(..., description="'live' for the current version, else the candidate's arm (e.g. canary)")
    points: list[WindowPoint] = Field(..., description="One per window, oldest first; empty windows say so")


class MetricsView(BaseModel):
    """Per-arm metrics over consecutive windows (``efimero.monitor.window_metrics`` on each)."""

    clock: ClockReading
    window_minutes: float = Field(..., gt=0)
    windows: int = Field(..., ge=1, description="How many consecutive windows end at clock.now")
    min_sessions: int = Field(..., description="Fewer sessions leave accuracy and session duration unmeasured")
    min_predictions: int = Field(..., description="Fewer predictions leave latency and error rate unmeasured")
    series: list[ArmSeries]


class StatView(BaseModel):
    """One drift statistic on one feature."""

    score: float
    threshold: float
    kind: Literal["p_value", "distance"] = Field(
        ..., description="p_value: drift below the threshold; distance: drift at or above it")
    drifted: bool


class FeatureDrift(BaseModel):
    """A feature of the recent window against the live version's training data."""

    feature: str
    kind: Literal["numeric", "categorical"]
    drifted: bool
    reason: str = Field(..., description="Why it counts as drifted or not (the drift rule in words)")
    importance: float | None = Field(None, description="Its share of the live model's gain importance")
    stats: dict[str, StatView] = Field(..., description="By statistic: ks, psi, wasserstein, jensen_shannon, chi2")


class DriftView(BaseModel):
    """Feature drift of the recent window's sessions against the live version's training data."""

    clock: ClockReading
    start: datetime
    end: datetime
    version: str | None = Field(None, description="Live version whose training data is the reference")
    reference_rows: int | None = None
    current_rows: int = Field(..., ge=0, description="Sessions of the window compared")
    verdict: str | None = Field(None, description="no drift, prediction drift, feature drift or dataset drift")
    drift_share: float | None = Field(None, description="Share of drifted features")
    weighted_drift_share: float | None = Field(None, description="Share weighted by the model's importance")
    share_threshold: float | None = Field(None, description="Share from which the whole dataset counts as drifted")
    summary: str | None = None
    features: list[FeatureDrift] = Field(default_factory=list, description="Drifted first, then by importance")
    problem: str | None = Field(None, description="Why drift could not be measured")


class RolloutEventView(BaseModel):
    at: datetime = Field(..., description="On the rollout's clock (wall, or the store's newest visit)")
    event: str = Field(..., description="canary, advanced, halved, waiting, completed, rolled_back, aborted")
    share: float
    reason: str


class RolloutView(BaseModel):
    """The target's running or last rollout (``rollout.json`` of the served registry)."""

    id: str
    target: str
    version: str = Field(..., description="The candidate")
    previous_version: str = Field(..., description="The live version it is compared with")
    status: Literal["running", "completed", "rolled_back", "aborted"]
    stages: list[float] = Field(..., description="Candidate share per stage, ending at 1")
    stage_index: int = Field(..., description="Index of the current stage in stages")
    share: float = Field(..., description="Share of visitors the candidate serves now (halving lowers it)")
    hold_minutes: float
    stage_started_at: datetime
    clock: RolloutClock
    last_check: RolloutEventView | None = None
    events: list[RolloutEventView] = Field(..., description="The timeline, oldest first")


class ExperimentView(BaseModel):
    """The served registry's running or last A/B experiment (``experiment.json``)."""

    id: str
    control: str = Field(..., description="The live version")
    treatment: str
    allocation: float = Field(..., description="Share of visitors on the treatment")
    metric: str = Field(..., description="The primary metric")
    planned_n: int = Field(..., description="Sessions per arm the fixed-horizon test needs")
    status: Literal["running", "stopped"]
    started_at: datetime
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    final: dict[str, Any] | None = Field(None, description="The readout when it stopped (decision, tests, guardrails)")


class DeploymentView(BaseModel):
    """A deploy, rollback or rollout of the served target (``deployments.json``)."""

    id: str
    action: str = Field(..., description="deploy, rollback or rollout")
    target: str
    version: str
    previous_version: str | None
    status: str = Field(..., description="in_progress, running, success, failed, rolled_back or aborted")
    started_at: datetime
    finished_at: datetime | None
    user: str
    error: str | None
    steps: list[str] = Field(default_factory=list, description="Each step as '✅ name: detail' or '❌ name: detail'")


class AlertView(BaseModel):
    """An anomaly the monitor found in a window (the store's ``alerts`` table)."""

    id: int
    created_at: datetime
    window_start: datetime
    window_end: datetime
    severity: str = Field(..., description="high, medium or low")
    rule: str
    model_version: str
    arm: str
    value: float
    baseline: float | None
    threshold: float
    action: str = Field(..., description="What it calls for: rollback, traffic_halved or alert")
    message: str
    delivered_at: datetime | None
    delivery_error: str | None


class TriggerView(BaseModel):
    """A retraining trigger as the last run found it."""

    name: str
    status: str = Field(..., description="fired, not_fired, not_run (could not be checked) or disabled")
    value: float | None
    threshold: float | None
    detail: str


class RetrainingRunView(BaseModel):
    """The last automated retraining run (``retraining_runs.json`` of the retraining registry)."""

    id: str
    mode: str = Field(..., description="check, force or scheduled")
    dry_run: bool
    started_at: datetime
    finished_at: datetime | None
    live_version: str | None
    decision: str
    strategy: str | None = Field(None, description="incremental or full")
    outcome: str = Field(..., description="in_progress, checked, skipped, success, failed, ...")
    new_version: str | None
    error: str | None
    triggers: list[TriggerView]


class Schedule(BaseModel):
    """When the time trigger retrains the retraining registry's live version (``triggers.time_based``)."""

    enabled: bool
    live_version: str | None = Field(None, description="Live version of the retraining registry")
    trained_at: datetime | None = None
    earliest: datetime | None = Field(
        None, description="From then on a scheduled run retrains when any trigger fires (min_days_since_last)")
    due: datetime | None = Field(
        None, description="Then the time trigger fires and a scheduled run retrains (max_days_since_last)")
    detail: str


class RetrainingView(BaseModel):
    last_run: RetrainingRunView | None
    schedule: Schedule


class Summary(BaseModel):
    """Everything on the dashboard that is not a time series."""

    live: ModelInfo | None = Field(..., description="The served version (None until one is loaded)")
    environment: str | None = Field(
        None, description="The environment whose model_dir is served (where admin actions act), if any")
    rollout: RolloutView | None = Field(None, description="Running or last rollout of the served registry")
    experiment: ExperimentView | None = Field(None, description="Running or last experiment of the served registry")
    deployments: list[DeploymentView] = Field(..., description="Newest first")
    alerts: list[AlertView] = Field(..., description="Newest first")
    retraining: RetrainingView | None = None
    problems: list[str] = Field(
        default_factory=list, description="Sections that could not be read, each with the reason")


class StartRollout(BaseModel):
    """A candidate of the retraining registry to roll out to the served environment."""

    version: str = Field(
        ..., min_length=1, max_length=64, description="Version of the retraining registry, or 'latest'")
    stages: list[float] | None = Field(
        None, min_length=1, max_length=20, description="Candidate share per stage, increasing to 1 "
        "(default 0.05, 0.10, 0.25, 0.50, 1)")
    hold_minutes: float | None = Field(None, gt=0, le=10_080, description="How long each stage holds (default 5)")
    clock: RolloutClock = Field(
        "wall", description="Time of the stage windows: the wall clock, or the store's newest visit (simulated "
        "traffic)")


class AbortRollout(BaseModel):
    reason: str = Field("aborted from the dashboard", min_length=1, max_length=300,
                        description="Kept in the rollout's timeline and the deployment record")


class StopExperiment(BaseModel):
    reason: str = Field("stopped from the dashboard", min_length=1, max_length=300,
                        description="Kept with the experiment's final readout")
    clock: RolloutClock = Field(
        "wall", description="End of the final readout: the wall clock, or the store's newest visit (simulated "
        "traffic)")


class Rollback(BaseModel):
    to: str | None = Field(None, max_length=64, description="Version to go back to (default: the previous one)")
