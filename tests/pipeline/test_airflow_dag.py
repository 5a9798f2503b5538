"""`dags/efimero_weekly.py` under a real Airflow: parsed without import errors, then run by `airflow dags test`.

Airflow 2.10 needs SQLAlchemy < 2 and efimero SQLAlchemy 2, so Airflow lives in a virtual
environment of its own, built once per Airflow version under ``.cache/`` (ignored by git); the
DAG's tasks run efimero in this interpreter (``EFIMERO_PYTHON``) against a project directory in
a temp dir. Building the environment needs the package index: without it the test fails, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from efimero.config import load_environments_config
from efimero.deploy.rollout import status
from efimero.registry import Registry
from tests.pipeline.conftest import SESSIONS

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

AIRFLOW_VERSION = "2.10.5"
REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / ".cache" / f"airflow-{AIRFLOW_VERSION}"
TASKS = ["ready", "collect", "validate", "drift", "retrain", "compare", "rollout"]


def airflow_venv() -> Path:
    """The cached virtual environment with apache-airflow, built when missing (about half a minute)."""
    stamp = CACHE / ".installed"
    if stamp.exists():
        return CACHE
    shutil.rmtree(CACHE, ignore_errors=True)  # a build that did not finish
    subprocess.run([sys.executable, "-m", "venv", str(CACHE)], check=True)
    install = subprocess.run([str(CACHE / "bin" / "python"), "-m", "pip", "install", "--quiet",
                              f"apache-airflow=={AIRFLOW_VERSION}"], capture_output=True, text=True)
    if install.returncode:
        pytest.fail(f"cannot build the Airflow environment (pip install apache-airflow=={AIRFLOW_VERSION}; "
                    f"is the package index reachable?):\n{install.stderr[-3000:]}")
    stamp.touch()
    return CACHE


def last_json(output: str) -> object:
    """The JSON a command printed last (Airflow's log lines come before it on stdout)."""
    for line in reversed(output.splitlines()):
        if line.startswith(("[{", "[]", "{")):
            return json.loads(line)
    raise AssertionError(f"no JSON in:\n{output[-3000:]}")


def test_the_weekly_dag_runs_every_task_under_airflow(weekly_project, tmp_path: Path) -> None:
    project, versions = weekly_project
    started = time.perf_counter()
    venv = airflow_venv()
    home = tmp_path / "airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "EFIMERO_"))} | {
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"), "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "EFIMERO_PROJECT_DIR": str(project), "EFIMERO_PYTHON": sys.executable,
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    def airflow(*args: str) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run([str(venv / "bin" / "airflow"), *args], env=env, capture_output=True, text=True,
                                  timeout=120)
        except subprocess.TimeoutExpired as exc:  # a task that failed waits retry_delay (5 min) for its retry
            output = (exc.stdout or b"").decode() + (exc.stderr or b"").decode()
            pytest.fail(f"airflow {' '.join(args)} took over {exc.timeout} s:\n{output[-6000:]}")
        assert done.returncode == 0, f"airflow {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return done

    airflow("db", "migrate")
    errors = airflow("dags", "list-import-errors", "-o", "json").stdout
    assert last_json(errors) == [], errors
    airflow("dags", "reserialize")  # into the metadata database, where list-runs finds it
    assert "efimero_weekly" in airflow("dags", "list", "-o", "plain").stdout
    run = airflow("dags", "test", "efimero_weekly", "2026-11-29")
    log = run.stdout + run.stderr
    [dag_run] = last_json(airflow("dags", "list-runs", "-d", "efimero_weekly", "-o", "json").stdout)
    assert dag_run["state"] == "success", log[-6000:]
    states = last_json(airflow("tasks", "states-for-dag-run", "efimero_weekly", dag_run["run_id"],
                               "-o", "json").stdout)
    assert {s["task_id"]: s["state"] for s in states} == dict.fromkeys(TASKS, "success"), log[-6000:]

    [collected] = (project / "data" / "production").glob("weekly_*.csv")
    assert len(collected.read_text().splitlines()) == SESSIONS + 1
    assert (project / "data" / "production" / f"{collected.stem}_drift.json").is_file()
    registry = Registry(project / "models")
    [new] = [v for v in registry.versions() if v not in versions]
    rollout = status("production", environments=load_environments_config(project / "config" / "environments.yaml"))
    assert (rollout.version, rollout.previous_version, rollout.status, rollout.share) == (
        new, versions[-1], "running", 0.05), rollout
    print(f"Airflow environment and DAG run: {time.perf_counter() - started:.0f} s")
