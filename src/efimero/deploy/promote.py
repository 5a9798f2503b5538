"""Deploying a registry version to an environment, and rolling an environment back.

Deployment steps (the training scripts guide): validate against the target's thresholds, back
up what the target serves, copy the version (verified after the copy), switch the target's
live pointer atomically, smoke-test what is now live, prune old versions, record everything.
A failure at any step puts the pointer back and removes a version this deployment added, so
the target is as it was; a SIGKILL at any moment leaves the pointer on a complete version,
because copies become visible only whole and the pointer moves in one rename.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from efimero.config import Environment, EnvironmentsConfig, ValidationSettings
from efimero.deploy.history import DeploymentLog, DeploymentRecord, Step, _now
from efimero.errors import DeployError, EfimeroError
from efimero.gate import GateReport, run_validation
from efimero.registry import Registry, verify

logger = logging.getLogger(__name__)

def thresholds(environment: Environment) -> ValidationSettings:
    """The validation gate's settings from an environment's performance thresholds."""
    limits = environment.performance_threshold
    return ValidationSettings(
        max_avg_latency_ms=limits.latency_ms, max_p95_latency_ms=limits.latency_ms,
        min_accuracy=limits.accuracy_min, min_r2=limits.r2_min,
    )


def _failed_checks(report: GateReport) -> str:
    return "; ".join(f"{c.name}: {c.detail}" for c in report.checks if not c.passed)


class _Run:
    """Runs named steps, timing and recording each; a failing step raises DeployError."""

    def __init__(self, record: DeploymentRecord, log: DeploymentLog, echo: Callable[[Step], None] | None) -> None:
        self.record, self.log, self.echo = record, log, echo
        self.switched = False

    def switch(self, registry: Registry, name: str, previous: str | None) -> None:
        """The atomic pointer switch, remembered so that a later failure can undo it."""
        def action() -> str:
            registry.restore_pointer(name)
            self.switched = True
            return f"{self.record.target} now points to {name} (was {previous or 'nothing'})"
        self.step("switch", action)

    def step(self, name: str, action: Callable[[], str]) -> None:
        started = time.perf_counter()
        try:
            detail, ok = action(), True
        except EfimeroError as exc:
            detail, ok = str(exc), False
        self.add(Step(name, ok, detail, round((time.perf_counter() - started) * 1000, 1)))
        if not ok:
            raise DeployError(f"{name} failed: {detail}")

    def add(self, step: Step) -> None:
        self.record.steps.append(step)
        self.log.save(self.record)
        if self.echo:
            self.echo(step)

    def finish(self, status: str, error: str | None = None) -> DeploymentRecord:
        self.record.status, self.record.error, self.record.finished_at = status, error, _now()
        self.log.save(self.record)
        return self.record


def _smoke(target: Registry, version: str, environment: Environment) -> str:
    report = run_validation(target.root, version=version, settings=thresholds(environment))
    if not report.passed:
        raise DeployError(f"smoke test of the live {version} failed: {_failed_checks(report)}")
    return "live version loads, verifies, predicts in schema and within latency"


def deploy(
    source: str | Path,
    target: str,
    *,
    version: str = "latest",
    validate: bool | None = None,
    backup: bool | None = None,
    test_data: str | Path | None = None,
    environments: EnvironmentsConfig | None = None,
    echo: Callable[[Step], None] | None = None,
) -> DeploymentRecord:
    """Deploy ``version`` of the registry ``source`` to environment ``target``.

    ``validate`` and ``backup`` default to the environment's ``validation_required`` and
    ``backup_enabled``. Returns the deployment record (``status`` success or failed); only
    problems found before anything is recorded (unknown target or version) raise.

    Example:
        >>> record = deploy("models/", "staging", validate=True)  # doctest: +SKIP
        >>> print("\\n".join(record.log))                         # doctest: +SKIP
    """
    environment = (environments or EnvironmentsConfig()).get(target)
    source_registry = Registry(source)
    name = source_registry.resolve(version)
    target_registry = Registry(environment.model_dir)
    target_registry.root.mkdir(parents=True, exist_ok=True)
    previous = target_registry.current()
    log = DeploymentLog(target_registry.root)
    record = DeploymentRecord("deploy", target, name, previous, source=str(source_registry.root))
    log.save(record)
    run = _Run(record, log, echo)
    added = False
    try:
        if validate if validate is not None else environment.validation_required:
            def validation() -> str:
                report = run_validation(source_registry.root, version=name, test_data=test_data,
                                        settings=thresholds(environment), recorded_metrics=test_data is None)
                if not report.passed:
                    raise DeployError(f"{name} does not meet the {target} thresholds: {_failed_checks(report)}")
                return f"{name} meets the {target} thresholds ({', '.join(c.name for c in report.checks)})"
            run.step("validation", validation)
        if previous and (backup if backup is not None else environment.backup_enabled):
            run.step("backup", lambda: f"{previous} copied to {target_registry.backup(previous)}")

        def copy() -> str:
            nonlocal added
            added = target_registry.adopt(source_registry.path(name))
            return f"{name} copied to {target_registry.root}, checksums verified" if added else f"{name} already in {target_registry.root}"
        run.step("copy", copy)

        run.switch(target_registry, name, previous)
        run.step("smoke test", lambda: _smoke(target_registry, name, environment))
        keep = (previous,) if previous else ()
        run.step("prune", lambda: f"removed {target_registry.prune(environment.max_versions_to_keep, keep=keep) or 'nothing'}")
    except DeployError as exc:
        _restore(run, target_registry, previous, name, added=added)
        return run.finish("failed", str(exc))
    return run.finish("success")


def _restore(run: _Run, target: Registry, previous: str | None, name: str, *, added: bool) -> None:
    """Undo a failed deployment: pointer back first (what serves), then the added copy."""
    try:
        if run.switched:
            target.restore_pointer(previous)
        if added and name != previous:
            target.remove(name)
        run.add(Step("restore", True, f"target restored to {previous or 'no version'}"))
    except EfimeroError as exc:
        run.add(Step("restore", False, str(exc)))


def rollback(
    target: str,
    *,
    to: str | None = None,
    environments: EnvironmentsConfig | None = None,
    echo: Callable[[Step], None] | None = None,
) -> DeploymentRecord:
    """Point ``target`` back at the version it served before (or at ``to``), verified first.

    A damaged copy of the chosen version is restored from ``backups/`` when one is there.
    """
    environment = (environments or EnvironmentsConfig()).get(target)
    if not environment.rollback_enabled:
        raise DeployError(f"rollback is disabled for {target} (rollback_enabled: false in environments.yaml).")
    registry = Registry(environment.model_dir)
    log = DeploymentLog(registry.root)
    current = registry.current()
    name = to or _previous_version(registry, log, current)
    record = DeploymentRecord("rollback", target, name, current, source=str(registry.root))
    log.save(record)
    run = _Run(record, log, echo)
    try:
        run.step("integrity", lambda: _ensure_intact(registry, name))
        run.switch(registry, name, current)
        run.step("smoke test", lambda: _smoke(registry, name, environment))
    except DeployError as exc:
        _restore(run, registry, current, name, added=False)
        return run.finish("failed", str(exc))
    return run.finish("success")


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
