"""The closed loop end to end, on the embedded defaults: what `efimero demo` and `make demo` run.

Every stage has its own command, but what the project claims only shows when they run in order
against a real service: a drift costs engagement, the monitor and the triggers notice it,
retraining wins the visitors back, and the retrained version reaches them only through a canary
that could have stopped it. :func:`run_demo` runs that story in a few minutes:

1. generate seeded data, train the first version, deploy it to ``production`` (``models/prod``);
2. start ``efimero serve`` as a real subprocess in its own process group, on the store clock;
3. simulate two weeks of visitors through it, the world drifting on day 7;
4. write the drift report of the last week against the training data, evaluate the triggers;
5. ``auto-retrain --mode force`` with a safe rollout on the store clock: the candidate starts
   its canary;
6. one simulated (drifted) day of visitors per controller round until the rollout completes or
   rolls back, then a few days served by whatever is live;
7. stop the server, whatever happened (an error, Ctrl-C, SIGTERM).

Paths are the defaults every command uses, relative to the workdir (``data/efimero.db``,
``models/``, ``models/prod``, ``reports/``), so `efimero serve --models models/prod` afterwards
shows what the demo made. The workdir's ``config/`` is read when present and never written: the
demo's own settings (no cross-validation, a rollout on the store clock) are overrides through
the loaders. Simulated days start after the newest visit already in the store, on the weekday
the first run started, so a second run repeats the first weeks later instead of mixing its
visits into the first run's days.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from efimero._io import atomic_write_json
from efimero.errors import EfimeroError

if TYPE_CHECKING:
    from efimero.config import MonitoringRules, RetrainingConfig
    from efimero.deploy.rollout_state import RolloutState
    from efimero.simulate import SimulationResult
    from efimero.simulate.run import Aggregate, ProgressCallback

logger = logging.getLogger(__name__)

DB_URL = "sqlite:///data/efimero.db"
MODELS = Path("models")
TARGET = "production"
TRAINING_DATA = Path("data/synthetic_training_data.csv")
REPORTS = Path("reports")
FIRST_DAY = date(2026, 11, 1)
"""Day 0 of the simulated calendar when the store holds no visit yet."""
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class DemoOptions:
    """The demo's numbers; the defaults make every rollout stage conclusive (30 sessions per arm)."""

    visitors_per_day: int = 800
    seed: int = 1
    port: int | None = None
    """TCP port of the server; None picks a free one."""
    training_rows: int = 3000
    days: int = 14
    drift_day: int = 7
    rollout_days: int = 7
    """At most this many simulated days of rollout rounds; a rollout still running then is aborted."""
    after_days: int = 2
    """Days simulated after the rollout ended, for the engagement of whatever is live."""
    stage_hours: float = 1.0
    """How long each rollout stage below 100 % holds, in simulated hours."""
    concurrency: int = 8


class Reporter(Protocol):
    """Where the demo tells a person what it is doing (the CLI prints; the library never does)."""

    def step(self, message: str) -> None:
        """One line of narration: a stage began or ended."""

    def progress(self, total: int) -> AbstractContextManager[ProgressCallback]:
        """A progress bar of ``total`` visits, fed as :func:`efimero.simulate.simulate` feeds it."""


class _Quiet:
    """A reporter that only logs: for the Python API and tests."""

    def step(self, message: str) -> None:
        logger.info(message)

    def progress(self, total: int) -> AbstractContextManager[ProgressCallback]:
        return contextlib.nullcontext(lambda description, steps: None)


@dataclass(frozen=True)
class Period:
    """Simulated days of one world and one live version, and how engaged their visitors were."""

    name: str
    version: str
    days: str
    engagement: Aggregate


