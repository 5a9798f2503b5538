"""Training: XGBoost models per target, tuning, cross-validation and test metrics."""

from efimero.bundle import ClassPrediction, ModelBundle, Prediction, Preprocessor, TrainedModel
from efimero.training._dask import DaskEngine, train_dask
from efimero.training._dask_read import DASK_SPLIT, held_out_rows
from efimero.training.fit import TrainingResult, fill_weights, row_weights, stratify_by, total_steps, train
from efimero.training.metrics import evaluate, summary_scores
from efimero.training.tune import TuningResult, cross_validate, tune

__all__ = [
    "DASK_SPLIT",
    "ClassPrediction",
    "DaskEngine",
    "ModelBundle",
    "Prediction",
    "Preprocessor",
    "TrainedModel",
    "TrainingResult",
    "TuningResult",
    "cross_validate",
    "evaluate",
    "fill_weights",
    "held_out_rows",
    "row_weights",
    "stratify_by",
    "summary_scores",
    "total_steps",
    "train",
    "train_dask",
    "tune",
]
