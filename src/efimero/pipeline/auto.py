"""`efimero auto-retrain`: triggers → strategy → collect → validate → retrain → validate → deploy.

Whether a run retrains (:func:`decide`): ``force`` always; ``scheduled`` when a trigger fired
and the live version is at least ``time_based.min_days_since_last`` days old; ``check`` and
``--dry-run`` say what ``scheduled`` would do and change nothing. ``scheduled`` also needs the
shared readiness check (:mod:`efimero.pipeline.ready`) to find enough new judged sessions; a
run that would retrain on data whose quality says abort fails. A trigger that could not be
checked (``not_run``) is named in the decision and the record as such, never counted as
"not fired".

With ``deployment.auto_deploy``, the new version is deployed by ``deployment.strategy``: a
rollout (``safe``: 5, 10, 25, 50, 100 %; ``canary``: 5 % then 100 %) that `efimero rollout
watch` carries on and rolls back on its own, or ``immediate``.

Every run is recorded in ``<models>/retraining_runs.json`` (stages with timings, triggers,
decisions, outcome) for a later dashboard. A failed run removes what it made (the collected
file, a version that did not become current) and leaves the live model alone.

With ``notifications`` configured, a run that ends in ``success`` or ``failed`` (an
:class:`~efimero.errors.EfimeroError`, or any other exception, which still propagates) e-mails its
facts and its record (:mod:`efimero.notify`); what became of the e-mail is the record's
``notification``. An e-mail that cannot be sent never changes the run's outcome.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from efimero import tracking
from efimero.config import (
    NotificationEvent,
    RetrainDeployment,
    RetrainingConfig,
    RetrainingSettings,
    load_environments_config,
    load_training_config,
)
from efimero.deploy import deploy
from efimero.deploy.rollout import start as start_rollout
from efimero.deploy.rollout_checks import clock_now
from efimero.deploy.rollout_state import DEFAULT_STAGES, RolloutPlan
from efimero.errors import EfimeroError
from efimero.gate import run_validation
from efimero.monitor.drift import ReferenceData, reference_of
from efimero.notify import Notification, Notifier
from efimero.pipeline.ready import Readiness, collect_window, readiness_of
from efimero.pipeline.runs import record_run
from efimero.registry import Registry
from efimero.retrain import RetrainResult, full, incremental
from efimero.retrain.triggers import FIRED, NOT_RUN, Trigger, days_since_training, evaluate

logger = logging.getLogger(__name__)

MODES = ("check", "force", "scheduled")


@dataclass
class RetrainingRun:
    mode: str
    dry_run: bool
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    finished_at: str | None = None
    live_version: str | None = None
    triggers: list[dict[str, Any]] = field(default_factory=list)
    decision: str = ""
    strategy: str | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)
    outcome: str = "in_progress"
    new_version: str | None = None
    error: str | None = None
    readiness: dict[str, Any] | None = None
    """The shared readiness check (:mod:`efimero.pipeline.ready`): enough new judged sessions, quality passed."""
    notification: dict[str, Any] | None = None
    """What became of the run's e-mail (:meth:`efimero.notify.Notification.to_dict`); None when e-mail is off."""

    @property
    def fired(self) -> list[str]:
        return [t["name"] for t in self.triggers if t["status"] == FIRED]

    @property
    def not_run(self) -> list[dict[str, str]]:
        """The triggers that could not be checked, each with the reason."""
        return [{"name": t["name"], "reason": t["detail"]} for t in self.triggers if t["status"] == NOT_RUN]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"fired": self.fired, "not_run": self.not_run}



def choose_strategy(config: RetrainingConfig, triggers: list[Trigger], age_days: float) -> str:
    """Full on performance, negative-feedback or drift triggers (as configured) or an old model, else incremental."""
    strategies = config.retraining.strategies
    fired = {t.name for t in triggers if t.fired}
    if (strategies.full.on_performance_trigger and fired & {"performance", "negative_feedback"}) or (
        strategies.full.on_drift_trigger and fired & {"feature_drift", "prediction_drift"}
    ) or age_days >= strategies.full.min_days_since_last or age_days > strategies.incremental.max_days_since_last:
        return "full"
    return "incremental"


