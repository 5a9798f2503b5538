"""Rollouts on simulated traffic: a bad candidate dies in its canary, a good one reaches every visitor.

The service serves production; the simulator sends one simulated day of visitors between
controller rounds, and the rollout runs on the store's clock (the newest visit), so days of
stages pass in seconds. The bad candidate was trained on shuffled labels and staged without
offline validation, as a regression that slipped past it would be: only the canary can catch it.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from efimero._api import train
from efimero.config import MonitoringRules
from efimero.data import write_table
from efimero.data.generate import generate_dataset
from efimero.deploy import DeploymentLog, deploy
from efimero.errors import DeployError
from efimero.deploy.rollout import start, step
from efimero.deploy.rollout_checks import clock_now, monitor_judge
from efimero.deploy.rollout_state import RolloutPlan, RolloutState
from efimero.registry import Registry
from efimero.schema import CSS_TASK
from efimero.serve import ServeSettings
from efimero.simulate import simulate
from efimero.store import PredictionRecord, open_engine
from tests.conftest import fast_config
from tests.deploy.conftest import environments
from tests.serve.conftest import LiveServer

pytestmark = pytest.mark.slow

DAY0 = date(2026, 11, 1)
VISITORS_PER_DAY = 800
PLAN = RolloutPlan(stages=(0.05, 0.10, 0.25, 0.50, 1.0), hold_minutes=60)


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str, str]:
    """(source registry, live, good candidate, bad candidate)."""
    root = tmp_path_factory.mktemp("rollout-loop")
    frame = generate_dataset(3000, seed=42)
    shuffled = frame.copy()
    rng = np.random.default_rng(0)
    for target in CSS_TASK.class_target_names:
        shuffled[target] = rng.permutation(shuffled[target].to_numpy())
    config = fast_config()
    source = root / "models"
    live = train(write_table(frame, root / "train.csv"), output=source, config=config).version
    good = train(write_table(generate_dataset(3000, seed=43), root / "more.csv"), output=source, config=config).version
    bad = train(write_table(shuffled, root / "shuffled.csv"), output=source, config=config).version
    return source, live, good, bad


def roll_out(source: Path, live: str, candidate: str, tmp_path: Path) -> tuple[RolloutState, str, list[str]]:
    """Serve ``live`` in production, roll ``candidate`` out day by day; the final state, the store URL, the days."""
    config = environments(tmp_path, production_accuracy=0.0)
    assert deploy(source, "production", version=live, validate=False, environments=config).status == "success"
    db_url = f"sqlite:///{tmp_path}/store.db"
    settings = ServeSettings(models_dir=tmp_path / "prod", db_url=db_url, poll_interval_s=0.05)
    days = []
    with LiveServer(settings) as server:
        judge = monitor_judge(db_url, MonitoringRules())
        simulate(server.url, visitors=VISITORS_PER_DAY, days=1, start_date=DAY0, seed=100, concurrency=4)
        state = start(source, "production", version=candidate, now=clock_now("store", db_url), plan=PLAN,
                      validate=False, environments=config, clock="store", db_url=db_url)
        for day in range(1, 8):
            server.wait_for_traffic(state.split() if state.running else None)
            simulate(server.url, visitors=VISITORS_PER_DAY, days=1, start_date=DAY0 + timedelta(days=day),
                     seed=100 + day, concurrency=4)
            state = step("production", now=clock_now("store", db_url), judge=judge, environments=config)
            days.append(f"day {day}: {state.status} at {state.share:.0%}")
            if not state.running:
                break
    return state, db_url, days


def test_a_candidate_trained_on_shuffled_labels_is_rolled_back_during_its_canary(versions, tmp_path) -> None:
    source, live, _, bad = versions
    state, db_url, days = roll_out(source, live, bad, tmp_path)
    assert state.status == "rolled_back", days
    assert state.stage_index == 0 and "online accuracy" in state.events[-1].reason, state.events[-1]
    with open_engine(db_url, create=False).connect() as connection:
        by_arm = dict(connection.execute(
            select(PredictionRecord.arm, func.count()).group_by(PredictionRecord.arm)).all())
    exposed = by_arm.get("canary", 0) / sum(by_arm.values())
    print(f"bad candidate: {days}; exposed {by_arm.get('canary', 0)} of {sum(by_arm.values())} visits ({exposed:.1%})")
    assert 0 < exposed < 0.10
    assert Registry(tmp_path / "prod").current() == live and Registry(tmp_path / "prod").traffic() is None
    record = DeploymentLog(tmp_path / "prod").records()[-1]
    assert record["action"] == "rollout" and record["status"] == "rolled_back"
    assert record["error"] == state.events[-1].reason


def test_a_good_candidate_passes_every_stage_and_becomes_live(versions, tmp_path) -> None:
    source, live, good, _ = versions
    state, _, days = roll_out(source, live, good, tmp_path)
    print(f"good candidate: {days}")
    assert state.status == "completed", (days, state.last_check)
    assert [e.event for e in state.events] == ["canary", "advanced", "advanced", "advanced", "completed"]
    assert Registry(tmp_path / "prod").current() == good


def test_an_ab_experiment_names_the_worse_candidate_with_always_valid_statistics(versions, tmp_path) -> None:
    from efimero.experiment.live import read_out, read_state
    from efimero.experiment.live import start as start_experiment
    from efimero.experiment.live import stop as stop_experiment

    source, live, _, bad = versions
    config = environments(tmp_path, production_accuracy=0.0)
    assert deploy(source, "production", version=live, validate=False, environments=config).status == "success"
    prod = Registry(tmp_path / "prod")
    prod.adopt(source / bad)
    db_url = f"sqlite:///{tmp_path}/store.db"
    rules = MonitoringRules()
    settings = ServeSettings(models_dir=tmp_path / "prod", db_url=db_url, poll_interval_s=0.05)
    with LiveServer(settings) as server:
        engine = open_engine(db_url, create=False)
        simulate(server.url, visitors=VISITORS_PER_DAY, days=1, start_date=DAY0, seed=200, concurrency=4)
        state = start_experiment(prod, engine, treatment=bad, now=clock_now("store", db_url), db_url=db_url,
                                 allocation=0.3, metric="engagement")
        assert "pre-period sessions" in state.planning and state.planned_n >= 2
        with pytest.raises(DeployError, match=r"splits its traffic already \(experiment"):
            start(source, "production", version=bad, now=clock_now("store", db_url), plan=PLAN, validate=False,
                  environments=config, clock="store", db_url=db_url)
        server.wait_for_traffic(state.split())
        looks = []
        for day in range(1, 4):
            simulate(server.url, visitors=VISITORS_PER_DAY, days=1, start_date=DAY0 + timedelta(days=day),
                     seed=200 + day, concurrency=4)
            readout = read_out(state, engine, now=clock_now("store", db_url), rules=rules)
            looks.append(readout.decision)
            if readout.decision != "inconclusive":
                break
        print(f"experiment looks: {looks}; {readout.sessions}; cuped {readout.cuped}")
        assert readout.decision == "control_better", readout.to_dict()
        assert not readout.sequential["srm"]["mismatch"]
        share = readout.predictions["treatment"] / sum(readout.predictions.values())
        assert share == pytest.approx(0.3, abs=0.05)
        assert {g["guardrail"] for g in readout.guardrails} == {"latency", "error_rate", "bounce"}
        stopped = stop_experiment(prod, engine, now=clock_now("store", db_url), reason="loser", rules=rules)
        assert stopped.status == "stopped" and stopped.final["decision"] == "control_better"
        assert prod.traffic() is None and read_state(prod.root).stop_reason == "loser"
