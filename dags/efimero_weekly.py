"""The weekly retraining pipeline of the MLOps guide on Airflow: Sundays at 02:00, 3 retries 5 min apart.

ready → collect → validate → drift → retrain → compare → rollout, each task one step of
:mod:`efimero.pipeline.weekly` (efimero's Python API). ``ready`` is the readiness check that
``efimero auto-retrain --mode scheduled`` (the cron line) uses too: enough new judged sessions and
data quality passed; when it fails the task is skipped and so is everything after it. ``rollout``
starts the configured rollout only when ``compare`` found the candidate better, else it is skipped.

This file imports only Airflow, so it parses where efimero is not installed: Airflow 2.10 needs
SQLAlchemy 1.4 and efimero SQLAlchemy 2, so they live in separate virtual environments, and each
task runs in efimero's interpreter (``ExternalPythonOperator``). Settings, from the environment or
else an Airflow Variable of the same name:

* ``EFIMERO_PROJECT_DIR``: the project directory (its ``config/retraining.yaml`` and the relative
  paths in it); default: the directory above ``dags/``;
* ``EFIMERO_PYTHON``: efimero's interpreter; default ``<EFIMERO_PROJECT_DIR>/.venv/bin/python``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.decorators import dag, task
from airflow.models import Variable

SKIP = 100
"""The exit code with which a task's body says "nothing to do": Airflow marks the task skipped."""


def _setting(name: str, default: str) -> str:
    if os.environ.get(name):
        return os.environ[name]
    try:
        return Variable.get(name, default_var=None) or default
    except Exception:  # no metadata database to ask (parsing outside a deployment)
        return default


PROJECT_DIR = _setting("EFIMERO_PROJECT_DIR", str(Path(__file__).resolve().parent.parent))
EFIMERO_PYTHON = _setting("EFIMERO_PYTHON", str(Path(PROJECT_DIR) / ".venv" / "bin" / "python"))

default_args = {
    "owner": "mlops-team",
    "depends_on_past": False,
    "email_on_failure": True,
    "email_on_retry": False,
    "retries": 3,
    "retry_delay": timedelta(minutes=5),
}


EFIMERO = {"python": EFIMERO_PYTHON, "expect_airflow": False, "skip_on_exit_code": SKIP}
"""Each task's body runs in efimero's interpreter; its source is all it takes along (imports inside)."""


@dag(
    dag_id="efimero_weekly",
    description="Weekly retraining: ready → collect → validate → drift → retrain → compare → rollout",
    schedule="0 2 * * 0",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=default_args,
    tags=["efimero", "mlops", "retraining"],
    params={"project_dir": PROJECT_DIR},
)
def efimero_weekly() -> None:
    @task.external_python(task_id="ready", **EFIMERO)
    def ready(project_dir: str) -> dict[str, Any]:
        import os

        from efimero.pipeline import weekly

        os.chdir(project_dir)
        result = weekly.ready("config/retraining.yaml")
        print(result)
        if "skip" in result:
            print(f"not ready: {result['skip']}")
            raise SystemExit(100)
        return result

    @task.external_python(task_id="collect", **EFIMERO)
    def collect(project_dir: str, readiness: dict[str, Any]) -> dict[str, Any]:
        import os

        from efimero.pipeline import weekly

        os.chdir(project_dir)
        result = weekly.collect_new("config/retraining.yaml")
        print(result)
        if "skip" in result:
            raise SystemExit(100)
        return result

    @task.external_python(task_id="validate", **EFIMERO)
    def validate(project_dir: str, collected: dict[str, Any]) -> dict[str, Any]:
        import os

        from efimero.pipeline import weekly

        os.chdir(project_dir)
        return weekly.validate(collected["path"])

    @task.external_python(task_id="drift", **EFIMERO)
    def drift(project_dir: str, collected: dict[str, Any], validated: dict[str, Any]) -> dict[str, Any]:
        import os

        from efimero.pipeline import weekly

        os.chdir(project_dir)
        return weekly.drift(validated["path"], collected["live_version"], "config/retraining.yaml")

    @task.external_python(task_id="retrain", **EFIMERO)
    def retrain(project_dir: str, collected: dict[str, Any], drifted: dict[str, Any]) -> dict[str, Any]:
        import os

        from efimero.pipeline import weekly

        os.chdir(project_dir)
        print(f"drift: {drifted}")
        result = weekly.retrain(collected["path"], collected["strategy"], "config/retraining.yaml")
        print(result)
        if "skip" in result:
            raise SystemExit(100)
        return result

    @task.external_python(task_id="compare", **EFIMERO)
    def compare(project_dir: str, collected: dict[str, Any], retrained: dict[str, Any]) -> dict[str, Any]:
        import os

        from efimero.pipeline import weekly

        os.chdir(project_dir)
        return weekly.compare(retrained["parent_version"], retrained["version"], collected["path"],
                              "config/retraining.yaml")

    @task.external_python(task_id="rollout", **EFIMERO)
    def rollout(project_dir: str, compared: dict[str, Any]) -> dict[str, Any]:
        import os

        from efimero.pipeline import weekly

        os.chdir(project_dir)
        result = weekly.rollout(compared, "config/retraining.yaml")
        print(result)
        if "skip" in result:
            raise SystemExit(100)
        return result

    project_dir = "{{ params.project_dir }}"
    collected = collect(project_dir, ready(project_dir))
    validated = validate(project_dir, collected)
    retrained = retrain(project_dir, collected, drift(project_dir, collected, validated))
    rollout(project_dir, compare(project_dir, collected, retrained))


efimero_weekly()