@dataclass(frozen=True)
class Decision:
    """Whether a run retrains, and why in words (fired triggers, age, unchecked triggers)."""

    retrain: bool
    reason: str


def decide(mode: str, settings: RetrainingSettings, triggers: list[Trigger], age_days: float,
           readiness: Readiness | None = None) -> Decision:
    """Force always retrains; otherwise a fired trigger does, unless the live version is younger than
    ``time_based.min_days_since_last`` (when the time trigger is enabled) or ``readiness`` says there are
    too few new judged sessions. See the module docstring."""
    fired = [t.name for t in triggers if t.fired]
    time_based = settings.triggers.time_based
    if mode == "force":
        retrain, why = True, "forced"
    elif not fired:
        retrain, why = False, "no trigger fired"
    elif time_based.enabled and age_days < time_based.min_days_since_last:
        retrain, why = False, (f"the live version is {age_days:.1f} days old, younger than "
                               f"time_based.min_days_since_last ({time_based.min_days_since_last:g} days)")
    elif readiness is not None and not readiness.enough_data:
        retrain, why = False, f"not ready: {readiness.reasons[0]}"
    else:
        retrain, why = True, "a trigger fired"
    reason = f"{why}; fired: {', '.join(fired) or 'none'}"
    unchecked = [f"{t.name} ({t.detail})" for t in triggers if t.status == NOT_RUN]
    if unchecked:
        reason += f"; could not check: {'; '.join(unchecked)}"
    return Decision(retrain, reason)


def auto_retrain(config: RetrainingConfig, *, mode: str = "check", dry_run: bool = False) -> RetrainingRun:
    """One automated retraining run; see the module docstring. ``check`` never retrains."""
    if mode not in MODES:
        raise EfimeroError(f"mode must be one of {', '.join(MODES)}. Got {mode!r} instead.")
    settings = config.retraining
    models = Path(settings.models_dir)
    registry = Registry(models)
    try:
        live = registry.load()
    except EfimeroError as exc:  # no run to record, but a failure to mail
        error = f"the live version of {models} cannot be loaded: {exc}"
        notify_run(Notifier(settings.notifications), RetrainingRun(mode, dry_run, outcome="failed", error=error))
        raise
    run = RetrainingRun(mode=mode, dry_run=dry_run, live_version=live.version)
    made: list[Path] = []
    stage_started = time.perf_counter()

    def stage(name: str, **details: Any) -> None:
        nonlocal stage_started
        now = time.perf_counter()
        run.stages.append({"stage": name, "seconds": round(now - stage_started, 3), **details})
        stage_started = now

    try:
        collection = settings.data_collection
        output = None if dry_run or mode == "check" else collection.output_dir / f"production_{run.id}.csv"
        reference = reference_of(live)
        collected = collect_window(settings, reference, output=output)
        if collected.output is not None:  # written whenever an output was given
            made.append(collected.output)
        stage("collect", rows=len(collected.frame), sessions=collected.statuses,
              online_accuracy=collected.online_accuracy, quality=collected.quality.to_dict())
        if collected.drift is not None:
            tracking.current().log_dict(collected.drift.to_dict(), "drift/drift.json")
        triggers = evaluate(settings.triggers, bundle=live, collected=collected, reference=reference)
        run.triggers = [t.to_dict() for t in triggers]
        age = days_since_training(live, datetime.now(UTC))
        run.strategy = choose_strategy(config, triggers, age)
        ready = readiness_of(settings, collected, live_version=live.version)
        run.readiness = ready.to_dict()
        stage("triggers", fired=run.fired, not_run=[t["name"] for t in run.not_run], ready=ready.ready)
        if run.not_run:
            logger.warning("retraining triggers not checked: %s",
                           "; ".join(f"{t['name']} ({t['reason']})" for t in run.not_run))
        decision = decide(mode, settings, triggers, age, ready)
        if mode == "check" or dry_run:
            wanted = "would retrain" if decision.retrain else "would not retrain"
            run.decision = f"{wanted} ({run.strategy}): {decision.reason}"
            run.outcome = "checked"
            return run
        if not decision.retrain:
            run.decision, run.outcome = f"no retraining: {decision.reason}", "skipped"
            return run
        if not ready.quality_passed:
            raise EfimeroError(f"data quality says abort: {collected.quality.to_dict()}")
        run.decision = f"retrain ({run.strategy}): {decision.reason}"
        assert collected.output is not None, "a run that retrains has written what it collected"
        result = retrain_with_strategy(config, run.strategy, collected.output, reference)
        run.new_version = result.version
        stage("retrain", status=result.status, reason=result.reason, version=result.version)
        if result.status != "success":
            if result.version and result.version != registry.current():
                registry.remove(result.version)
                run.new_version = None
            run.outcome = result.status
            return run
        assert result.version is not None, "a successful retraining has saved a version"
        report = run_validation(models, version=result.version)
        stage("validate", passed=report.passed)
        if not report.passed:
            raise EfimeroError(f"the retrained version failed validation: {report.to_dict()['checks']}")
        if settings.deployment.auto_deploy:
            stage("deploy", **deploy_with_strategy(settings, models, result.version))
        run.outcome = "success"
        return run
    except EfimeroError as exc:
        run.outcome, run.error = "failed", str(exc)
        _clean_up(registry, live.version, run, made)
        return run
    except Exception as exc:  # a bug: recorded and e-mailed as a failure, then raised with its traceback
        run.outcome, run.error = "failed", f"unexpected {type(exc).__name__}: {exc}"
        raise
    finally:
        run.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        notification = notify_run(Notifier(settings.notifications), run)
        run.notification = None if notification is None else notification.to_dict()
        record_run(models, run.to_dict())
        tracking.current().log_dict(run.to_dict(), "auto_retrain/run.json")


