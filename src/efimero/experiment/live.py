"""A/B experiments on live traffic: two versions, an allocation, a primary metric and guardrails.

The control is the target's live version; the treatment is served to ``allocation`` of the
visitors (10 % by default, as the retraining guidelines' ``ModelABTester``) through the traffic
split, owned by the experiment. Its state lives in ``experiment.json`` beside the split.

A readout may be taken at any moment (`efimero experiment status`). It gives two answers:

* the **always-valid** sequential one (mSPRT), which may be read at every window without
  inflating false positives, and which is the one to act on;
* the guidelines' **fixed-horizon** Welch t-test, whose verdict counts only once the planned
  number of sessions is reached (before that it says so).

Both are refused by a sample-ratio mismatch of the arms' predictions (χ², p < 0.001) or by arms
that log different shares of the predictions they served (a loss of logs, χ², p < 0.001), and both
run on CUPED-adjusted values when the visitor's pre-period (the ``avg_session_duration``
history feature) explains some of the metric's variance. The planned size comes from the
control's sessions before the start and the smallest effect worth detecting (``mde``).
Guardrails (latency, error rate, bounce) are checked with the monitor's rules and reported
beside the verdict.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from efimero._io import read_model, write_model
from efimero.collect import judge
from efimero.errors import ExperimentError
from efimero.experiment.covariate import cuped
from efimero.experiment.decision import verdict
from efimero.experiment.sequential import msprt
from efimero.experiment.srm import logging_mismatch, sample_ratio_mismatch
from efimero.experiment.stats import required_sample_size, welch
from efimero.monitor import VersionWindow, window_metrics
from efimero.registry import LIVE_ARM, Registry, TrafficArm, TrafficSplit
from efimero.store import sessions

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from efimero.config import MonitoringRules

STATE_FILE = "experiment.json"
TREATMENT_ARM = "treatment"
COVARIATE = "avg_session_duration"
"""The pre-period covariate of CUPED: the visitor's mean earlier session length, one of the 19 features."""
PRE_PERIOD = timedelta(days=7)
"""Control sessions before the start that size the experiment (Statsig's 7-day pre-exposure window)."""
DEFAULT_PLANNED_N = 2000
"""Sessions planned when the pre-period has too few sessions to estimate the metric's spread."""
BOUNCE_INCREASE = 0.05
"""Guardrail: the treatment's bounce rate may exceed the control's by at most this (absolute)."""

MetricName = Literal["session_duration", "online_accuracy", "rating", "engagement"]


@dataclass(frozen=True)
class Metric:
    """A per-session primary metric: its values (NaN where a session has none) and its direction."""

    name: str
    description: str
    values: Callable[[pd.DataFrame], pd.Series]
    higher_is_better: bool = True


def _engagement(frame: pd.DataFrame) -> pd.Series:
    """0.4 · min(duration / 5 min, 1) + 0.3 · scroll depth + 0.3 · (1 − bounce), in [0, 1]; version 1."""
    duration = (frame["session_duration_ms"] / 300_000).clip(upper=1.0)
    return 0.4 * duration + 0.3 * frame["scroll_depth"] + 0.3 * (1 - frame["bounce_rate"])


METRICS: dict[str, Metric] = {
    "session_duration": Metric("session_duration", "session length, seconds",
                               lambda f: f["session_duration_ms"] / 1000),
    "online_accuracy": Metric(
        "online_accuracy", "1 when the session confirmed the served style (the rules of efimero collect)",
        lambda f: pd.Series([float(judge(row).status == "confirmed") for row in _records(f)], index=f.index)),
    "rating": Metric("rating", "explicit rating 1-5, sessions that gave one", lambda f: f["user_satisfaction"]),
    "engagement": Metric("engagement", _engagement.__doc__ or "", _engagement),
}


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")  # type: ignore[return-value]


class ExperimentState(BaseModel):
    """An experiment as written to ``experiment.json``."""

    id: str
    registry: str
    control: str
    treatment: str
    allocation: float = Field(..., gt=0, lt=1)
    metric: MetricName
    mde: float = Field(..., gt=0, description="Smallest relative effect worth detecting (0.05: 5 %)")
    alpha: float = Field(..., gt=0, lt=1)
    planned_n: int = Field(..., ge=2)
    planning: str = Field(..., description="How planned_n was reached")
    use_cuped: bool
    salt: str
    started_at: datetime
    db_url: str
    status: Literal["running", "stopped"] = "running"
    stopped_at: datetime | None = None
    stop_reason: str | None = None
    final: dict[str, Any] | None = None

    @property
    def owner(self) -> str:
        return f"experiment {self.id}"

    def split(self) -> TrafficSplit:
        return TrafficSplit(arms=(TrafficArm(name=TREATMENT_ARM, version=self.treatment, share=self.allocation),),
                            salt=self.salt, owner=self.owner)


