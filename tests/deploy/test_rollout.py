"""The rollout controller: stages, holds, waits on silence, halves, rolls back, survives being killed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from efimero.deploy import DeploymentLog, deploy, rollback
from efimero.deploy.rollout import StageCheck, abort, start, status, step
from efimero.deploy.rollout_state import RolloutPlan, read_state, write_state
from efimero.errors import DeployError
from efimero.registry import Registry
from tests.conftest import run_and_kill
from tests.deploy.conftest import environments

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PLAN = RolloutPlan(stages=(0.05, 0.10, 0.25, 0.50, 1.0), hold_minutes=5)


def always(outcome: str, reason: str = "checks"):
    return lambda state, start_, end: StageCheck(outcome, reason)  # type: ignore[arg-type]


@pytest.fixture
def live(source, tmp_path):
    """Production serves the older version; the newer one is the candidate."""
    root, (old, new) = source
    config = environments(tmp_path)
    assert deploy(root, "production", version=old, environments=config).status == "success"
    return root, old, new, config, Registry(tmp_path / "prod")


def started(live, **kwargs):
    root, old, new, config, prod = live
    return start(root, "production", version=new, now=T0, plan=PLAN, environments=config, **kwargs)


def test_a_passing_candidate_goes_through_every_stage_and_becomes_current(live) -> None:
    _, old, new, config, prod = live
    state = started(live)
    assert (state.share, state.status, prod.current()) == (0.05, "running", old)
    assert prod.traffic().arm("canary").share == 0.05
    shares = []
    for minutes in range(5, 40, 5):
        state = step("production", now=T0 + timedelta(minutes=minutes), judge=always("pass"), environments=config)
        shares.append(state.share)
        if not state.running:
            break
    assert shares == [0.10, 0.25, 0.50, 1.0]
    assert (state.status, prod.current(), prod.traffic()) == ("completed", new, None)
    record = DeploymentLog(prod.root).records()[-1]
    assert record["action"] == "rollout" and record["status"] == "success" and record["previous_version"] == old
    assert [s["name"] for s in record["steps"]] == [
        "contract", "validation", "copy", "canary", "advanced", "advanced", "advanced", "switch", "smoke test",
        "prune", "completed"]
    assert Registry(prod.root).previous(new) == old


def test_a_stage_holds_its_window_and_waits_while_inconclusive(live) -> None:
    _, _, _, config, prod = live
    started(live)
    early = step("production", now=T0 + timedelta(minutes=4), judge=always("pass"), environments=config)
    assert early.share == 0.05 and "holding the stage for 5 min" in early.last_check.reason
    for minutes in (5, 50, 500):
        state = step("production", now=T0 + timedelta(minutes=minutes),
                     judge=always("inconclusive", "12 of 30 sessions"), environments=config)
        assert (state.share, state.stage_index, state.status) == (0.05, 0, "running")
    assert state.last_check.reason == "12 of 30 sessions"
    assert prod.traffic().arm("canary").share == 0.05


def test_a_high_severity_anomaly_rolls_back_and_records_why(live) -> None:
    _, old, new, config, prod = live
    started(live)
    state = step("production", now=T0 + timedelta(minutes=1), judge=always("rollback", "accuracy dropped 0.12"),
                 environments=config)
    assert state.status == "rolled_back" and prod.traffic() is None and prod.current() == old
    record = DeploymentLog(prod.root).records()[-1]
    assert record["status"] == "rolled_back" and record["error"] == "accuracy dropped 0.12"
    assert state.events[-1].event == "rolled_back"
    # A finished rollout is left as it is.
    again = step("production", now=T0 + timedelta(minutes=9), judge=always("pass"), environments=config)
    assert again.status == "rolled_back" and prod.current() == old


def test_a_medium_anomaly_halves_the_candidates_share(live) -> None:
    _, _, _, config, prod = live
    started(live)
    state = step("production", now=T0 + timedelta(minutes=6), judge=always("halve", "latency +60 ms"),
                 environments=config)
    assert state.share == 0.025 and prod.traffic().arm("canary").share == 0.025
    assert state.stage_started_at == T0 + timedelta(minutes=6)


def test_abort_sends_everyone_back_and_deploys_wait_for_a_running_rollout(live) -> None:
    root, old, new, config, prod = live
    started(live)
    with pytest.raises(DeployError, match="a rollout of .* is running"):
        deploy(root, "production", version=new, environments=config)
    with pytest.raises(DeployError, match="a rollout of .* is running"):
        rollback("production", environments=config)
    with pytest.raises(DeployError, match="is running"):
        started(live)
    state = abort("production", now=T0, reason="operator said so", environments=config)
    assert state.status == "aborted" and prod.traffic() is None
    assert status("production", environments=config).status == "aborted"
    with pytest.raises(DeployError, match="already aborted"):
        abort("production", now=T0, reason="twice", environments=config)


def test_a_candidate_that_fails_validation_never_reaches_a_visitor(source, tmp_path) -> None:
    root, (old, new) = source
    assert deploy(root, "production", version=old, environments=environments(tmp_path)).status == "success"
    strict = environments(tmp_path, production_accuracy=0.99)
    with pytest.raises(DeployError, match="stopped before any visitor saw it"):
        start(root, "production", version=new, now=T0, environments=strict)
    prod = Registry(tmp_path / "prod")
    assert prod.traffic() is None and new not in prod.versions() and read_state(prod.root) is None


@pytest.mark.parametrize("stages", [(0.05, 1.5), (0.5, 0.25, 1.0), (0.05, 0.5), (0.0, 1.0)])
def test_a_bad_schedule_is_refused_up_front(stages) -> None:
    with pytest.raises(ValueError, match="stage"):
        RolloutPlan(stages=stages)


def test_a_round_killed_between_state_and_split_is_completed_by_the_next(live) -> None:
    _, _, new, config, prod = live
    state = started(live)
    # As if killed after writing the next stage's state but before the split followed it.
    write_state(prod.root, state.model_copy(update={"stage_index": 1, "share": 0.10}))
    step("production", now=T0 + timedelta(minutes=1), judge=always("pass"), environments=config)
    assert prod.traffic().arm("canary").share == 0.10
    # As if killed after making the candidate current, before the state said so.
    prod.set_current(new)
    final = step("production", now=T0 + timedelta(minutes=2), judge=always("pass"), environments=config)
    assert final.status == "completed" and prod.traffic() is None


_ROLLER = """
import sys
from datetime import UTC, datetime, timedelta
from efimero.config import EnvironmentsConfig
from efimero.deploy.rollout import StageCheck, abort, start, status, step
from efimero.deploy.rollout_state import RolloutPlan
config = EnvironmentsConfig.model_validate({"environments": {"production": {
    "model_dir": sys.argv[2], "validation_required": False, "performance_threshold": {"latency_ms": 1000}}}})
