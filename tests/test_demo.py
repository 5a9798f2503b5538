"""`efimero demo` runs the closed loop end to end and stops the server it started, however it ends.

The loop runs on 400 visitors a day instead of 800: the canary then needs two simulated days to
gather its 30 sessions per arm, which shows the rollout waiting rather than advancing on too
little data, and keeps the test near a minute on two cores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from efimero import demo
from efimero.cli.main import app

pytestmark = pytest.mark.slow


def gone(pid: int) -> bool:
    """Whether no process of ``pid``'s process group (the server and anything it started) is left."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_the_demo_runs_the_loop_and_reports_what_retraining_won_back(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--workdir", str(tmp_path), "--visitors-per-day", "400", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert gone(summary["server_pid"])

    rollout, retraining = summary["rollout"], summary["retraining"]
    assert rollout is not None, f"no rollout: {retraining}"
    assert rollout["status"] == "completed", (summary["rounds"], rollout["last_check"])
    assert [e["event"] for e in rollout["events"]][0] == "canary"
    assert [e["event"] for e in rollout["events"]][-1] == "completed"
    assert all(e["reason"] for e in rollout["events"])

    before, drifted, after = summary["periods"]
    assert [before["name"], drifted["name"], after["name"]] == ["before drift", "after drift", "after rollout"]
    assert before["version"] == drifted["version"] == summary["first_version"]
    assert after["version"] == summary["candidate"] == rollout["version"]
    assert drifted["engagement"]["mean_session_s"] < before["engagement"]["mean_session_s"]
    assert after["engagement"]["mean_session_s"] > drifted["engagement"]["mean_session_s"] * 1.15
    assert after["engagement"]["online_accuracy"] > drifted["engagement"]["online_accuracy"] + 0.1
    assert set(summary["drift"]["drifted_features"]) >= {"hour_of_day"}
    assert "performance" in [t["name"] for t in summary["triggers"] if t["status"] == "fired"]

    for path in summary["reports"].values():
        assert path.startswith("sqlite:") or (tmp_path / path).is_file(), path
    assert json.loads((tmp_path / "reports" / "demo.json").read_text())["rollout"]["status"] == "completed"


def test_an_interrupted_demo_stops_its_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []

    def interrupted(result: demo.DemoResult, options: demo.DemoOptions, reporter: demo.Reporter) -> None:
        started.append(result.server_pid or 0)
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "_loop", interrupted)
    with pytest.raises(KeyboardInterrupt):
        demo.run_demo(tmp_path, demo.DemoOptions(training_rows=600))
    assert started and started[0] > 0
    assert gone(started[0])
