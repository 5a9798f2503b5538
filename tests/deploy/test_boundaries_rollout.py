"""The rollout schedule's rules at their boundaries (found by `make mutation`): every stage a share
in (0, 1], strictly increasing, the last one 1; a stage holds for ``hold_minutes`` from its own start
before it passes, the split follows each stage, each event keeps the checks' evidence, and a stage
that cannot be applied rolls the candidate back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from efimero.deploy._lock import target_lock
from efimero.deploy.rollout import StageCheck, step
from efimero.deploy.rollout_state import RolloutPlan
from efimero.errors import DeployError
from tests.deploy.test_rollout import PLAN, T0, always, live, started  # noqa: F401 - fixture


@pytest.mark.parametrize("stages", [(1.0,), (0.05, 1.0), (1e-9, 1.0)])
def test_a_schedule_may_start_anywhere_above_0_and_must_end_at_1(stages) -> None:
    assert RolloutPlan(stages=stages).stages == stages


@pytest.mark.parametrize(("stages", "message"), [
    ((0.5, 0.5, 1.0), "stages must strictly increase"),
    ((0.25, 1.0, 1.0), "stages must strictly increase"),
    ((0.0, 1.0), r"every stage must be a share in \(0, 1\]"),
    ((0.5, 1.0 + 1e-9), r"every stage must be a share in \(0, 1\]"),
    ((0.5, 0.999), "the last stage must be 1"),
])
def test_a_schedule_off_by_one_step_is_refused(stages, message) -> None:
    with pytest.raises(ValidationError, match=message):
        RolloutPlan(stages=stages)


def recording(outcome: str, details: dict, calls: list):
    """A judge that answers ``outcome`` with ``details`` and records the window it was asked about."""
    def judge(state, window_start, window_end):
        calls.append((state.version, state.share, window_start, window_end))
        return StageCheck(outcome, f"{outcome} checks", details)  # type: ignore[arg-type]
    return judge


def test_a_stage_passes_once_it_has_held_exactly_hold_minutes(live) -> None:  # noqa: F811
    _, _, new, config, prod = live
    started(live)
    calls: list = []
    almost_at = T0 + timedelta(minutes=PLAN.hold_minutes) - timedelta(microseconds=1)
    almost = step("production", now=almost_at, judge=recording("pass", {"n": 1}, calls), environments=config)
    assert (almost.stage_index, almost.share) == (0, 0.05)
    assert (almost.last_check.event, almost.last_check.details) == ("waiting", {"n": 1})
    held_at = T0 + timedelta(minutes=PLAN.hold_minutes)
    echoed: list = []
    held = step("production", now=held_at, judge=recording("pass", {"n": 2}, calls), environments=config,
                echo=echoed.append)
    # the judge reads the stage so far: [stage start, now)
    assert calls == [(new, 0.05, T0, almost_at), (new, 0.05, T0, held_at)]
    assert (held.stage_index, held.share, held.stage_started_at) == (1, 0.10, held_at)
    assert (held.events[-1].event, held.events[-1].details) == ("advanced", {"n": 2})
    assert [s.name for s in echoed] == ["advanced"]
    assert prod.traffic().arm("canary").share == 0.10  # the split follows the state
    # the next stage holds for its own window, counted from when it began
    again = step("production", now=held_at + timedelta(minutes=1), judge=always("pass"), environments=config)
    assert (again.stage_index, again.share) == (1, 0.10)


def test_a_halved_stage_records_why_and_starts_its_window_again(live) -> None:  # noqa: F811
    _, _, _, config, prod = live
    started(live)
    at = T0 + timedelta(minutes=2)
    state = step("production", now=at, judge=recording("halve", {"p95": 90.0}, []), environments=config)
    assert (state.events[-1].event, state.events[-1].details, state.events[-1].share) == (
        "halved", {"p95": 90.0}, 0.025)
    assert state.stage_started_at == at and prod.traffic().arm("canary").share == 0.025


def test_a_round_that_cannot_apply_its_stage_rolls_back(live) -> None:  # noqa: F811
    _, old, new, config, prod = live
    started(live)
    model = next((prod.root / new / "models").iterdir())
    model.write_bytes(model.read_bytes() + b"tampered")  # the candidate no longer verifies
    state = step("production", now=T0 + timedelta(minutes=5), judge=always("pass"), environments=config)
    assert state.status == "rolled_back" and prod.current() == old and prod.traffic() is None
    assert state.events[-1].event == "rolled_back"
    assert state.events[-1].reason.startswith("the rollout could not go on: ")
    assert "checksum mismatch" in state.events[-1].reason


def test_a_round_holds_the_target_lock_under_its_name(live) -> None:  # noqa: F811
    _, _, _, config, prod = live
    started(live)
    refusals: list[str] = []

    def judge(state, window_start, window_end):
        with pytest.raises(DeployError) as busy, target_lock(prod.root, target="production", doing="deploy",
                                                             wait_s=0):
            pass
        refusals.append(str(busy.value))
        return StageCheck("inconclusive", "checked")

    step("production", now=T0 + timedelta(minutes=1), judge=judge, environments=config)
    assert refusals[0].startswith("target production is being deployed by pid ")
    assert "(a rollout round); retry when it has finished" in refusals[0]


def test_a_round_on_a_target_that_never_had_a_rollout_says_how_to_start_one(live) -> None:  # noqa: F811
    config = live[3]
    with pytest.raises(DeployError) as refused:
        step("production", now=T0, judge=always("pass"), environments=config)
    assert str(refused.value) == ("production has had no rollout. "
                                  "Start one with `efimero rollout start --target production`.")


def test_a_round_on_a_busy_target_is_refused_naming_that_target(live) -> None:  # noqa: F811
    """Guards the lock's refusal: a round that finds the target busy gives up after ``lock_wait_s``, names
    the target it asked for and who holds it, and changes nothing."""
    _, _, _, config, prod = live
    before = started(live)
    judged: list = []
    with target_lock(prod.root, target="production", doing="deploy of v_other", wait_s=0), \
            pytest.raises(DeployError) as busy:
        step("production", now=T0 + timedelta(minutes=10), judge=recording("pass", {}, judged), lock_wait_s=0,
             environments=config)
    message = str(busy.value)
    assert message.startswith("target production is being deployed by pid "), message
    assert message.endswith("(deploy of v_other); retry when it has finished (waited 0 s; --lock-wait sets how long).")
    assert judged == [] and prod.traffic().arm("canary").share == before.share == 0.05
