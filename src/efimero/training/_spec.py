"""What to train for each named model of a task, and how to score it in cross-validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import accuracy_score, log_loss, r2_score, root_mean_squared_error

from efimero.bundle import ModelKind, TrainedModel
from efimero.config import ClassifierParams, ModelSettings, RegressorParams, XGBoostParams
from efimero.schema import TabularTask
from efimero.training._xgb import Runtime, fit_classifier, fit_regressor


@dataclass(frozen=True)
class ModelSpec:
    """One model to train: its name, kind, targets and (for classifiers) the label order."""

    name: str
    kind: ModelKind
    targets: list[str]
    labels: list[str] | None = None

    @property
    def primary_metric(self) -> str:
        """The CV metric tuning optimises: log-loss (a proper score) or mean R²."""
        return "log_loss" if self.kind == "classifier" else "r2"

    @property
    def maximize(self) -> bool:
        return self.kind == "regressor"

    def default_params(self, settings: ModelSettings) -> XGBoostParams:
        return settings.classifier if self.kind == "classifier" else settings.regressor

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """The label matrix: label indices for a classifier, target values for a regressor."""
        if self.kind == "classifier":
            return pd.Categorical(frame[self.targets[0]], categories=self.labels).codes.astype(np.int64)
        return frame[self.targets].to_numpy(dtype=float)

    def fit(
        self,
        params: XGBoostParams,
        x: np.ndarray,
        y: np.ndarray,
        *,
        runtime: Runtime,
        eval_set: tuple[np.ndarray, np.ndarray] | None = None,
        weight: np.ndarray | None = None,
        callbacks: Sequence[xgb.callback.TrainingCallback] = (),
    ) -> TrainedModel:
        """Fit on encoded labels; ``callbacks`` watch ``eval_set`` each round (``WATCHED_METRIC``)."""
        if self.kind == "classifier":
            assert isinstance(params, ClassifierParams) and self.labels is not None
            return fit_classifier(self.name, self.targets[0], self.labels, params, x, y,
                                  runtime=runtime, eval_set=eval_set, weight=weight, callbacks=callbacks)
        assert isinstance(params, RegressorParams)
        return fit_regressor(self.name, self.targets, params, x, y, runtime=runtime, eval_set=eval_set, weight=weight,
                             callbacks=callbacks)

    def score(self, model: TrainedModel, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """CV scores of a fitted model on encoded labels ``y``."""
        output = model.predict_matrix(x)
        if self.kind == "classifier":
            return {
                "accuracy": float(accuracy_score(y, output.argmax(axis=1))),
                "log_loss": float(log_loss(y, output, labels=np.arange(output.shape[1]))),
            }
        return {
            "r2": float(r2_score(y, output, multioutput="uniform_average")),
            "rmse": float(root_mean_squared_error(y, output)),
        }


def model_specs(task: TabularTask, frame: pd.DataFrame) -> list[ModelSpec]:
    """One classifier per class target (labels in schema order, those present) and one regressor."""
    specs = []
    for target in task.class_targets:
        present = set(frame[target.name].unique())
        labels = [label for label in target.labels if label in present]
        specs.append(ModelSpec(target.name, "classifier", [target.name], labels))
    if task.regression_targets:
        specs.append(ModelSpec(task.regression_model, "regressor", task.regression_target_names))
    return specs
