"""Retraining: incremental updates, full retraining, triggers and the automated loop."""

from efimero.retrain._common import RetrainResult
from efimero.retrain.auto import RetrainingRun, auto_retrain, read_runs
from efimero.retrain.full import full
from efimero.retrain.incremental import incremental

__all__ = ["RetrainResult", "RetrainingRun", "auto_retrain", "full", "incremental", "read_runs"]
