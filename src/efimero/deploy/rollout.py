"""Gradual rollout: a candidate serves a growing share of visitors until it is the live version.

The retraining guidelines' stages: validation, canary (5 % of visitors), then 10, 25, 50 and
100 %. Each stage holds for a window; it advances only when the window's checks pass against
the live version on enough sessions. Too few sessions is *inconclusive*: the stage waits, it
never advances on silence (Argo Rollouts' Inconclusive). A high-severity anomaly rolls the
candidate back at once; a medium one halves its share and the stage goes on.

State lives in ``rollout.json`` in the target's registry, beside ``current`` and
``traffic.json``, and every change is written there first, then applied to the traffic split.
Each round starts by making the split agree with the state (:func:`_reconcile`), so a round
killed between the two writes is completed by the next one; the split only ever names a
version that was verified when it was staged, and the server keeps the live version for
anything it cannot load. One round runs at a time per target (the deployment lock), and a
plain deploy or rollback of the target waits for it the same way.

Time comes from a clock the caller passes in (``now``): the wall clock in production, the
store's newest visit when a simulator drives the traffic, so a whole rollout runs in seconds
in a test.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from efimero.config import Environment, EnvironmentsConfig
from efimero.deploy._lock import target_lock
from efimero.deploy.history import DeploymentLog, DeploymentRecord, Step
from efimero.deploy.promote import LOCK_WAIT_S, _describe, _Run, go_live, stage
from efimero.deploy.rollout_state import (
    CANARY_ARM,
    RECORD_STATUS,
    Clock,
    RolloutEvent,
    RolloutPlan,
    RolloutState,
    Status,
    ensure_no_rollout,
    read_state,
    write_state,
)
from efimero.errors import DeployError, EfimeroError
from efimero.registry import Registry

Outcome = Literal["pass", "inconclusive", "halve", "rollback"]


@dataclass(frozen=True)
class StageCheck:
    """What the checks of a window say about the candidate against the live version."""

    outcome: Outcome
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


Judge = Callable[[RolloutState, datetime, datetime], StageCheck]
"""``judge(state, window_start, window_end)``: the candidate's checks over that window."""

Precheck = Callable[[Registry, str, Registry], tuple[bool | None, str]]
"""``precheck(source, version, target)``: before a rollout stages anything, whether the candidate may
start (True), must not (False) or could not be checked (None), and why."""


class _Rollout:
    """The deployment record of a rollout, reopened by every round, and the target it acts on."""

    def __init__(self, environment: Environment, state: RolloutState, echo: Callable[[Step], None] | None) -> None:
        self.environment, self.state = environment, state
        self.registry = Registry(environment.model_dir)
        log = DeploymentLog(self.registry.root)
        found = next((r for r in log.records() if r["id"] == state.record_id), None)
        record = DeploymentRecord("rollout", state.target, state.version, state.previous_version, id=state.record_id)
        if found is not None:
            record.started_at, record.source = found["started_at"], found.get("source", "")
            record.finished_at, record.error = found.get("finished_at"), found.get("error")
            record.steps = [Step(**step) for step in found.get("steps", [])]
        record.status = RECORD_STATUS[state.status]
        self.run = _Run(record, log, echo)

    def note(self, event: str, now: datetime, reason: str, details: dict[str, Any] | None = None) -> None:
        """Record an event in the state (written first) and as a step of the deployment record."""
        happened = RolloutEvent(at=now, event=event, share=self.state.share, reason=reason, details=details or {})
        self.state = self.state.model_copy(update={"events": [*self.state.events, happened]})
        write_state(self.registry.root, self.state)
        self.run.add(Step(event, event not in {"rolled_back", "aborted"}, f"{self.state.share:.0%}: {reason}"))

    def finish(self, status: Status, now: datetime, reason: str) -> RolloutState:
        """End the rollout: the state first, then the split, then the record (a crash between is reconciled)."""
        self.state = self.state.model_copy(update={"status": status})
        self.note(status, now, reason)
        self.registry.set_traffic(None)
        self.run.finish(RECORD_STATUS[status], None if status == "completed" else reason)
        return self.state


