"""`efimero monitor`: one window's metrics per version and arm, the anomaly rules, alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from efimero.cli._common import JSON_HELP, console, emit_json, reports_errors
from efimero.errors import EfimeroError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from efimero.monitor import Alert, Measure, MonitorReport

_SEVERITY_STYLE = {"high": "bold red", "medium": "red", "low": "yellow"}


def window_end(engine: Engine, at: str | None) -> tuple[datetime, str]:
    """The window's end and where it came from: ``--at``, else just after the newest visit in the store
    (simulated traffic runs on its own clock, as for `efimero collect`), else now for an empty store.

    Raises:
        EfimeroError: ``at`` is not an ISO 8601 time.
    """
    from efimero.store import end_after_newest_visit

    if at is not None:
        try:
            end = datetime.fromisoformat(at)
        except ValueError:
            message = f"--at must be an ISO 8601 time such as 2026-11-26T12:00:00Z. Got {at!r} instead."
            raise EfimeroError(message) from None
        return (end if end.tzinfo else end.replace(tzinfo=UTC)), "--at"
    after_newest = end_after_newest_visit(engine)
    if after_newest is None:
        return datetime.now(UTC), "now (the store holds no visit)"
    return after_newest, "the newest visit in the store"


@reports_errors
def monitor(
    db: str = typer.Option(None, "--db", "--db-url",
                           help="Interaction store URL. \\[default: data_collection.db_url of the config]"),
    models: Path = typer.Option(None, help="Registry of the served versions, whose training data prediction drift "
                                "is measured against. \\[default: models_dir of the config]"),
    window: float = typer.Option(None, min=0.01, help="Window length in minutes. "
                                 "\\[default: monitoring.window_minutes of the config, 5]"),
    at: str = typer.Option(None, help="End of the window, ISO 8601 (UTC unless an offset is given). "
                           "\\[default: just after the newest visit in the store]"),
    config: Path = typer.Option(None, help="Retraining YAML with the rules under retraining.monitoring. "
                                "\\[default: retraining.yaml in $EFIMERO_CONFIG_DIR, else config/, when present]"),
    webhook: str = typer.Option(None, help="POST each new alert here as JSON. \\[default: monitoring.webhook_url]"),
    record: bool = typer.Option(True, "--record/--no-record",
                                help="Store each anomaly as an alert and send it to the webhook and by e-mail "
                                "(notifications); --no-record only reports."),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Check one window per version and arm: online accuracy, engagement, latency, errors, prediction drift.

    Each anomaly names its action (rollback, traffic_halved, alert). A candidate arm is compared
    with the live arm of the same window, the live arm with its previous window; a rule with too
    few sessions or predictions is inconclusive, never passed. Exits 0 whether or not anomalies
    are found (they are information; alerts carry them) and 1 when the check cannot run.
    """
    from efimero.config import load_retraining_config
    from efimero.monitor import check, record_and_notify
    from efimero.notify import Notifier
    from efimero.registry import Registry
    from efimero.store import open_engine

    monitoring: dict[str, Any] = {}
    if window is not None:
        monitoring["window_minutes"] = window
    if webhook is not None:
        monitoring["webhook_url"] = webhook
    overrides: dict[str, Any] = {"monitoring": monitoring}
    if db is not None:
        overrides["data_collection"] = {"db_url": db}
    if models is not None:
        overrides["models_dir"] = models
    settings = load_retraining_config(config, overrides={"retraining": overrides}).retraining
    rules = settings.monitoring
    engine = open_engine(settings.data_collection.db_url, create=False)
    try:
        end, source = window_end(engine, at)
        report = check(engine, rules, now=end, registry=Registry(settings.models_dir))
        alerts = (record_and_notify(engine, report.anomalies, rules.webhook_url, timeout_s=rules.webhook_timeout_s,
                                    notifier=Notifier(settings.notifications))
                  if record else [])
    finally:
        engine.dispose()
    if json_output:
        emit_json({**report.to_dict(), "window_end_from": source, "recorded": record,
                   "alerts": [alert.to_dict() for alert in alerts]})
        return
    _show(report, source, alerts, recorded=record)


def _cell(measure: Measure, template: str = "{:.3f}") -> str:
    return "—" if measure.value is None else template.format(measure.value)


def _show(report: MonitorReport, source: str, alerts: list[Alert], *, recorded: bool) -> None:
    table = Table(title=f"Window {report.start:%Y-%m-%d %H:%M:%S} to {report.end:%H:%M:%S} UTC (end: {source})",
                  title_justify="left")
    table.add_column("version", no_wrap=True)
    for header in ("arm", "predictions", "errors", "sessions", "accuracy", "duration s", "bounce", "scroll", "rating",
                   "latency ms p50/p95/p99", "error rate", "drift PSI"):
        table.add_column(header, justify="left" if header == "arm" else "right")
    for w in report.versions:
        table.add_row(
            w.model_version, escape(w.arm), str(w.predictions), str(w.errors), str(w.sessions), _cell(w.accuracy),
            _cell(w.session_duration_s, "{:.1f}"), _cell(w.bounce_rate), _cell(w.scroll_depth),
            _cell(w.rating, "{:.2f}"), "/".join(_cell(w.latency_ms[p], "{:.1f}") for p in ("p50", "p95", "p99")),
            _cell(w.error_rate, "{:.2%}"), _cell(w.prediction_drift))
    console.print(table if report.versions else "no prediction, error or session in this window")
    for result in report.anomalies:
        console.print(f"[{_SEVERITY_STYLE[result.severity]}]{result.severity.upper()}[/] {result.rule} "
                      f"{result.model_version} ({escape(result.arm)}) → {result.action}: {escape(result.message)}",
                      highlight=False)
    for result in report.inconclusive:
        console.print(f"[yellow]inconclusive[/] {result.rule} {result.model_version} ({escape(result.arm)}): "
                      f"{escape(result.message)}", highlight=False)
    if not report.anomalies:
        console.print(f"[green]no anomaly[/] ({len(report.inconclusive)} rule(s) inconclusive)")
    elif not recorded:
        console.print("[dim]--no-record: no alert stored or sent[/]")
    for alert in alerts:
        console.print(f"  {_alert_line(alert)}", highlight=False)


def _alert_line(alert: Alert) -> str:
    what = f"alert {alert.anomaly.rule} of {alert.anomaly.model_version} ({escape(alert.anomaly.arm)})"
    if alert.store_error:
        return f"[red]{what} not stored:[/] {escape(alert.store_error)}"
    if not alert.new:
        return f"{what}: already alerted as #{alert.id}"
    line = f"{what} stored as #{alert.id}"
    if alert.delivery_error:
        line += f"; [red]webhook failed:[/] {escape(alert.delivery_error)}"
    elif alert.delivered_at:
        line += "; delivered to the webhook"
    if alert.email_error:
        return line + f"; [red]e-mail failed:[/] {escape(alert.email_error)}"
    return line + ("; e-mailed" if alert.emailed_at else "")
