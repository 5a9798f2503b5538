"""`efimero monitor` through Typer's CliRunner: JSON for machines, a table for people, alerts to a webhook."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from efimero.cli.main import app
from efimero.monitor.online import training_predictions
from tests.monitor.conftest import IN_WINDOW, Receiver, Traffic, sessions_with_accuracy

runner = CliRunner()


@pytest.fixture
def served(sqlite_traffic: Traffic, tiny_registry: tuple[Path, list[str]]) -> tuple[str, Path]:
    """The registry's first version live (accuracy 0.8, served as on its training data), its second as a canary
    whose accuracy fell to 0.6; returns the store's URL and the registry."""
    root, versions = tiny_registry
    expected = [{t.removeprefix("css_class_"): label for t, label in row.items()}
                for row in training_predictions(root, versions[0]).to_dict("records")]
    sqlite_traffic.serve(versions[0], "live", count=len(expected), classes=expected,
                         sessions=sessions_with_accuracy(40, 50))
    sqlite_traffic.serve(versions[1], "canary", count=len(expected), classes=expected,
                         sessions=sessions_with_accuracy(30, 50))
    return sqlite_traffic.engine.url.render_as_string(), root


def config(tmp_path: Path, **monitoring: object) -> Path:
    path = tmp_path / "retraining.yaml"
    path.write_text(yaml.safe_dump({"retraining": {"monitoring": monitoring}}))
    return path


def monitor(*args: object):
    return runner.invoke(app, ["monitor", *map(str, args)])


def test_json_names_each_anomaly_its_action_and_the_delivered_alert(
    served: tuple[str, Path], tmp_path: Path, receiver: Receiver
) -> None:
    url, root = served
    result = monitor("--db-url", url, "--models", root, "--config", config(tmp_path), "--webhook", receiver.url,
                     "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["window_end_from"] == "the newest visit in the store"
    assert report["window"]["end"] == (IN_WINDOW + timedelta(microseconds=1)).isoformat()
    anomalies = [(a["rule"], a["arm"], a["action"]) for a in report["anomalies"]]
    assert anomalies == [("accuracy_drop", "canary", "rollback")]
    by_arm = {v["arm"]: v for v in report["versions"]}
    assert by_arm["canary"]["accuracy"]["value"] == 0.6 and by_arm["live"]["accuracy"]["value"] == 0.8
    assert by_arm["canary"]["prediction_drift"]["value"] == pytest.approx(0, abs=1e-9)
    (alert,) = report["alerts"]
    assert alert["new"] and alert["delivered_at"] and alert["delivery_error"] is None
    assert [body["id"] for body in receiver.bodies] == [alert["id"]]


def test_no_record_reports_without_storing_or_sending(served: tuple[str, Path], tmp_path: Path,
                                                      receiver: Receiver) -> None:
    url, root = served
    result = monitor("--db", url, "--models", root, "--config", config(tmp_path, webhook_url=receiver.url),
                     "--no-record", "--json")
    report = json.loads(result.stdout)
    assert report["recorded"] is False and report["alerts"] == [] and len(report["anomalies"]) == 1
    assert receiver.bodies == []


def test_the_config_sets_the_rules_and_too_few_sessions_are_inconclusive(served: tuple[str, Path],
                                                                         tmp_path: Path) -> None:
    url, root = served
    result = monitor("--db", url, "--models", root, "--config", config(tmp_path, min_sessions=60), "--window", 10,
                     "--json")
    report = json.loads(result.stdout)
    assert report["anomalies"] == [] and report["window"]["minutes"] == 10
    reasons = {(r["rule"], r["arm"]): r["message"] for r in report["inconclusive"]}
    assert reasons[("accuracy_drop", "canary")] == "not measured: 50 judged sessions, fewer than the 60 needed"


def test_the_table_for_people_and_a_window_without_traffic(served: tuple[str, Path], tmp_path: Path) -> None:
    url, root = served
    result = monitor("--db", url, "--models", root, "--config", config(tmp_path), "--no-record")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "HIGH accuracy_drop" in text and "→ rollback" in text and "no alert stored or sent" in text
    empty = monitor("--db", url, "--models", root, "--config", config(tmp_path), "--at", "2030-01-01T00:00:00Z")
    assert empty.exit_code == 0 and "no prediction, error or session in this window" in empty.output


def test_a_wrong_time_or_store_is_a_clear_error(served: tuple[str, Path], tmp_path: Path) -> None:
    url, root = served
    result = monitor("--db", url, "--models", root, "--config", config(tmp_path), "--at", "yesterday")
    assert result.exit_code == 1 and "--at must be an ISO 8601 time" in " ".join(result.output.split())
    missing = monitor("--db", f"sqlite:///{tmp_path}/typo.db", "--config", config(tmp_path), "--json")
    assert missing.exit_code == 1 and json.loads(missing.stdout)["error"] == "StoreError"
