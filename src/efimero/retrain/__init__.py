"""Retraining: incremental updates and full retraining of a registry's live version, and the triggers.

Deciding when to retrain, and deploying what retraining made, is the pipeline's job
(:mod:`efimero.pipeline`): retraining changes the registry only, through its API.
"""

from efimero.retrain._common import RetrainResult
from efimero.retrain.full import full
from efimero.retrain.incremental import incremental

__all__ = ["RetrainResult", "full", "incremental"]