def notify_run(notifier: Notifier, run: RetrainingRun) -> Notification | None:
    """E-mail the end of ``run`` when its outcome is ``success`` or ``failed`` (and that event is one of ``on``).

    None when e-mail is off or the outcome sends nothing (``checked``, ``skipped``, ``no_improvement``, ...).
    Never raises: a failure to send is in the returned notification and logged as a warning.
    """
    events: dict[str, NotificationEvent] = {"success": "success", "failed": "failure"}
    event = events.get(run.outcome)
    if not notifier.enabled or event is None:
        return None
    deployed = next((s for s in run.stages if s["stage"] == "deploy"), None)
    if run.outcome == "success":
        subject = f"auto-retrain succeeded: {run.new_version} ({run.strategy}) after {run.live_version}"
        if deployed is not None:
            subject += f"; {deployed.get('status')} on {deployed.get('target')}"
    else:
        subject = f"auto-retrain failed: {(run.error or 'no error recorded').splitlines()[0][:120]}"
    lines = [
        f"efimero auto-retrain --mode {run.mode}: {run.outcome.upper()}",
        "",
        f"run:          {run.id} ({run.started_at} to {run.finished_at})",
        f"outcome:      {run.outcome}",
        f"live version: {run.live_version}",
        f"new version:  {run.new_version or '—'}",
        f"strategy:     {run.strategy or '—'}",
        f"decision:     {run.decision or '—'}",
        f"fired:        {', '.join(run.fired) or 'none'}",
    ]
    if deployed is not None:
        lines.append(f"deployment:   {deployed.get('status')} to {deployed.get('target')} ({deployed.get('strategy')})")
    if run.error:
        lines.append(f"error:        {run.error}")
    lines += ["", "stages:"] + [f"  {s['stage']}: {s['seconds']:.1f} s" for s in run.stages]
    lines += ["", "The run's record is attached (retraining_run.json), as kept in retraining_runs.json."]
    return notifier.send(event, subject, "\n".join(lines), attachment=run.to_dict(), filename="retraining_run.json")


STAGES = {"safe": DEFAULT_STAGES, "canary": (DEFAULT_STAGES[0], 1.0)}
"""The rollout stages of each deployment strategy but ``immediate``."""


