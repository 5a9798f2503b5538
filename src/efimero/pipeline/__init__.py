"""The pipeline: the stages run in order, unattended — the last stage, so it may use every other.

:func:`auto_retrain` is ``efimero auto-retrain`` (triggers → strategy → collect → validate →
retrain → validate → deploy); :func:`deploy_retrained` serves ``efimero retrain full
--deploy-if-better``; :func:`readiness` is the one check of whether a retraining may go on
(enough new judged sessions, data quality passed) that ``auto-retrain --mode scheduled`` and the
Airflow DAG (``dags/efimero_weekly.py``, whose steps are :mod:`efimero.pipeline.weekly`) share.
They load on first use (the training stack); :func:`read_runs`, the record of runs, does not need it.
"""

from typing import TYPE_CHECKING, Any

from efimero.pipeline.runs import read_runs

if TYPE_CHECKING:
    from efimero.pipeline.auto import RetrainingRun, auto_retrain, deploy_retrained
    from efimero.pipeline.ready import Readiness, readiness

__all__ = ["Readiness", "RetrainingRun", "auto_retrain", "deploy_retrained", "read_runs", "readiness"]


def __getattr__(name: str) -> Any:
    if name in ("RetrainingRun", "auto_retrain", "deploy_retrained"):
        from efimero.pipeline import auto

        return getattr(auto, name)
    if name in ("Readiness", "readiness"):
        from efimero.pipeline import ready as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