versions = sys.argv[3:]
now = datetime(2026, 11, 27, tzinfo=UTC)
judge = lambda state, begin, end: StageCheck("pass", "fine")
print("ready", flush=True)
i = 0
while True:
    now += timedelta(minutes=10)
    start(sys.argv[1], "production", version=versions[i % 2], now=now, plan=RolloutPlan(hold_minutes=5),
          environments=config)
    while status("production", environments=config).running:
        now += timedelta(minutes=10)
        step("production", now=now, judge=judge, environments=config)
    i += 1
"""


def test_sigkill_at_any_moment_leaves_traffic_on_versions_that_load_and_the_next_round_recovers(live) -> None:
    root, old, new, config, prod = live
    for delay in (0.05, 0.2, 0.45, 0.7, 1.0, 1.4, 1.9):
        run_and_kill(_ROLLER, root, prod.root, new, old, after_s=delay)
        served = [prod.current()] + [arm.version for arm in (prod.traffic().arms if prod.traffic() else ())]
        for version in served:
            prod.load(version)  # verifies every checksum
        state = read_state(prod.root)
        if state is not None:  # a round reconciles even a finished rollout killed before its split was removed
            after = step("production", now=state.stage_started_at, judge=always("inconclusive"), environments=config)
            if after.running:  # the split follows the state again
                assert prod.traffic().arm("canary").share == after.share
                abort("production", now=state.stage_started_at, reason="killed", environments=config)
        assert prod.traffic() is None
        assert {r["status"] for r in DeploymentLog(prod.root).records()} <= {
            "success", "rolled_back", "aborted", "failed", "in_progress", "running"}


@pytest.mark.parametrize(("passed", "refusal"), [(False, "refused by the offline check: worse by 0.05"),
                                                 (None, "stopped: could not run the offline check: ESS 12")])
def test_a_precheck_that_refuses_or_cannot_run_stops_the_rollout_before_anything_is_staged(
    live, passed, refusal
) -> None:
    _, old, new, _, prod = live
    seen = []

    def precheck(source, version, target):
        seen.append((version, target.root))
        return passed, "worse by 0.05" if passed is False else "ESS 12"

    with pytest.raises(DeployError, match=refusal):
        started(live, precheck=precheck)
    assert seen == [(new, prod.root)]
    assert (prod.current(), prod.traffic(), read_state(prod.root)) == (old, None, None)
    assert new not in prod.list()


def test_a_passing_precheck_lets_the_canary_start(live) -> None:
    state = started(live, precheck=lambda source, version, target: (True, "dr 0.61 against live 0.60"))
    assert (state.share, state.status) == (0.05, "running")