@dataclass
class DemoResult:
    """What the demo did and found, as the CLI renders it and ``reports/demo.json`` keeps it."""

    workdir: str
    first_version: str
    candidate: str | None = None
    server_pid: int | None = None
    url: str = ""
    simulated_days: list[str] = field(default_factory=list)
    periods: list[Period] = field(default_factory=list)
    drift: dict[str, Any] = field(default_factory=dict)
    triggers: list[dict[str, Any]] = field(default_factory=list)
    retraining: dict[str, Any] = field(default_factory=dict)
    rollout: RolloutState | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)
    alerts: dict[str, int] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (the rollout as ``rollout.json`` holds it)."""
        return asdict(self) | {"rollout": self.rollout.model_dump(mode="json") if self.rollout else None}


def run_demo(workdir: str | Path = ".", options: DemoOptions | None = None, *,
             reporter: Reporter | None = None) -> DemoResult:
    """Run the whole loop in ``workdir`` (see the module docstring) and return what it found.

    The server is stopped before this returns or raises, and a rollout an interruption left
    running is aborted, so the next run can deploy again.

    Raises:
        EfimeroError: a stage failed (the server did not start, a deployment was refused, ...).

    Example:
        >>> result = run_demo("demo/", DemoOptions(visitors_per_day=400))  # doctest: +SKIP
        >>> result.rollout.status                                           # doctest: +SKIP
        'completed'
    """
    options, reporter = options or DemoOptions(), reporter or _Quiet()
    started = time.perf_counter()
    with contextlib.chdir(workdir):
        first = bootstrap(options, reporter)
        result = DemoResult(workdir=str(Path.cwd()), first_version=first)
        try:
            with serving(options.port, reporter) as server:
                result.server_pid, result.url = server.pid, server.url
                _loop(result, options, reporter)
        finally:
            _abort_leftover_rollout(reporter)
        result.elapsed_s = round(time.perf_counter() - started, 1)
        atomic_write_json(REPORTS / "demo.json", result.to_dict())
    return result


def bootstrap(options: DemoOptions, reporter: Reporter) -> str:
    """Generate the seeded training data, train the first version and make it production's; its name.

    Cross-validation is skipped (it measures, it does not change the model) to keep the demo short.

    Raises:
        EfimeroError: the deployment to production failed (its message names the step).
    """
    from efimero._api import generate, train
    from efimero.config import load_environments_config, load_training_config
    from efimero.deploy import deploy

    generate(options.training_rows, output=TRAINING_DATA, seed=options.seed, validate=True)
    config = load_training_config(overrides={"training": {"data": {"cv_folds": 0}}})
    version = train(TRAINING_DATA, output=MODELS, config=config).version
    record = deploy(MODELS, TARGET, version=version, environments=load_environments_config())
    if record.status != "success":
        raise EfimeroError(f"the first version {version} could not be deployed to {TARGET}: {record.error}")
    reporter.step(f"trained {version} on {options.training_rows} generated visits; it serves {TARGET}")
    return version


def _loop(result: DemoResult, options: DemoOptions, reporter: Reporter) -> None:
    """Steps 3 to 6 of the module docstring, against the running server at ``result.url``."""
    from efimero.config import load_retraining_config

    day0 = _first_day()
    before = _simulate(result, options, reporter, start=day0, days=options.days, drift_day=options.drift_day)
    result.periods = [_period("before drift", before, "before_drift"), _period("after drift", before, "after_drift")]
    result.drift = drift_report(result.first_version)
    reporter.step(f"drift: {result.drift['summary']} → {result.drift['html']}")
    config = load_retraining_config(overrides=retraining_overrides(options))
    if retrain(result, config, reporter):
        result.rollout = drive_rollout(result, options, reporter, config.retraining.monitoring)
        after = _simulate(result, options, reporter, start=_next_day(result), days=options.after_days, drift_day=0)
        result.periods.append(_period("after rollout", after, "after_drift"))
    result.alerts = alerts_since(datetime.combine(day0, datetime.min.time(), tzinfo=UTC))
    result.reports = report_paths(result)


def retrain(result: DemoResult, config: RetrainingConfig, reporter: Reporter) -> bool:
    """`auto-retrain --mode check` (what fired), then ``--mode force``; whether a candidate's rollout started.

    Full retraining keeps its candidate only when it beats the live version on held-out rows;
    when it does not, the demo says why and ends without a rollout rather than failing.

    Raises:
        EfimeroError: the retraining run failed (its record in ``retraining_runs.json`` says where).
    """
    from efimero.pipeline import auto_retrain
    from efimero.retrain.triggers import NOT_FIRED

    checked = auto_retrain(config, mode="check")
    result.triggers = checked.triggers
    quiet = [t["name"] for t in checked.triggers if t["status"] == NOT_FIRED]
    unchecked = [f"{t['name']} ({t['reason']})" for t in checked.not_run]
    reporter.step(f"triggers fired: {', '.join(checked.fired) or 'none'}; not fired: {', '.join(quiet) or 'none'}"
                  + (f"; not run: {'; '.join(unchecked)}" if unchecked else ""))
    forced = auto_retrain(config, mode="force")
    why = forced.error or next((s["reason"] for s in forced.stages if s["stage"] == "retrain"), forced.decision)
    result.retraining = {"outcome": forced.outcome, "strategy": forced.strategy, "new_version": forced.new_version,
                         "reason": why, "stages": [s["stage"] for s in forced.stages]}
    if forced.outcome == "failed":
        raise EfimeroError(f"auto-retrain --mode force failed: {forced.error}")
    if forced.outcome != "success" or forced.new_version is None:
        reporter.step(f"retraining kept {result.first_version} ({forced.outcome}: {why}); no rollout")
        return False
    result.candidate = forced.new_version
    reporter.step(f"retrained {forced.new_version} ({forced.strategy}: {why}); its canary starts")
    return True


def retraining_overrides(options: DemoOptions) -> dict[str, Any]:
    """The demo's retraining settings over the workdir's file: the embedded paths, a safe rollout on the store clock.

    Each stage below 100 % holds ``options.stage_hours`` simulated hours, so one simulated day of
    visitors between rounds can pass a stage. Sessions of any length are collected: the short
    ones are the visitors the drift drove away, whose bounces carry what they did not want.
    """
    from efimero.deploy.rollout_state import DEFAULT_STAGES

    return {"retraining": {
        "models_dir": str(MODELS),
        "data_collection": {"db_url": DB_URL, "min_session_duration": 0},
        "strategies": {"full": {"parameters": {"cv_folds": 0}}},
        "deployment": {"auto_deploy": True, "target": TARGET, "strategy": "safe", "clock": "store",
                       "monitoring_duration_hours": options.stage_hours * (len(DEFAULT_STAGES) - 1)},
    }}


def drive_rollout(result: DemoResult, options: DemoOptions, reporter: Reporter,
                  rules: MonitoringRules) -> RolloutState:
    """One simulated day of visitors, then one controller round, until the rollout ends or the days run out.

    A rollout still running after ``options.rollout_days`` rounds is aborted with that reason, so
    the days simulated next are served by one version.

    Returns:
        The rollout's final :class:`~efimero.deploy.rollout_state.RolloutState`.
    """
    from efimero.config import load_environments_config
    from efimero.deploy.rollout import abort, status, step
    from efimero.deploy.rollout_checks import clock_now, monitor_judge

    environments = load_environments_config()
    judge = monitor_judge(DB_URL, rules)
    state = status(TARGET, environments=environments)
    for _ in range(options.rollout_days):
        if not state.running:
            break
        _simulate(result, options, reporter, start=_next_day(result), days=1, drift_day=0)
        events = len(state.events)
        state = step(TARGET, now=clock_now("store", DB_URL), judge=judge, environments=environments)
        if len(state.events) > events:  # the round acted: advanced, halved, completed or rolled back
            event, reason = state.events[-1].event, state.events[-1].reason
        else:  # it waited, and the last check says why
            event, reason = "waiting", state.last_check.reason if state.last_check else ""
        result.rounds.append({"day": result.simulated_days[-1], "event": event, "share": state.share,
                              "reason": reason})
        reporter.step(f"rollout round on {result.simulated_days[-1]}: {event}, {state.version} serves "
                      f"{state.share:.0%} of visitors ({reason})")
    if state.running:
        state = abort(TARGET, now=clock_now("store", DB_URL), environments=environments,
                      reason=f"the demo's {options.rollout_days} days of rollout rounds ran out")
        reporter.step(f"aborted the rollout of {state.version}: {state.events[-1].reason}")
    return state


def _simulate(result: DemoResult, options: DemoOptions, reporter: Reporter, *, start: date, days: int,
              drift_day: int) -> SimulationResult:
    """Simulate ``days`` days from ``start`` once the server serves what the registry says; the aggregates."""
    from efimero.simulate import simulate

    wait_until_served(result.url)
    visits = options.visitors_per_day * days
    with reporter.progress(visits) as advance:
        simulated = simulate(result.url, visitors=visits, days=days, drift_day=drift_day,
                             seed=options.seed + len(result.simulated_days), start_date=start,
                             concurrency=options.concurrency, progress=advance)
    if simulated.failures:
        raise EfimeroError(f"{simulated.failures} of {visits} simulated visits failed, e.g. {simulated.errors[0]}")
    result.simulated_days += list(simulated.per_day)
    return simulated


def _first_day() -> date:
    """:data:`FIRST_DAY` in an empty store, else the first day of its weekday after the newest visit.

    The simulator's visitors depend on the weekday, not the date, so a run that starts whole weeks
    later sees the same visitors for the same seed: a second run repeats the first, weeks later,
    without mixing its visits into the first run's windows.
    """
    from efimero.deploy.rollout_checks import clock_now
    from efimero.errors import DeployError

    try:
        after = clock_now("store", DB_URL).date() + timedelta(days=1)
    except DeployError:  # the store holds no visit yet
        return FIRST_DAY
    return after + timedelta(days=(FIRST_DAY.weekday() - after.weekday()) % 7)


def _next_day(result: DemoResult) -> date:
    """The simulated day after the last one the demo simulated."""
    return date.fromisoformat(result.simulated_days[-1]) + timedelta(days=1)


def _period(name: str, simulated: SimulationResult, phase: str) -> Period:
    """A phase (``before_drift``/``after_drift``) of a simulation as a :class:`Period`.

    Each simulation the demo makes a period of is served by one version (it waits for the
    server to follow the registry first, and rollout rounds are no period), so the version that
    served most of its visits served them all.
    """
    drift_start = simulated.start_date + timedelta(days=simulated.drift_day or 0)
    days = sorted(day for day in simulated.per_day
                  if (date.fromisoformat(day) >= drift_start) == (phase == "after_drift"))
    version = Counter(simulated.model_versions).most_common(1)[0][0]
    return Period(name, version, f"{days[0]} to {days[-1]}", simulated.phases[phase])


def drift_report(live: str) -> dict[str, Any]:
    """The drift of every session of the last 7 days against ``live``'s training data, written to ``reports/drift``.

    The same measurement as `efimero collect --validate` and the drift trigger: features only,
    each weighed by the live version's importance.

    Raises:
        EfimeroError: the training data or the store cannot be read.
    """
    from efimero.collect import collect
    from efimero.monitor.drift import export_report, reference_of
    from efimero.registry import Registry
    from efimero.schema import CSS_TASK

    reference = reference_of(Registry(MODELS).load(live))
    collected = collect(DB_URL, days_back=7, validate=True, reference=reference)
    if collected.drift is None or reference.frame is None:
        raise EfimeroError(f"drift could not be measured: {collected.quality.drift_not_run or reference.problem}")
    features = CSS_TASK.feature_names
    html, json_path = export_report(collected.drift, reference.frame[features], collected.judged[features],
                                    REPORTS / "drift", labels=(f"training data of {live}", "last 7 days"))
    report = collected.drift
    return {"verdict": report.verdict, "summary": report.summary, "drifted_features": report.drifted_features,
            "weighted_drift_share": report.weighted_drift_share, "sessions": len(collected.judged),
            "html": str(html), "json": str(json_path)}


def alerts_since(start: datetime) -> dict[str, int]:
    """The monitor's alerts per rule whose window ends after ``start`` (this run's simulated days)."""
    from efimero.store import open_engine, recent_alerts

    engine = open_engine(DB_URL, create=False)
    try:
        alerts = recent_alerts(engine, limit=10_000)
    finally:
        engine.dispose()

    def aware(moment: datetime) -> datetime:
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    return dict(Counter(a["rule"] for a in alerts if aware(a["window_end"]) >= start))


def report_paths(result: DemoResult) -> dict[str, str]:
    """Where to look afterwards: the drift report, the deployment and retraining records, the summary."""
    from efimero.config import load_environments_config
    from efimero.pipeline.runs import RUNS_FILE

    production = load_environments_config().get(TARGET).model_dir
    return {"drift report": result.drift["html"], "drift data": result.drift["json"],
            "deployments": str(production / "deployments.json"), "rollout": str(production / "rollout.json"),
            "retraining runs": str(MODELS / RUNS_FILE), "store": DB_URL, "summary": str(REPORTS / "demo.json")}


def _abort_leftover_rollout(reporter: Reporter) -> None:
    """Abort the production rollout if one still runs: an interrupted demo must not block the next one's deploy."""
    from efimero.config import load_environments_config
    from efimero.deploy.rollout import abort
    from efimero.deploy.rollout_checks import clock_now
    from efimero.deploy.rollout_state import read_state

    environments = load_environments_config()
    state = read_state(environments.get(TARGET).model_dir)
    if state is not None and state.running:
        abort(TARGET, now=clock_now(state.clock, state.db_url), reason="the demo was interrupted",
              environments=environments)
        reporter.step(f"aborted the rollout of {state.version}: the demo was interrupted")


