"""The one readiness check: enough new judged sessions and data quality passed (auto-retrain, cron, DAG)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from efimero.collect import CollectResult, QualityReport
from efimero.config import load_retraining_config
from efimero.pipeline import auto_retrain, readiness
from efimero.pipeline.auto import decide
from efimero.pipeline.ready import readiness_of
from efimero.retrain.triggers import Trigger
from tests.pipeline.conftest import SESSIONS


def _config(project: Path, **overrides: object):
    return load_retraining_config(project / "config" / "retraining.yaml", overrides={"retraining": overrides})


@pytest.fixture
def in_project(weekly_project, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    monkeypatch.chdir(weekly_project[0])
    return weekly_project


def test_ready_with_enough_judged_sessions_and_good_quality(in_project) -> None:
    project, versions = in_project
    checked = readiness(_config(project))
    assert checked.ready and checked.reasons == [], checked
    assert checked.judged_sessions == SESSIONS and checked.min_sessions == 50 and checked.window_days == 7
    assert checked.quality != "abort" and checked.live_version == versions[-1]
    assert checked.to_dict()["enough_data"] and checked.to_dict()["quality_passed"]
    assert not (project / "data").exists(), "the check writes nothing"


def test_not_ready_with_too_few_judged_sessions(in_project) -> None:
    project, _ = in_project
    checked = readiness(_config(project, triggers={"data_volume": {"min_new_samples": SESSIONS + 1}}))
    assert not checked.ready and checked.quality_passed and not checked.enough_data
    assert checked.reasons == [f"only {SESSIONS} new judged sessions in the last 7 days "
                               f"(data_volume.min_new_samples: {SESSIONS + 1})"]


def test_not_ready_when_data_quality_says_abort() -> None:
    settings = load_retraining_config(overrides={"retraining": {"triggers": {"data_volume": {"min_new_samples": 1}}}})
    now = datetime.now(UTC)
    frame = pd.DataFrame({"a": range(3)})
    no_valid = readiness_of(settings.retraining, CollectResult(now, now, frame, QualityReport(total=3, valid=0)))
    assert not no_valid.ready and no_valid.enough_data and not no_valid.quality_passed
    assert no_valid.reasons == ["data quality says abort: no valid session"]
    drifted = readiness_of(settings.retraining, CollectResult(now, now, frame, QualityReport(
        total=3, valid=3, drift_share=0.8, drifted_features=["x"])))
    assert drifted.quality == "abort" and drifted.reasons[0].startswith("data quality says abort: drift share 0.80")
    both = readiness_of(settings.retraining, CollectResult(now, now, frame.iloc[:0], QualityReport()))
    assert len(both.reasons) == 2 and not both.ready


def test_scheduled_runs_need_the_same_check() -> None:
    settings = load_retraining_config().retraining
    now = datetime.now(UTC)
    three = pd.DataFrame({"a": range(3)})
    few = readiness_of(settings, CollectResult(now, now, three, QualityReport(total=3, valid=3)))
    fired = [Trigger("performance", True, "fired", 0.5, 0.75, "")]
    decision = decide("scheduled", settings, fired, age_days=8.0, readiness=few)
    assert not decision.retrain and decision.reason.startswith("not ready: only 3 new judged sessions")
    assert decide("force", settings, fired, age_days=8.0, readiness=few).retrain
    assert decide("scheduled", settings, fired, age_days=8.0).retrain


def test_auto_retrain_records_the_check(in_project) -> None:
    project, _ = in_project
    config = _config(project, triggers={"data_volume": {"min_new_samples": SESSIONS + 1},
                                        "time_based": {"enabled": False}})
    run = auto_retrain(config, mode="check")
    assert run.readiness == readiness(config).to_dict()
    assert not run.readiness["ready"]
    if run.fired:  # a fired trigger alone no longer retrains on too few sessions
        assert run.decision.startswith("would not retrain (") and "not ready: only" in run.decision
    assert os.listdir(project / "models")  # untouched registry still there
