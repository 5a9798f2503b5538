"""Deploying a registry version to an environment, and rolling an environment back.

Deployment steps (the training scripts guide): check that the candidate serves the live
version's contract, validate against the target's thresholds, back up what the target serves,
copy the version (verified after the copy), switch the target's live pointer atomically,
smoke-test what is now live, prune old versions, record everything. With a tracking URI, the
MLflow alias named after the target then follows (a step that never fails the deployment:
:mod:`efimero.tracking.mirror`); a rollback moves it too.

A failure at any step puts the pointer back and removes a version this deployment added, so
the target is as it was, and the record says ``failed``; an exception that is not an
:class:`EfimeroError` (a bug) does the same and is then re-raised with its traceback. A
SIGKILL at any moment leaves the pointer on a complete version, because copies become visible
only whole and the pointer moves in one rename. One deployment or rollback runs per target at
a time (``_lock.target_lock``); the live version is read once that lock is held.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from efimero.config import Environment, EnvironmentsConfig, ValidationSettings
from efimero.deploy._lock import target_lock
from efimero.deploy.contract import Contract, contract_changes
from efimero.deploy.history import DeploymentLog, DeploymentRecord, Step, _now
from efimero.deploy.rollout_state import ensure_no_rollout
from efimero.errors import DeployError, EfimeroError
from efimero.gate import GateReport, run_validation
from efimero.registry import Registry, verify
from efimero.tracking.mirror import mirror_alias

logger = logging.getLogger(__name__)

LOCK_WAIT_S = 60.0
"""How long a deployment or rollback waits for another one of the same target by default."""


def thresholds(environment: Environment) -> ValidationSettings:
    """The validation gate's settings from an environment's performance thresholds."""
    limits = environment.performance_threshold
    return ValidationSettings(
        max_avg_latency_ms=limits.latency_ms, max_p95_latency_ms=limits.latency_ms,
        min_accuracy=limits.accuracy_min, min_r2=limits.r2_min,
    )


def _failed_checks(report: GateReport) -> str:
    return "; ".join(f"{c.name}: {c.detail}" for c in report.checks if not c.passed)


def _describe(exc: BaseException) -> str:
    """An EfimeroError's own message; anything else (a bug, an interrupt) is named with its type."""
    return str(exc) if isinstance(exc, EfimeroError) else f"{type(exc).__name__}: {exc}"


class _Run:
    """Runs named steps, timing and recording each; an EfimeroError in a step becomes DeployError."""

    def __init__(self, record: DeploymentRecord, log: DeploymentLog, echo: Callable[[Step], None] | None) -> None:
        self.record, self.log, self.echo = record, log, echo
        self.switched = False
        log.save(record)

    def switch(self, registry: Registry, name: str, previous: str | None) -> None:
        """The atomic pointer switch, remembered so that a later failure can undo it."""
        def action() -> str:
            registry.restore_pointer(name)
            self.switched = True
            return f"{self.record.target} now points to {name} (was {previous or 'nothing'})"
        self.step("switch", action)

    def step(self, name: str, action: Callable[[], str], *, required: bool = True) -> None:
        """Run and record one step; an EfimeroError becomes DeployError, anything else propagates.

        A step that is not ``required`` (an optional speed-up) records its EfimeroError as a
        failed step and lets the deployment go on.
        """
        started = time.perf_counter()
        try:
            detail = action()
        except BaseException as exc:
            self.add(Step(name, False, _describe(exc), self._ms(started)))
            if isinstance(exc, EfimeroError):
                if not required:
                    return
                raise DeployError(f"{name} failed: {exc}") from exc
            raise
        self.add(Step(name, True, detail, self._ms(started)))

    @staticmethod
    def _ms(started: float) -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    def add(self, step: Step) -> None:
        self.record.steps.append(step)
        self.log.save(self.record)
        if self.echo:
            self.echo(step)

    def conclude(self, steps: Callable[[], None], undo: Callable[[], None]) -> DeploymentRecord:
        """Run ``steps``; on any failure ``undo`` and record ``failed``. A bug is re-raised after that."""
        try:
            steps()
        except EfimeroError as exc:
            undo()
            return self.finish("failed", str(exc))
        except BaseException as exc:
            undo()
            self.finish("failed", _describe(exc))
            raise
        return self.finish("success")

    def finish(self, status: str, error: str | None = None) -> DeploymentRecord:
        self.record.status, self.record.error, self.record.finished_at = status, error, _now()
        self.log.save(self.record)
        return self.record