def start(
    source: str | Path,
    target: str,
    *,
    version: str,
    now: datetime,
    plan: RolloutPlan | None = None,
    validate: bool | None = None,
    test_data: str | Path | None = None,
    allow_contract_change: bool = False,
    lock_wait_s: float = LOCK_WAIT_S,
    environments: EnvironmentsConfig | None = None,
    echo: Callable[[Step], None] | None = None,
    clock: Clock = "wall",
    db_url: str = "sqlite:///data/efimero.db",
    precheck: Precheck | None = None,
) -> RolloutState:
    """Validate and stage ``version`` of ``source`` in ``target``, then give it the first stage's share.

    The live version stays ``current`` until the last stage passes. ``clock`` and ``db_url``
    are kept in the state for the rounds that follow (which time, which store to check).
    ``precheck`` (the off-policy estimate of :mod:`efimero.bandit`, say) runs before anything is
    staged; a check that fails, or that cannot run, stops the rollout before any visitor sees it.

    Raises:
        DeployError: the target has no live version to compare with, another rollout runs, the
            precheck refused or could not run, or a staging step (contract, validation, copy)
            failed; the target is then as before.
    """
    environment = (environments or EnvironmentsConfig()).get(target)
    plan = plan or RolloutPlan()
    source_registry = Registry(source)
    name = source_registry.resolve(version)
    registry = Registry(environment.model_dir)
    if precheck is not None:
        passed, reason = precheck(source_registry, name, registry)
        if passed is not True:
            outcome = "refused by" if passed is False else "stopped: could not run"
            raise DeployError(f"rollout of {name} to {target} {outcome} the offline check: {reason}")
        if echo is not None:
            echo(Step("offline check", True, reason))
    with target_lock(registry.root, target=target, doing=f"rollout of {name}", wait_s=lock_wait_s):
        ensure_no_rollout(registry.root, doing=f"a rollout of {name}")
        if (split := registry.traffic()) is not None:
            raise DeployError(f"{target} splits its traffic already ({split.owner or 'traffic.json'}); a rollout "
                              "needs it whole. End that first.")
        previous = registry.current()
        if previous is None:
            raise DeployError(f"{target} serves no version yet: there is nothing to compare a candidate with. "
                              f"Deploy the first version with `efimero deploy --target {target}`.")
        if previous == name:
            raise DeployError(f"{name} is already the live version of {target}.")
        record = DeploymentRecord("rollout", target, name, previous, source=str(source_registry.root))
        run = _Run(record, DeploymentLog(registry.root), echo)
        added = False
        state = RolloutState(
            id=record.id, target=target, version=name, previous_version=previous, plan=plan,
            salt=secrets.token_hex(8), share=plan.stages[0], stage_started_at=now, record_id=record.id,
            clock=clock, db_url=db_url,
        )

        def steps() -> None:
            nonlocal added
            added = stage(run, source_registry, name, registry, previous, environment, validate=validate,
                          backup=False, test_data=test_data, allow_contract_change=allow_contract_change)

        staged = run.conclude(steps, lambda: _remove_copy(run, registry, name, added=added))
        if staged.status != "success":
            raise DeployError(f"rollout of {name} to {target} stopped before any visitor saw it: {staged.error}")
        record.status, record.finished_at = "running", None
        write_state(registry.root, state)  # first: a round after a kill from here on sets the split
        rollout = _Rollout(environment, state, echo)
        try:
            registry.set_traffic(state.split(), claim=True)
        except EfimeroError as exc:
            rollout.finish("aborted", now, f"the traffic could not be split: {exc}")
            raise DeployError(f"rollout of {name} to {target} cannot start: {exc}") from exc
        rollout.note("canary", now, f"{name} serves {plan.stages[0]:.0%} of visitors; {previous} the rest")
        return rollout.state


def _remove_copy(run: _Run, registry: Registry, name: str, *, added: bool) -> None:
    if added:
        registry.remove(name)
        run.add(Step("restore", True, f"removed the copy of {name}: nothing serves it"))


def step(
    target: str,
    *,
    now: datetime,
    judge: Judge,
    lock_wait_s: float = LOCK_WAIT_S,
    environments: EnvironmentsConfig | None = None,
    echo: Callable[[Step], None] | None = None,
) -> RolloutState:
    """One round of the controller: check the current stage's window and act on it.

    Rolls back on ``rollback``; halves the share on ``halve``; once the stage has held for
    ``hold_minutes``, advances on ``pass`` (the last stage makes the candidate ``current``)
    and waits on ``inconclusive``. A finished rollout is returned as it is.

    Raises:
        DeployError: the target never had a rollout.
    """
    environment = (environments or EnvironmentsConfig()).get(target)
    registry = Registry(environment.model_dir)
    with target_lock(registry.root, target=target, doing="a rollout round", wait_s=lock_wait_s):
        state = _require(registry.root, target)
        rollout = _Rollout(environment, state, echo)
        _reconcile(rollout)
        if not state.running:
            return state
        check = judge(state, state.stage_started_at, now)
        held = now - state.stage_started_at >= timedelta(minutes=state.plan.hold_minutes)
        try:
            return _act(rollout, check, now, held=held)
        except EfimeroError as exc:
            return rollout.finish("rolled_back", now, f"the rollout could not go on: {exc}")