def read_state(root: Path) -> ExperimentState | None:
    """The registry's experiment (running or the last stopped one), or None when it never had one."""
    return read_model(root / STATE_FILE, ExperimentState, "an experiment state")


def start(
    registry: Registry, engine: Engine, *, treatment: str, now: datetime, db_url: str,
    allocation: float = 0.1, metric: MetricName = "session_duration", mde: float = 0.05, alpha: float = 0.05,
    use_cuped: bool = True,
) -> ExperimentState:
    """Serve ``treatment`` (a version of ``registry``) to ``allocation`` of visitors against ``current``.

    Raises:
        ExperimentError: no live version, the treatment is the live one, or an experiment runs.
        RegistryError: the traffic is split already (a rollout), or the treatment is not in the registry.
    """
    control = registry.current()
    if control is None:
        raise ExperimentError(f"{registry.root}: serves no version yet, so there is no control to compare with.")
    treatment = registry.resolve(treatment)
    if treatment == control:
        raise ExperimentError(f"{treatment} is the live version; the treatment must be another version.")
    running = read_state(registry.root)
    if running is not None and running.status == "running":
        raise ExperimentError(f"experiment {running.id} ({running.treatment}) is running; stop it first.")
    planned_n, planning = _plan(engine, now, METRICS[metric], mde=mde, alpha=alpha, allocation=allocation)
    state = ExperimentState(
        id=uuid.uuid4().hex[:12], registry=str(registry.root), control=control, treatment=treatment,
        allocation=allocation, metric=metric, mde=mde, alpha=alpha, planned_n=planned_n, planning=planning,
        use_cuped=use_cuped, salt=secrets.token_hex(8), started_at=now, db_url=db_url,
    )
    registry.set_traffic(state.split(), claim=True)
    write_model(registry.root / STATE_FILE, state)
    return state


def _plan(engine: Engine, now: datetime, metric: Metric, *, mde: float, alpha: float,
          allocation: float) -> tuple[int, str]:
    """Sessions needed to detect ``mde`` (relative) with 80 % power, from the pre-period's mean and spread."""
    before = sessions(engine, start=now - PRE_PERIOD, end=now)
    values = metric.values(before).dropna() if len(before) else pd.Series(dtype=float)
    if len(values) < 100 or values.std() == 0 or values.mean() == 0:
        return DEFAULT_PLANNED_N, (f"{len(values)} pre-period sessions are too few to size the experiment; "
                                   f"{DEFAULT_PLANNED_N} sessions planned")
    size = required_sample_size(mde * float(values.mean()), float(values.std()), alpha=alpha, power=0.8,
                                ratio=allocation / (1 - allocation))
    return size.total, (f"{size.total} sessions detect a {mde:.0%} change of the mean {metric.name} "
                        f"({values.mean():.3g}, sd {values.std():.3g} over {len(values)} pre-period sessions) "
                        "with 80 % power")


@dataclass(frozen=True)
class Readout:
    """One look at an experiment: sessions per arm, both verdicts, CUPED and the guardrails."""

    state: ExperimentState
    at: datetime
    sessions: dict[str, int]
    predictions: dict[str, int]
    sequential: dict[str, Any] | None
    fixed_horizon: dict[str, Any] | None
    cuped: dict[str, Any] | None
    guardrails: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None

    @property
    def decision(self) -> str:
        return self.sequential["decision"] if self.sequential else "inconclusive"

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.state.model_dump(mode="json"), "at": self.at.isoformat(),
                "decision": self.decision, "sessions": self.sessions, "predictions": self.predictions,
                "sequential": self.sequential, "fixed_horizon": self.fixed_horizon, "cuped": self.cuped,
                "guardrails": self.guardrails, "note": self.note}