def _smoke(target: Registry, version: str, environment: Environment) -> str:
    report = run_validation(target.root, version=version, settings=thresholds(environment))
    if not report.passed:
        raise DeployError(f"smoke test of the live {version} failed: {_failed_checks(report)}")
    return "live version loads, verifies, predicts in schema and within latency"


def _check_contract(source: Registry, name: str, target: Registry, live: str, *, allow_change: bool) -> str:
    """Refuse a candidate whose features or targets differ from the live version's (see ``contract``)."""
    allowed = "allowed by --allow-contract-change"
    try:
        live_contract = Contract.of(target.load(live))
    except EfimeroError as exc:
        if allow_change:
            return f"contract of the live {live} not checked ({exc}); {allowed}"
        raise DeployError(f"the contract of the live {live} cannot be read ({exc}). Pass --allow-contract-change "
                          "to deploy without comparing it.") from exc
    changes = contract_changes(live_contract, Contract.of(source.load(name)))
    if not changes:
        return f"{name} reads the same features and serves the same targets and classes as the live {live}"
    if allow_change:
        return f"contract change {allowed}: {'; '.join(changes)}"
    raise DeployError(f"{'; '.join(changes)}. Deploy a version with the live contract, or pass "
                      "--allow-contract-change once the clients are ready for the change.")


def deploy(
    source: str | Path,
    target: str,
    *,
    version: str = "latest",
    validate: bool | None = None,
    backup: bool | None = None,
    test_data: str | Path | None = None,
    allow_contract_change: bool = False,
    lock_wait_s: float = LOCK_WAIT_S,
    environments: EnvironmentsConfig | None = None,
    echo: Callable[[Step], None] | None = None,
) -> DeploymentRecord:
    """Deploy ``version`` of the registry ``source`` to environment ``target``.

    ``validate`` and ``backup`` default to the environment's ``validation_required`` and
    ``backup_enabled``. A candidate whose contract (features, targets, classes) differs from
    the live version's is refused unless ``allow_contract_change``, which the record keeps.

    Returns:
        The deployment record (``status`` success or failed).

    Raises:
        DeployError: the target is still being deployed by another process after ``lock_wait_s``.
        VersionNotFoundError: unknown version (with other problems found before anything is
            recorded, such as an unknown target). Any other exception is a bug: it is recorded
            as ``failed`` and the target restored before it propagates.

    Example:
        >>> record = deploy("models/", "staging", validate=True)  # doctest: +SKIP
        >>> print("\\n".join(record.log))                         # doctest: +SKIP
    """
    environment = (environments or EnvironmentsConfig()).get(target)
    source_registry = Registry(source)
    name = source_registry.resolve(version)
    target_registry = Registry(environment.model_dir)
    with target_lock(target_registry.root, target=target, doing=f"deploy of {name}", wait_s=lock_wait_s):
        ensure_no_rollout(target_registry.root, doing=f"a deploy of {name}")
        previous = target_registry.current()
        record = DeploymentRecord("deploy", target, name, previous, source=str(source_registry.root))
        run = _Run(record, DeploymentLog(target_registry.root), echo)
        added = False

        def steps() -> None:
            nonlocal added
            added = stage(run, source_registry, name, target_registry, previous, environment,
                          validate=validate, backup=backup, test_data=test_data,
                          allow_contract_change=allow_contract_change)
            go_live(run, target_registry, name, previous, environment)

        return run.conclude(steps, lambda: _restore(run, target_registry, previous, name, added=added))


def stage(
    run: _Run, source: Registry, name: str, target: Registry, previous: str | None, environment: Environment, *,
    validate: bool | None, backup: bool | None, test_data: str | Path | None, allow_contract_change: bool,
) -> bool:
    """The steps before a version may serve anyone: contract, validation, backup, copy.

    Returns whether the copy added the version to the target (an undo then removes it).
    """
    if previous:
        run.step("contract", lambda: _check_contract(source, name, target, previous,
                                                     allow_change=allow_contract_change))
    if validate if validate is not None else environment.validation_required:
        def validation() -> str:
            report = run_validation(source.root, version=name, test_data=test_data,
                                    settings=thresholds(environment), recorded_metrics=test_data is None)
            if not report.passed:
                raise DeployError(f"{name} does not meet the {run.record.target} thresholds: {_failed_checks(report)}")
            return f"{name} meets the {run.record.target} thresholds ({', '.join(c.name for c in report.checks)})"
        run.step("validation", validation)
    if previous and (backup if backup is not None else environment.backup_enabled):
        run.step("backup", lambda: f"{previous} copied to {target.backup(previous)}")
    added = False

    def copy() -> str:
        nonlocal added
        added = target.adopt(source.path(name))
        return (f"{name} copied to {target.root}, checksums verified" if added
                else f"{name} already in {target.root}")
    run.step("copy", copy)
    if environment.compile:
        run.step("compile", lambda: _compile(target, name), required=False)
    return added


