"""The steps of the weekly DAG, called as its tasks call them (without Airflow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from efimero.pipeline import weekly
from efimero.registry import Registry
from tests.pipeline.conftest import SESSIONS

CONFIG = "config/retraining.yaml"


def test_the_weekly_steps_chain_from_ready_to_rollout(weekly_project, monkeypatch: pytest.MonkeyPatch) -> None:
    project, versions = weekly_project
    monkeypatch.chdir(project)
    ready = weekly.ready(CONFIG)
    assert ready["ready"] and "skip" not in ready
    collected = weekly.collect_new(CONFIG)
    assert collected["rows"] == SESSIONS and collected["strategy"] == "incremental"
    assert collected["live_version"] == versions[-1] and Path(collected["path"]).is_file()
    validated = weekly.validate(collected["path"])
    assert validated["rows"] == SESSIONS
    drifted = weekly.drift(collected["path"], collected["live_version"], CONFIG)
    assert drifted["measured"] and Path(drifted["report"]).is_file()
    assert json.loads(Path(drifted["report"]).read_text())
    retrained = weekly.retrain(collected["path"], collected["strategy"], CONFIG)
    assert retrained["status"] == "success", retrained
    assert retrained["version"] in Registry("models").versions() and retrained["parent_version"] == versions[-1]
    compared = weekly.compare(retrained["parent_version"], retrained["version"], collected["path"], CONFIG)
    # the live version never saw the served classes the sessions confirmed; the candidate learnt them
    assert compared["candidate"] == retrained["version"] and compared["better"], compared
    rolled = weekly.rollout(compared, CONFIG)
    assert rolled["status"] == "rollout started" and rolled["target"] == "production", rolled
    assert rolled["share"] == 0.05 and rolled["stages"] == [0.05, 0.1, 0.25, 0.5, 1.0]


def test_a_candidate_that_is_not_better_is_not_rolled_out() -> None:
    skipped = weekly.rollout({"better": False, "verdict": "no significant difference", "candidate": "v_9"})
    assert skipped == {"skip": "the candidate is not better than the live version: no significant difference"}


def test_not_ready_says_why(weekly_project, monkeypatch: pytest.MonkeyPatch) -> None:
    project, _ = weekly_project
    monkeypatch.chdir(project)
    config = (project / CONFIG)
    config.write_text(config.read_text().replace("min_new_samples: 50", f"min_new_samples: {SESSIONS * 2}"))
    assert weekly.ready(CONFIG)["skip"].startswith(f"only {SESSIONS} new judged sessions")
