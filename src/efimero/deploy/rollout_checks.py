"""The checks that move a rollout: the monitor's rules on the stage's window, canary against live.

Per round, the window is the current stage so far, [stage start, now): everything the
candidate has served at this share. On it the monitor's anomaly rules run (see
:mod:`efimero.monitor.rules`), and the outcome for the rollout is, in this order:

1. ``rollback`` on a rule of ``high`` severity (accuracy drop, error rate). The accuracy rule
   reads a point estimate, and a canary of 30 sessions moves by ±0.08 on chance alone, so it
   must also be *significant*: the always-valid mSPRT interval for the difference of the
   confirmed-session rates (:func:`efimero.experiment.msprt`) must lie below zero. Rounds look
   as often as they like; the always-valid test keeps a good candidate from being rolled back
   by peeking at noise.
2. ``halve`` on a rule of ``medium`` severity (latency): the candidate's share is halved.
3. ``inconclusive`` while accuracy cannot be compared (too few sessions on either arm), the
   arms' prediction counts do not match their shares (a sample-ratio mismatch, χ² p < 0.001:
   a candidate some workers cannot load, say), or the arms log different shares of what they
   served (a candidate page that breaks the client's logging). A rollout never advances on silence.
4. ``pass`` otherwise. Anomalies of ``low`` severity (prediction drift) are alerts only.

Every anomaly that acts (rollback, halve) is also recorded as an alert in the store and sent
to the webhook, like those of `efimero monitor`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from efimero.deploy.rollout import Judge, StageCheck
from efimero.deploy.rollout_state import CANARY_ARM, Clock, RolloutState
from efimero.errors import ConfigError, DeployError
from efimero.experiment import logging_mismatch, msprt, sample_ratio_mismatch
from efimero.monitor import VersionWindow, evaluate, record_and_notify, window_metrics
from efimero.monitor.rules import ANOMALY, INCONCLUSIVE, RuleResult
from efimero.store import LIVE_ARM, latest_event_time, open_engine

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from efimero.config import MonitoringRules

ALPHA = 0.05
"""Level of the always-valid test that confirms an accuracy drop before a rollback."""


def parse_clock(text: str) -> Clock:
    """``wall`` or ``store``, as typed on a command line.

    Raises:
        ConfigError: anything else.
    """
    if text == "wall":
        return "wall"
    if text == "store":
        return "store"
    raise ConfigError(f"clock must be 'wall' or 'store'. Got {text!r} instead.")


def clock_now(clock: Clock, db_url: str) -> datetime:
    """The rollout clock's time: the wall clock, or the newest visit in the store.

    Raises:
        DeployError: the store clock is asked of a store that holds no visit yet.
    """
    if clock == "wall":
        return datetime.now(UTC)
    engine = open_engine(db_url, create=False)
    try:
        newest = latest_event_time(engine)
    finally:
        engine.dispose()
    if newest is None:
        raise DeployError(f"{db_url}: holds no visit yet, so the store clock has no time. Send traffic first.")
    return newest


def monitor_judge(db_url: str, rules: MonitoringRules) -> Judge:
    """A :data:`~efimero.deploy.rollout.Judge` reading the store at ``db_url`` with the monitor's ``rules``."""
    engine = open_engine(db_url, create=False)

    def judge(state: RolloutState, start: datetime, end: datetime) -> StageCheck:
        windows = window_metrics(engine, start=start, end=end, min_sessions=rules.min_sessions,
                                 min_predictions=rules.min_predictions)
        return judge_windows(state, windows, rules, engine=engine)

    return judge


def judge_windows(state: RolloutState, windows: list[VersionWindow], rules: MonitoringRules, *,
                  engine: Engine | None = None) -> StageCheck:
    """The outcome for the rollout of the stage's window metrics (see the module docstring)."""
    canary = next((w for w in windows if w.arm == CANARY_ARM and w.model_version == state.version), None)
    live = max((w for w in windows if w.arm == LIVE_ARM), key=lambda w: w.predictions, default=None)
    if canary is None or live is None:
        missing = "the candidate" if canary is None else "the live version"
        return StageCheck("inconclusive", f"no traffic on {missing} in this stage yet")
    results = [r for r in evaluate(windows, [], rules) if r.arm == CANARY_ARM and r.model_version == state.version]
    details: dict[str, Any] = {"canary": canary.to_dict(), "live": live.to_dict(),
                               "checks": [r.to_dict() for r in results]}
    acting = [r for r in results if r.outcome == ANOMALY and r.action in {"rollback", "traffic_halved"}
              and (r.rule != "accuracy_drop" or _significantly_worse(live, canary, details))]
    if acting and engine is not None:
        record_and_notify(engine, acting, rules.webhook_url, timeout_s=rules.webhook_timeout_s)
    if rollback := [r for r in acting if r.action == "rollback"]:
        return StageCheck("rollback", _reasons(rollback), details)
    if halve := [r for r in acting if r.action == "traffic_halved"]:
        return StageCheck("halve", _reasons(halve), details)
    accuracy = next(r for r in results if r.rule == "accuracy_drop")
    if accuracy.outcome == INCONCLUSIVE:
        return StageCheck("inconclusive", accuracy.message, details)
    srm = sample_ratio_mismatch([live.predictions, canary.predictions], [1 - state.share, state.share])
    details["srm"] = srm.to_dict()
    if srm.mismatch:
        return StageCheck("inconclusive", f"sample ratio mismatch: {live.predictions} live and {canary.predictions} "
                          f"candidate predictions for a {state.share:.1%} share (p = {srm.p_value:.2g}); not "
                          "advancing until the split serves as planned", details)
    loss = logging_mismatch([live.predictions, canary.predictions],
                            [min(live.sessions, live.predictions), min(canary.sessions, canary.predictions)])
    details["logging"] = loss.to_dict()
    if loss.mismatch:
        return StageCheck("inconclusive", f"the arms logged different shares of their visits: {live.sessions} of "
                          f"{live.predictions} live, {canary.sessions} of {canary.predictions} candidate (p = "
                          f"{loss.p_value:.2g}); not advancing on metrics of different visitors", details)
    return StageCheck("pass", f"{canary.sessions} candidate sessions: online accuracy {accuracy.value:.3f} against "
                      f"{accuracy.baseline:.3f} live, no anomaly", details)


def _significantly_worse(live: VersionWindow, canary: VersionWindow, details: dict[str, Any]) -> bool:
    """Whether the always-valid interval puts the candidate's confirmed-session rate below the live one's."""
    arms = [_confirmed(window) for window in (live, canary)]
    readout = msprt(arms[0], arms[1], planned_n=max(arms[0].size + arms[1].size, 2), alpha=ALPHA)
    details["accuracy_test"] = readout.to_dict()
    return readout.ci_high < 0


def _confirmed(window: VersionWindow) -> np.ndarray:
    """One 0/1 per judged session: whether it confirmed the served style (the order does not matter)."""
    judged = window.accuracy.count
    confirmed = round((window.accuracy.value or 0.0) * judged)
    return np.concatenate([np.ones(confirmed), np.zeros(judged - confirmed)])


def _reasons(results: list[RuleResult]) -> str:
    return "; ".join(result.message for result in results)