def _compile(target: Registry, name: str) -> str:
    report = target.compile(name)
    return (f"{len(report.models)} models compiled in {report.seconds:.1f} s, equal to XGBoost within "
            f"{report.max_abs_diff:.1e} on the verification sample")


def go_live(run: _Run, target: Registry, name: str, previous: str | None, environment: Environment) -> None:
    """The steps that make a staged version the live one: switch, smoke test, prune, mirror."""
    run.switch(target, name, previous)
    run.step("smoke test", lambda: _smoke(target, name, environment))
    keep = (previous,) if previous else ()
    run.step("prune", lambda: f"removed {target.prune(environment.max_versions_to_keep, keep=keep) or 'nothing'}")
    mirror(run, target, name)


def mirror(run: _Run, target: Registry, name: str) -> None:
    """Move the MLflow alias named after the target to ``name``, when a tracking URI is configured.

    Recorded as the step ``mlflow mirror``, failed or not; it never raises, so it never fails
    (or undoes) the deployment: a failed move is kept and retried at the next one.
    """
    outcome = mirror_alias(target.root, run.record.target, name)
    if outcome is not None:
        run.add(Step("mlflow mirror", outcome.ok, outcome.detail))


def _restore(run: _Run, target: Registry, previous: str | None, name: str, *, added: bool) -> None:
    """Undo a failed deployment: pointer back first (what serves), then the added copy.

    Never raises: the failure being undone is what the caller reports; a failed restore is a
    step of its own in the record (and a bug behind it is logged with its traceback).
    """
    try:
        if run.switched:
            target.restore_pointer(previous)
        if added and name != previous:
            target.remove(name)
        run.add(Step("restore", True, f"target restored to {previous or 'no version'}"))
    except Exception as exc:
        if not isinstance(exc, EfimeroError):
            logger.exception("restoring %s after a failed deployment failed", target.root)
        run.add(Step("restore", False, _describe(exc)))


def rollback(
    target: str,
    *,
    to: str | None = None,
    lock_wait_s: float = LOCK_WAIT_S,
    environments: EnvironmentsConfig | None = None,
    echo: Callable[[Step], None] | None = None,
) -> DeploymentRecord:
    """Point ``target`` back at the version it served before (or at ``to``), verified first.

    A damaged copy of the chosen version is restored from ``backups/`` when one is there.
    Waits like :func:`deploy` for another deployment or rollback of the target.
    """
    environment = (environments or EnvironmentsConfig()).get(target)
    if not environment.rollback_enabled:
        raise DeployError(f"rollback is disabled for {target} (rollback_enabled: false in environments.yaml).")
    registry = Registry(environment.model_dir)
    with target_lock(registry.root, target=target, doing=f"rollback to {to or 'the previous version'}",
                     wait_s=lock_wait_s):
        ensure_no_rollout(registry.root, doing="a rollback")
        log = DeploymentLog(registry.root)
        current = registry.current()
        name = to or _previous_version(registry, log, current)
        run = _Run(DeploymentRecord("rollback", target, name, current, source=str(registry.root)), log, echo)

        def steps() -> None:
            run.step("integrity", lambda: _ensure_intact(registry, name))
            run.switch(registry, name, current)
            run.step("smoke test", lambda: _smoke(registry, name, environment))
            mirror(run, registry, name)

        return run.conclude(steps, lambda: _restore(run, registry, current, name, added=False))


def _previous_version(registry: Registry, log: DeploymentLog, current: str | None) -> str:
    if current is None:
        raise DeployError(f"{registry.root}: nothing is deployed, so there is nothing to roll back.")
    last = log.last_success(current)
    if last and last["previous_version"]:
        return last["previous_version"]
    versions = registry.versions()  # oldest first
    older = versions[: versions.index(current)] if current in versions else versions
    if not older:
        raise DeployError(f"{registry.root}: {current} has no earlier version to roll back to. Name one with --to.")
    return older[-1]


def _ensure_intact(registry: Registry, name: str) -> str:
    """Verify ``name`` in the target; replace a damaged or missing copy from the newest backup."""
    try:
        verify(registry.path(name))
        return f"{name} verified against its manifest"
    except EfimeroError as damage:
        try:
            source = registry.restore(name)
        except EfimeroError as exc:
            raise DeployError(f"{name} is damaged or missing ({damage}) and cannot be restored: {exc}") from damage
        return f"{name} was damaged ({damage}); restored from {source.name}"