def _act(rollout: _Rollout, check: StageCheck, now: datetime, *, held: bool) -> RolloutState:
    state = rollout.state
    if check.outcome == "rollback":
        return rollout.finish("rolled_back", now, check.reason)
    if check.outcome == "halve":
        rollout.state = state.model_copy(update={"share": state.share / 2, "stage_started_at": now})
        rollout.note("halved", now, check.reason, check.details)
        rollout.registry.set_traffic(rollout.state.split())
        return rollout.state
    if not held or check.outcome == "inconclusive":
        waiting = RolloutEvent(at=now, event="waiting", share=state.share, details=check.details,
                               reason=check.reason if held else f"holding the stage for {state.plan.hold_minutes:g} "
                               f"min from {state.stage_started_at:%Y-%m-%d %H:%M}; so far: {check.reason}")
        rollout.state = state.model_copy(update={"last_check": waiting})
        write_state(rollout.registry.root, rollout.state)
        return rollout.state
    next_index = state.stage_index + 1
    if next_index >= len(state.plan.stages) - 1:
        return _go_live(rollout, check, now)
    share = state.plan.stages[next_index]
    rollout.state = state.model_copy(update={"stage_index": next_index, "share": share, "stage_started_at": now})
    rollout.note("advanced", now, check.reason, check.details)
    rollout.registry.set_traffic(rollout.state.split())
    return rollout.state


def _go_live(rollout: _Rollout, check: StageCheck, now: datetime) -> RolloutState:
    """The last stage: the candidate becomes ``current``; a failure puts the live version back and rolls back."""
    state = rollout.state
    try:
        go_live(rollout.run, rollout.registry, state.version, state.previous_version, rollout.environment)
    except BaseException as exc:
        if rollout.run.switched:
            rollout.registry.restore_pointer(state.previous_version)
        rollout.finish("rolled_back", now, f"going live failed, {state.previous_version} is live again: "
                       f"{_describe(exc)}")
        if not isinstance(exc, EfimeroError):
            raise
        return rollout.state
    rollout.state = state.model_copy(update={"stage_index": len(state.plan.stages) - 1, "share": 1.0})
    return rollout.finish("completed", now, f"{check.reason}; {state.version} is now live for every visitor")


def abort(
    target: str, *, now: datetime, reason: str, lock_wait_s: float = LOCK_WAIT_S,
    environments: EnvironmentsConfig | None = None, echo: Callable[[Step], None] | None = None,
) -> RolloutState:
    """Stop the running rollout: every visitor back on the live version, the reason recorded.

    Raises:
        DeployError: no rollout is running on the target.
    """
    environment = (environments or EnvironmentsConfig()).get(target)
    registry = Registry(environment.model_dir)
    with target_lock(registry.root, target=target, doing="a rollout abort", wait_s=lock_wait_s):
        state = _require(registry.root, target)
        if not state.running:
            raise DeployError(f"the last rollout on {target} ({state.version}) is already {state.status}.")
        return _Rollout(environment, state, echo).finish("aborted", now, reason)


def status(target: str, *, environments: EnvironmentsConfig | None = None) -> RolloutState:
    """The target's running or last rollout.

    Raises:
        DeployError: the target never had a rollout.
    """
    environment = (environments or EnvironmentsConfig()).get(target)
    return _require(Registry(environment.model_dir).root, target)


def _require(root: Path, target: str) -> RolloutState:
    state = read_state(root)
    if state is None:
        raise DeployError(f"{target} has had no rollout. Start one with `efimero rollout start --target {target}`.")
    return state


def _reconcile(rollout: _Rollout) -> None:
    """Make the split say what the state says: a round killed between the two writes is completed here."""
    state, registry = rollout.state, rollout.registry
    split = registry.traffic()
    if state.running and registry.current() == state.version:  # killed after the switch to the candidate
        rollout.finish("completed", state.last_check.at if state.last_check else state.stage_started_at,
                       f"{state.version} had been made live when the last round stopped")
    elif state.running:
        arm = split.arm(CANARY_ARM) if split is not None else None
        if arm is None or arm.version != state.version or arm.share != state.share:
            registry.set_traffic(state.split())
    elif split is not None and any(arm.version == state.version for arm in split.arms):
        registry.set_traffic(None)
        if rollout.run.record.status == "running":
            rollout.run.finish(RECORD_STATUS[state.status], None)

