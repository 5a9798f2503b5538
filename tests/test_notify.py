# ruff: noqa: F811 - the fixtures imported from other test packages below are the tests' parameters
"""E-mail notifications against a real local SMTP server (aiosmtpd) started by each test.

`efimero auto-retrain` mails the end of a run (success, failure), the monitor mails its new alerts beside
the webhook; a server that is down fails nothing and is reported; the password is never shown.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from typer.testing import CliRunner

from efimero.cli.main import app
from efimero.config import NotificationSettings, load_retraining_config
from efimero.errors import ConfigError, ConfigKeyIgnoredWarning, EfimeroError
from efimero.monitor import record_and_notify
from efimero.notify import Notifier
from efimero.pipeline import auto_retrain, read_runs
from efimero.pipeline.auto import RetrainingRun, notify_run
from efimero.registry import Registry
from efimero.store import recent_alerts
from tests._postgres import free_port
from tests.collect.conftest import ENGAGED, contexts, crafted_store  # noqa: F401 - fixture
from tests.monitor.conftest import Receiver, Traffic, receiver, sqlite_traffic  # noqa: F401 - fixtures
from tests.monitor.test_alerts import anomalies
from tests.monitor.test_cli import served  # noqa: F401 - fixture

PASSWORD = "s3cret-Pa55word"
PASSWORD_ENV = "EFIMERO_RETRAINING__NOTIFICATIONS__SMTP__PASSWORD"


@dataclass
class Inbox:
    """What a local SMTP server received: each message parsed, and each login."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    accept_login: bool = True

    def notifications(self, **changes: Any) -> dict[str, Any]:
        """``retraining.notifications`` sending through this server, as user ``efimero``."""
        smtp = {"host": "127.0.0.1", "port": self.port, "username": "efimero", "timeout_s": 5}
        return {"smtp": smtp | changes.pop("smtp", {}), "to": ["mlops@example.com", "oncall@example.com"]} | changes