# -- the server -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Server:
    """The demo's `efimero serve` subprocess: its pid (and process group) and its URL."""

    pid: int
    url: str
    log: Path


def free_port() -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_command(port: int) -> list[str]:
    """`efimero serve` on production's registry and the default store, its monitor on the store clock.

    Run through this interpreter (``-m efimero.cli.main``), so it is this installation's
    efimero whether or not the console script is on the PATH.
    """
    return [sys.executable, "-m", "efimero.cli.main", "serve", "--models", "models/prod", "--db", DB_URL,
            "--port", str(port), "--monitor-clock", "store", "--monitor-interval", "5", "--poll-interval", "0.2",
            "--no-access-log"]


@contextlib.contextmanager
def serving(port: int | None, reporter: Reporter) -> Iterator[Server]:
    """Run `efimero serve` in the background until the block ends, however it ends.

    The server runs in its own process group (so Ctrl-C in the terminal reaches only the demo,
    which then stops it in order) and SIGTERM to the demo is turned into an exit that runs this
    block's clean-up. Its output goes to ``reports/serve.log``.

    Raises:
        EfimeroError: the server exited or was not ready within a minute (the log's tail says why).
    """
    port = port or free_port()
    log = REPORTS / "serve.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output, _sigterm_exits():
        process = subprocess.Popen(serve_command(port), stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            server = Server(process.pid, f"http://127.0.0.1:{port}", log)
            wait_ready(process, server)
            reporter.step(f"serving {TARGET} at {server.url} (pid {process.pid}, log {log})")
            yield server
        finally:
            stop(process)
            reporter.step(f"stopped the server (pid {process.pid})")


def wait_ready(process: subprocess.Popen[bytes], server: Server) -> None:
    """Poll ``/readyz`` until it answers 200; fail when the process exits or a minute passes."""
    import httpx

    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EfimeroError(f"the server exited with code {process.returncode} before it was ready: "
                               f"{_tail(server.log)}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.url}/readyz", timeout=2).is_success:
                return
        time.sleep(0.2)
    raise EfimeroError(f"the server at {server.url} was not ready after {READY_TIMEOUT_S:g} s: {_tail(server.log)}")


def _tail(log: Path, lines: int = 5) -> str:
    return " | ".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop ``process`` and its group: SIGTERM (uvicorn shuts down cleanly), SIGKILL if it takes too long."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            logger.warning("the server (pid %d) did not stop within %g s; killing it", process.pid, STOP_TIMEOUT_S)
    process.wait()


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """Within the block, SIGTERM raises SystemExit (as Ctrl-C raises KeyboardInterrupt), so clean-up runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_on(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_on)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_until_served(url: str, timeout_s: float = 30.0) -> None:
    """Block until the server serves what production's registry says: its live version and traffic split.

    The server follows the registry by polling it; visits sent before it has caught up would
    be served by the previous split and blur the rollout's windows.

    Raises:
        EfimeroError: the server has not caught up after ``timeout_s``.
    """
    import httpx

    from efimero.config import load_environments_config
    from efimero.registry import Registry

    registry = Registry(load_environments_config().get(TARGET).model_dir)
    split = registry.traffic()
    wanted = (registry.current(), sorted((a.version, a.share) for a in split.arms) if split else [])
    deadline = time.monotonic() + timeout_s
    seen: Any = None
    while time.monotonic() < deadline:
        info = httpx.get(f"{url}/v1/model", timeout=5).json()
        seen = (info["version"], sorted((a["version"], a["share"]) for a in info["traffic"] if a["served"]))
        if seen == wanted:
            return
        time.sleep(0.1)
    raise EfimeroError(f"the server still serves {seen} after {timeout_s:g} s; the registry says {wanted}")

