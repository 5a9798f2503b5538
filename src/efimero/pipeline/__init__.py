"""The pipeline: the stages run in order, unattended — the last stage, so it may use every other.

:func:`auto_retrain` is ``efimero auto-retrain`` (triggers → strategy → collect → validate →
retrain → validate → deploy); :func:`deploy_retrained` serves ``efimero retrain full
--deploy-if-better``.
"""

from efimero.pipeline.auto import RetrainingRun, auto_retrain, deploy_retrained, read_runs

__all__ = ["RetrainingRun", "auto_retrain", "deploy_retrained", "read_runs"]