class _Handler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.inbox.messages.append(parsed)
        self.inbox.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """An aiosmtpd server on a free local port that takes logins (plain, no TLS) and keeps every message."""
    box = Inbox(free_port())

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        box.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=box.accept_login, handled=False)  # handled=False: the server answers 535

    controller = Controller(_Handler(box), hostname="127.0.0.1", port=box.port, authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    yield box
    controller.stop()


def attachment(message: EmailMessage) -> tuple[str | None, Any]:
    (part,) = list(message.iter_attachments())
    return part.get_filename(), json.loads(part.get_content())


def retraining_config(registry: Path, url: str, tmp_path: Path, notifications: dict[str, Any], *,
                      fail: bool = False) -> Any:
    """A config that retrains the tiny registry incrementally on the store's sessions, whatever it scores; with
    ``fail``, fully on 20 rows, which is too few (an error)."""
    return load_retraining_config(overrides={"retraining": {
        "models_dir": str(registry),
        "data_collection": {"db_url": url, "min_session_duration": 0, "output_dir": str(tmp_path / "collected"),
                            "max_samples_per_collection": 20 if fail else 10_000},
        "strategies": {
            "incremental": {"parameters": {"min_samples": 50, "min_improvement_threshold": -1.0,
                                           "forgetting_tolerance": 1.0}},
            "full": {"on_performance_trigger": False, "on_drift_trigger": False,
                     "min_days_since_last": 0 if fail else 21, "parameters": {"cv_folds": 0}}},
        "notifications": notifications}})


# -- auto-retrain -------------------------------------------------------------------------


def test_a_successful_run_mails_its_facts_and_record_logging_in_with_the_password_of_the_environment(
        registry_copy, crafted_store, tmp_path, inbox: Inbox, monkeypatch, caplog) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    root, versions = registry_copy()
    url = crafted_store((context, ENGAGED) for context in contexts(120, seed=4))
    config = retraining_config(root, url, tmp_path, inbox.notifications())
    caplog.set_level(logging.DEBUG)
    run = auto_retrain(config, mode="force")
    assert run.outcome == "success", (run.error, run.stages)
    assert run.new_version == Registry(root).current() != versions[-1]

    (message,) = inbox.messages
    assert inbox.logins == [("efimero", PASSWORD)]
    assert inbox.recipients == [["mlops@example.com", "oncall@example.com"]]
    assert message["To"] == "mlops@example.com, oncall@example.com" and message["From"] == "efimero@localhost"
    assert message["Subject"] == (f"[efimero] auto-retrain succeeded: {run.new_version} (incremental) "
                                  f"after {versions[-1]}")
    body = message.get_body(("plain",)).get_content()
    assert "efimero auto-retrain --mode force: SUCCESS" in body
    for fact in (f"run:          {run.id}", "outcome:      success", f"live version: {versions[-1]}",
                 f"new version:  {run.new_version}", "strategy:     incremental", "decision:     retrain (incremental)",
                 "retrain:"):
        assert fact in body, fact
    name, record = attachment(message)
    assert name == "retraining_run.json"
    assert (record["id"], record["outcome"], record["new_version"]) == (run.id, "success", run.new_version)

    assert run.notification is not None and run.notification["status"] == "sent"
    assert run.notification["to"] == ["mlops@example.com", "oncall@example.com"]
    assert read_runs(root)[-1]["notification"] == run.notification
    shown = [caplog.text, json.dumps(read_runs(root)), repr(config), str(config.model_dump()),
             json.dumps(config.model_dump(mode="json")), body]
    assert not [text for text in shown if PASSWORD in text]
    assert config.retraining.notifications.smtp.password.get_secret_value() == PASSWORD


def test_a_failed_run_mails_the_error(registry_copy, crafted_store, tmp_path, inbox: Inbox) -> None:
    root, versions = registry_copy()
    url = crafted_store((context, ENGAGED) for context in contexts(120, seed=4))
    config = retraining_config(root, url, tmp_path, inbox.notifications(smtp={"username": None}), fail=True)
    run = auto_retrain(config, mode="force")
    assert run.outcome == "failed" and run.error, run
    assert Registry(root).current() == versions[-1]

    (message,) = inbox.messages
    assert inbox.logins == []  # no username: sent without logging in
    assert message["Subject"].startswith("[efimero] auto-retrain failed: ")
    assert run.error.splitlines()[0][:60] in message["Subject"]
    body = message.get_body(("plain",)).get_content()
    assert "efimero auto-retrain --mode force: FAILED" in body and f"error:        {run.error}" in body
    assert "new version:  —" in body and f"live version: {versions[-1]}" in body
    assert attachment(message)[1]["error"] == run.error
    assert read_runs(root)[-1]["notification"]["status"] == "sent"


def test_a_mail_server_that_is_down_fails_nothing_and_is_recorded(registry_copy, crafted_store,
                                                                   tmp_path, caplog) -> None:
    root, _ = registry_copy()
    url = crafted_store((context, ENGAGED) for context in contexts(120, seed=4))
    down = {"smtp": {"host": "127.0.0.1", "port": free_port(), "timeout_s": 2}, "to": ["mlops@example.com"]}
    run = auto_retrain(retraining_config(root, url, tmp_path, down), mode="force")
    assert run.outcome == "success", (run.error, run.stages)
    assert run.notification is not None and run.notification["status"] == "failed"
    assert run.notification["detail"].startswith("ConnectionRefusedError")
    assert read_runs(root)[-1]["notification"] == run.notification
    assert "success e-mail to mlops@example.com through 127.0.0.1" in caplog.text


def test_a_run_that_cannot_load_the_live_version_mails_the_error(tmp_path: Path, inbox: Inbox) -> None:
    config = load_retraining_config(overrides={"retraining": {
        "models_dir": str(tmp_path / "empty"), "notifications": inbox.notifications(smtp={"username": None})}})
    with pytest.raises(EfimeroError) as raised:
        auto_retrain(config, mode="scheduled")
    (message,) = inbox.messages
    assert message["Subject"].startswith("[efimero] auto-retrain failed: the live version of ")
    assert str(raised.value) in message.get_body(("plain",)).get_content()


@pytest.mark.parametrize(("outcome", "sent"), [("success", False), ("failed", True), ("skipped", False)])
def test_on_failure_only_mails_failures(inbox: Inbox, outcome: str, sent: bool) -> None:
    settings = NotificationSettings.model_validate(inbox.notifications(on=["failure"]))
    run = RetrainingRun(mode="scheduled", dry_run=False, live_version="v_1", outcome=outcome,
                        error="boom" if outcome == "failed" else None)
    notification = notify_run(Notifier(settings), run)
    assert len(inbox.messages) == int(sent)
    if outcome == "skipped":  # checked and skipped runs mail nothing, whatever `on` says
        assert notification is None
    else:
        assert notification is not None and notification.status == ("sent" if sent else "skipped")


def test_e_mail_is_off_by_default_and_a_run_records_no_notification() -> None:
    settings = load_retraining_config().retraining.notifications
    assert not settings.enabled and settings.to == () and settings.smtp.host == ""
    assert Notifier(settings).send("failure", "x", "y").status == "skipped"
    assert notify_run(Notifier(settings), RetrainingRun(mode="force", dry_run=False, outcome="failed")) is None


# -- the monitor's alerts ---------------------------------------------------------------


def test_new_alerts_are_mailed_in_one_message_beside_the_webhook(sqlite_traffic: Traffic, receiver: Receiver,
                                                                  inbox: Inbox) -> None:
    notifier = Notifier(NotificationSettings.model_validate(inbox.notifications(smtp={"username": None})))
    alerts = record_and_notify(sqlite_traffic.engine, anomalies(), receiver.url, notifier=notifier)
    assert all(a.delivered_at and a.emailed_at and a.email_error is None for a in alerts)
    assert len(receiver.bodies) == 2

    (message,) = inbox.messages
    assert message["Subject"] == "[efimero] 2 alerts: high accuracy_drop on v_2 (canary), action rollback, and 1 more"
    body = message.get_body(("plain",)).get_content()
    assert "efimero monitor: 2 new alerts in the window 2026-11-26 11:55 to 12:00 UTC" in body
    assert f"#{alerts[0].id}  high accuracy_drop on v_2 (canary) → rollback" in body
    assert "value 0.6, baseline 0.8, threshold 0.05" in body and "latency_increase" in body
    name, payloads = attachment(message)
    assert name == "alerts.json" and payloads == receiver.bodies
    stored = recent_alerts(sqlite_traffic.engine)
    assert all(row["delivered_at"] is not None and row["delivery_error"] is None for row in stored)

    again = record_and_notify(sqlite_traffic.engine, anomalies(), receiver.url, notifier=notifier)
    assert [a.new for a in again] == [False, False] and len(inbox.messages) == 1  # the same window: not again


def test_a_mail_server_that_is_down_keeps_the_alert_with_its_error(sqlite_traffic: Traffic,
                                                                   receiver: Receiver) -> None:
    down = {"smtp": {"host": "127.0.0.1", "port": free_port(), "timeout_s": 2}, "to": ["mlops@example.com"]}
    notifier = Notifier(NotificationSettings.model_validate(down))
    alerts = record_and_notify(sqlite_traffic.engine, anomalies(), receiver.url, notifier=notifier)
    assert all(a.id is not None and a.delivered_at and a.delivery_error is None for a in alerts)
    assert all(a.emailed_at is None and a.email_error.startswith("ConnectionRefusedError") for a in alerts)
    for row in recent_alerts(sqlite_traffic.engine):  # the webhook took it; the e-mail's failure is noted
        assert row["delivered_at"] is not None and row["delivery_error"].startswith("e-mail: ConnectionRefusedError")

    (alert, _) = record_and_notify(sqlite_traffic.engine, anomalies(), None, notifier=notifier)
    assert not alert.new and alert.email_error is None  # already alerted: neither sent nor mailed again


def test_without_a_webhook_the_mail_is_the_delivery_and_its_failure_the_error(sqlite_traffic: Traffic,
                                                                                inbox: Inbox) -> None:
    inbox.accept_login = False
    settings = NotificationSettings.model_validate(inbox.notifications(smtp={"password": PASSWORD}))
    (alert, _) = record_and_notify(sqlite_traffic.engine, anomalies(), None, notifier=Notifier(settings))
    assert alert.email_error is not None and alert.email_error.startswith("SMTPAuthenticationError: 535")
    assert PASSWORD not in alert.email_error and inbox.messages == []
    row = recent_alerts(sqlite_traffic.engine)[-1]
    assert row["delivered_at"] is None and row["delivery_error"] == f"e-mail: {alert.email_error}"


def test_efimero_monitor_mails_the_alert_of_its_round(served, tmp_path: Path, inbox: Inbox) -> None:
    url, root = served
    config = tmp_path / "retraining.yaml"
    config.write_text(yaml.safe_dump({"retraining": {"notifications": inbox.notifications(
        smtp={"username": None}, on=["alert"], subject_prefix="[css prod]")}}))
    result = CliRunner().invoke(app, ["monitor", "--db", url, "--models", str(root), "--config", str(config),
                                      "--json"])
    assert result.exit_code == 0, result.output
    (alert,) = json.loads(result.stdout)["alerts"]
    assert alert["emailed_at"] and alert["email_error"] is None and alert["delivered_at"] is None
    (message,) = inbox.messages
    assert message["Subject"].startswith("[css prod] alert: high accuracy_drop on ")
    assert message["Subject"].endswith("(canary), action rollback")
    assert attachment(message)[1][0]["id"] == alert["id"]


# -- settings ---------------------------------------------------------------------------


def test_the_password_is_never_shown_even_in_a_config_error(monkeypatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    monkeypatch.setenv("EFIMERO_RETRAINING__NOTIFICATIONS__SMTP__SSL", "true")
    monkeypatch.setenv("EFIMERO_RETRAINING__NOTIFICATIONS__SMTP__STARTTLS", "true")
    with pytest.raises(ConfigError, match="starttls must be false when ssl is true") as raised:
        load_retraining_config()
    assert PASSWORD not in str(raised.value)
    monkeypatch.delenv("EFIMERO_RETRAINING__NOTIFICATIONS__SMTP__STARTTLS")
    smtp = load_retraining_config().retraining.notifications.smtp
    assert smtp.effective_port == 465 and PASSWORD not in repr(smtp) and "**********" in repr(smtp)


def test_a_bare_yaml_on_key_is_named_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "retraining.yaml"
    path.write_text("retraining:\n  notifications:\n    on: [failure]\n")  # YAML 1.1: the key is true
    with pytest.warns(ConfigKeyIgnoredWarning, match=r'quote the key, "on"'):
        load_retraining_config(path)
    path.write_text('retraining:\n  notifications:\n    "on": [failure]\n    to: [not-an-address]\n')
    with pytest.raises(ConfigError, match=r"retraining\.notifications\.to\.0"):
        load_retraining_config(path)


def test_the_services_monitoring_loop_mails_the_alerts_of_its_round(served, inbox: Inbox) -> None:
    from efimero.config import MonitoringRules
    from efimero.registry import Registry
    from efimero.serve.monitoring import MonitorLoop
    from efimero.store import latest_event_time, open_engine

    url, root = served
    notifier = Notifier(NotificationSettings.model_validate(inbox.notifications(smtp={"username": None},
                                                                                on=["alert"])))
    engine = open_engine(url, create=False)
    loop = MonitorLoop(engine, MonitoringRules(), Registry(root), interval_s=60, clock="store", notifier=notifier)
    newest = latest_event_time(engine)
    assert newest is not None
    loop._now = lambda: newest.replace(tzinfo=UTC) + timedelta(microseconds=1)  # type: ignore[method-assign]
    assert loop.run_once() is not None
    engine.dispose()
    (message,) = inbox.messages
    assert message["Subject"].startswith("[efimero] alert: high accuracy_drop on ")
    assert loop.alerts and loop.alerts[0]["emailed_at"]