def rollout_plan(deployment: RetrainDeployment) -> RolloutPlan:
    """The stages of ``deployment.strategy``, each below 100 % holding an even part of ``monitoring_duration_hours``."""
    stages = STAGES[deployment.strategy]
    return RolloutPlan(stages=stages, hold_minutes=deployment.monitoring_duration_hours * 60 / (len(stages) - 1))


def deploy_with_strategy(settings: RetrainingSettings, models: Path, version: str) -> dict[str, Any]:
    """Deploy the retrained ``version`` by the configured strategy; what happened, for the run record.

    ``immediate`` switches every visitor at once; ``safe`` and ``canary`` start a rollout that
    `efimero rollout watch` (or `step`) carries on, with automatic rollback.

    Raises:
        EfimeroError: the deployment failed, or the rollout stopped before reaching anyone.
    """
    deployment = settings.deployment
    environments = load_environments_config()
    if deployment.strategy == "immediate":
        record = deploy(models, deployment.target, version=version, environments=environments)
        if record.status != "success":
            raise EfimeroError(f"deployment to {deployment.target} failed: {record.error}")
        return {"target": deployment.target, "strategy": "immediate", "status": record.status, "log": record.log}
    db_url = settings.data_collection.db_url
    state = start_rollout(models, deployment.target, version=version, plan=rollout_plan(deployment),
                          now=clock_now(deployment.clock, db_url), clock=deployment.clock, db_url=db_url,
                          environments=environments)
    return {"target": deployment.target, "strategy": deployment.strategy, "status": "rollout started",
            "rollout": state.id, "share": state.share, "stages": list(state.plan.stages),
            "hold_minutes": state.plan.hold_minutes}


def retrain_with_strategy(config: RetrainingConfig, strategy: str, data: Path,
                          reference: ReferenceData) -> RetrainResult:
    """Retrain on ``data`` by ``strategy`` (``incremental`` or ``full``, see :func:`choose_strategy`) as configured."""
    settings = config.retraining
    if strategy == "incremental":
        return incremental([data], models=settings.models_dir, settings=settings.strategies.incremental.parameters)
    parameters = settings.strategies.full.parameters
    training = load_training_config(overrides={"training": {"data": {
        "cv_folds": parameters.cv_folds, "test_size": parameters.test_split, "allow_duplicates": True}}})
    files = [data]
    if parameters.include_training_data:
        if reference.problem is not None:
            raise EfimeroError("strategies.full.parameters.include_training_data asks for the live version's training "
                               f"data, which cannot be read: {reference.problem}. Restore the files or turn it off.")
        files += [f.path for f in reference.files]
    return full(files, output=settings.models_dir, config=training, tune_hyperparams=parameters.hyperparameter_tuning)


def _clean_up(registry: Registry, live: str | None, run: RetrainingRun, made: list[Path]) -> None:
    """Remove what a failed run made; the live pointer goes back to what it was."""
    try:
        if registry.current() != live and live is not None:
            registry.restore_pointer(live)
        if run.new_version and run.new_version != live:
            registry.remove(run.new_version)
        for path in made:
            path.unlink(missing_ok=True)
            path.with_name(f"{path.stem}_metadata.json").unlink(missing_ok=True)
    except EfimeroError as exc:  # cleaning must not hide the original failure
        logger.error("clean-up after a failed retraining run was incomplete: %s", exc)


def deploy_retrained(result: RetrainResult, *, models: str | Path, target: str) -> RetrainResult:
    """Deploy the version a retraining made current to ``target`` (``retrain full --deploy-if-better``).

    A retraining that saved nothing better is returned as it is; the deployment's steps and
    outcome are added to ``result.scores["deployment"]``.
    """
    if result.status == "success" and result.version is not None:
        record = deploy(models, target, version=result.version)
        result.scores["deployment"] = {"target": target, "status": record.status, "log": record.log}
        if record.status != "success":
            result.reason += f"; deployment to {target} failed: {record.error}"
    return result