def read_out(state: ExperimentState, engine: Engine, *, now: datetime, rules: MonitoringRules) -> Readout:
    """The experiment's readout over its sessions so far (see the module docstring)."""
    logged = sessions(engine, start=state.started_at, end=now)
    arms = {LIVE_ARM: (state.control, LIVE_ARM), TREATMENT_ARM: (state.treatment, TREATMENT_ARM)}
    frames = {name: logged[(logged["model_version"] == version) & (logged["arm"] == arm)]
              for name, (version, arm) in arms.items()}
    windows = window_metrics(engine, start=state.started_at, end=now, min_sessions=rules.min_sessions,
                             min_predictions=rules.min_predictions)
    served = {name: next((w for w in windows if (w.model_version, w.arm) == key), None) for name, key in arms.items()}
    predictions = {name: window.predictions if window else 0 for name, window in served.items()}
    counts = {name: len(frame) for name, frame in frames.items()}
    guardrails = _guardrails(served[LIVE_ARM], served[TREATMENT_ARM], rules)
    metric = METRICS[state.metric]
    values = {name: metric.values(frame) for name, frame in frames.items()}
    kept = {name: series.notna() for name, series in values.items()}
    y = {name: values[name][kept[name]].to_numpy(dtype=float) for name in arms}
    if min(len(series) for series in y.values()) < 2 or min(predictions.values()) == 0:
        return Readout(state, now, counts, predictions, None, None, None, guardrails,
                       note="too few sessions in an arm to read the experiment yet")
    adjustment = None
    if state.use_cuped:
        x = {name: np.array([row.get(COVARIATE, np.nan) for row in frames[name]["features"][kept[name]]], dtype=float)
             for name in arms}
        adjustment = cuped(np.concatenate([y[LIVE_ARM], y[TREATMENT_ARM]]),
                           np.concatenate([x[LIVE_ARM], x[TREATMENT_ARM]]))
        split_at = len(y[LIVE_ARM])
        y = {LIVE_ARM: adjustment.adjusted[:split_at], TREATMENT_ARM: adjustment.adjusted[split_at:]}
    srm = sample_ratio_mismatch([predictions[LIVE_ARM], predictions[TREATMENT_ARM]],
                                [1 - state.allocation, state.allocation])
    served_counts = [predictions[LIVE_ARM], predictions[TREATMENT_ARM]]
    loss = logging_mismatch(served_counts, [min(counts[LIVE_ARM], served_counts[0]),
                                            min(counts[TREATMENT_ARM], served_counts[1])])
    verdicts = {
        method: verdict(test(y[LIVE_ARM], y[TREATMENT_ARM], planned_n=state.planned_n, alpha=state.alpha), srm,
                        higher_is_better=metric.higher_is_better, loss=loss).to_dict()
        for method, test in (("sequential", msprt), ("fixed_horizon", welch))
    }
    return Readout(state, now, counts, predictions, verdicts["sequential"], verdicts["fixed_horizon"],
                   adjustment.to_dict() if adjustment is not None else None, guardrails)


def _guardrails(control: VersionWindow | None, treatment: VersionWindow | None,
                rules: MonitoringRules) -> list[dict[str, Any]]:
    """Latency (p95 rise), error rate (level) and bounce (rise) of the treatment, each passed, failed or not run."""
    if control is None or treatment is None:
        return [{"guardrail": name, "status": "not run", "reason": "an arm has no traffic yet"}
                for name in ("latency", "error_rate", "bounce")]
    checks = (
        ("latency", treatment.latency_ms["p95"].value, control.latency_ms["p95"].value, rules.latency_increase_ms,
         "p95 latency rise, ms"),
        ("error_rate", treatment.error_rate.value, 0.0 if treatment.error_rate.value is not None else None,
         rules.error_rate, "share of failed predictions"),
        ("bounce", treatment.bounce_rate.value, control.bounce_rate.value, BOUNCE_INCREASE, "bounce rate rise"),
    )
    results: list[dict[str, Any]] = []
    for name, mine, theirs, limit, what in checks:
        if mine is None or theirs is None:
            results.append({"guardrail": name, "status": "not run", "reason": f"{what}: too few observations"})
            continue
        change = mine - theirs
        results.append({"guardrail": name, "status": "failed" if change >= limit else "passed", "value": mine,
                        "baseline": theirs, "change": change, "limit": limit, "what": what})
    return results


def stop(registry: Registry, engine: Engine, *, now: datetime, reason: str, rules: MonitoringRules) -> ExperimentState:
    """End the running experiment: every visitor back on the control, the final readout kept.

    Raises:
        ExperimentError: no experiment is running here.
    """
    state = read_state(registry.root)
    if state is None or state.status != "running":
        raise ExperimentError(f"{registry.root}: no experiment is running.")
    final = read_out(state, engine, now=now, rules=rules).to_dict()
    final.pop("experiment")
    split = registry.traffic()
    if split is not None and split.owner == state.owner:
        registry.set_traffic(None)
    state = state.model_copy(update={"status": "stopped", "stopped_at": now, "stop_reason": reason, "final": final})
    write_model(registry.root / STATE_FILE, state)
    return state
