"""Trained models and their preprocessing: what a registry version holds and serving predicts with.

A :class:`ModelBundle` is what a registry version holds: the feature order, the scaler and
named models. Prediction lives here, once, so training metrics and live predictions go
through the same code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
import xgboost as xgb

from efimero.compiled import CompiledTrees, entries
from efimero.errors import PredictionInputError

ModelKind = Literal["classifier", "regressor"]

COMPILED_MAX_ROWS = 64
"""Up to this many rows go through the compiled trees (one C call per row and model); more
go through one multi-row XGBoost call, which wins once its per-call overhead is spread
(in bench/bench_predict.py the compiled trees take 0.53x XGBoost's time at 64 rows, 0.85x at 128, 1.31x at 256)."""


@dataclass(frozen=True)
class Preprocessor:
    """A fitted standard scaler reduced to two arrays, so transforming one row is cheap."""

    feature_names: list[str]
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, features: pd.DataFrame) -> Preprocessor:
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(features.to_numpy(dtype=float))
        return cls(list(features.columns), scaler.mean_.copy(), scaler.scale_.copy())

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        return (matrix - self.mean) / self.scale

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "standard_scaler",
            "feature_names": self.feature_names,
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> Preprocessor:
        return cls(list(payload["feature_names"]), np.asarray(payload["mean"]), np.asarray(payload["scale"]))


@dataclass
class TrainedModel:
    """One named model: a classifier of one target or a regressor of several.

    Regressors learn standardised targets (so no target dominates the shared trees and the
    early-stopping metric); ``target_mean``/``target_scale`` map outputs back to units.
    """

    name: str
    kind: ModelKind
    targets: list[str]
    booster: xgb.Booster
    params: dict[str, Any] = field(default_factory=dict)
    labels: list[str] | None = None
    target_mean: np.ndarray | None = None
    target_scale: np.ndarray | None = None
    algorithm: str = "xgboost"
    compiled: CompiledTrees | None = None
    """The booster compiled to machine code, attached only once it proved equal to it."""

    def __post_init__(self) -> None:
        # Predictions are mostly single rows: one thread avoids OpenMP start-up and, under
        # CPU contention, spin-waiting threads that turn a 0.5 ms prediction into 100 ms.
        self.booster.set_param({"nthread": 1})

    def predict_matrix(self, scaled: np.ndarray | xgb.DMatrix) -> np.ndarray:
        """Class probabilities (n, labels) or target values in their units (n, targets).

        Pass a DMatrix when several models predict the same rows: building it once is
        cheaper than one ``inplace_predict`` per model (see ``bench/bench_predict.py``).
        """
        matrix = scaled if isinstance(scaled, xgb.DMatrix) else xgb.DMatrix(scaled, nthread=1)
        return self._in_units(np.asarray(self.booster.predict(matrix, validate_features=False)), matrix.num_row())

    def predict_compiled(self, rows: np.ndarray) -> np.ndarray:
        """What :meth:`predict_matrix` returns, through the compiled trees (which must be attached),
        of rows converted by :func:`efimero.compiled.entries`."""
        if self.compiled is None:
            raise ValueError(f"model {self.name!r} has no compiled trees attached.")
        return self._in_units(self.compiled.predict_entries(rows), len(rows))

    def _in_units(self, output: np.ndarray, rows: int) -> np.ndarray:
        if self.kind == "classifier":
            return output.reshape(rows, -1)
        values = output.reshape(rows, len(self.targets))
        return values * self.target_scale + self.target_mean

    def info(self) -> dict[str, Any]:
        """Everything but the booster, JSON-ready (the registry's model index entry)."""
        entry: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "algorithm": self.algorithm,
            "targets": self.targets,
            "params": self.params,
            "n_trees": self.booster.num_boosted_rounds(),
        }
        if self.labels is not None:
            entry["labels"] = self.labels
        if self.target_mean is not None and self.target_scale is not None:
            entry["target_mean"] = self.target_mean.tolist()
            entry["target_scale"] = self.target_scale.tolist()
        return entry


@dataclass(frozen=True)
class ClassPrediction:
    label: str
    confidence: float
    probabilities: dict[str, float]


@dataclass(frozen=True)
class Prediction:
    """One prediction: a label per class target and a value per regression target."""

    classes: dict[str, ClassPrediction]
    values: dict[str, float]
    model_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "classes": {k: vars(v) for k, v in self.classes.items()},
            "values": self.values,
        }


@dataclass
class ModelBundle:
    """Feature order, preprocessing and named models: one registry version in memory."""

    preprocessor: Preprocessor
    models: dict[str, TrainedModel]
    version: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    inference: str = "xgboost"
    """How small batches are predicted: ``compiled``, or ``xgboost (why not compiled)``."""

    @property
    def feature_names(self) -> list[str]:
        return self.preprocessor.feature_names

    def importance(self, importance_type: str = "gain") -> dict[str, np.ndarray]:
        """Per model, each feature's share of the model's total importance, in feature order.

        XGBoost names features f0…f18 when trained on arrays; they map back to the bundle's
        feature order. Features a model never splits on get 0; each model's shares sum to 1.
        """
        shares = {}
        for name, model in self.models.items():
            # One number per feature: only vector-leaf trees, which efimero never trains, give lists.
            scores = cast(dict[str, float], model.booster.get_score(importance_type=importance_type))
            total = sum(scores.values()) or 1.0
            shares[name] = np.array([scores.get(f"f{index}", scores.get(feature, 0.0)) / total
                                     for index, feature in enumerate(self.feature_names)])
        return shares

    def combined_importance(self, importance_type: str = "gain") -> dict[str, float]:
        """The guide's combined importance per feature: the mean of the classifiers' and the
        regressors' mean shares, so three class targets do not outweigh the regressor by number."""
        by_kind: dict[str, list[np.ndarray]] = {}
        for name, shares in self.importance(importance_type).items():
            by_kind.setdefault(self.models[name].kind, []).append(shares)
        combined = np.mean([np.mean(shares, axis=0) for shares in by_kind.values()], axis=0)
        return dict(zip(self.feature_names, combined.tolist(), strict=True))

    def _scaled(self, features: pd.DataFrame | np.ndarray) -> np.ndarray:
        if isinstance(features, pd.DataFrame):
            missing = [name for name in self.feature_names if name not in features.columns]
            if missing:
                raise PredictionInputError(f"features are missing column(s): {', '.join(missing)}.")
            features = features[self.feature_names].to_numpy(dtype=float)
        return self.preprocessor.transform(np.asarray(features, dtype=float))

    def predict_outputs(self, features: pd.DataFrame | np.ndarray) -> dict[str, np.ndarray]:
        """Raw outputs per model name: probabilities for classifiers, values for regressors.

        A few rows go through the compiled trees when every model has them, more through one
        XGBoost call per model over a shared DMatrix.
        """
        scaled = self._scaled(features)
        if len(scaled) <= COMPILED_MAX_ROWS and all(model.compiled for model in self.models.values()):
            rows = entries(scaled, len(self.feature_names))
            return {name: model.predict_compiled(rows) for name, model in self.models.items()}
        matrix = xgb.DMatrix(scaled, nthread=1)
        return {name: model.predict_matrix(matrix) for name, model in self.models.items()}

    def predict_frame(self, features: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """Predicted labels and values, one column per target, one row per input row."""
        columns: dict[str, Any] = {}
        for name, output in self.predict_outputs(features).items():
            model = self.models[name]
            if model.kind == "classifier":
                columns[model.targets[0]] = np.asarray(model.labels, dtype=object)[output.argmax(axis=1)]
            else:
                columns.update({target: output[:, i] for i, target in enumerate(model.targets)})
        return pd.DataFrame(columns)

    def _row(self, context: Mapping[str, Any]) -> np.ndarray:
        row = np.empty((1, len(self.feature_names)))
        for i, name in enumerate(self.feature_names):
            try:
                value = float(context[name])
            except KeyError:
                raise PredictionInputError(f"context is missing feature {name!r}.") from None
            except (TypeError, ValueError):
                raise PredictionInputError(
                    f"feature {name!r} must be a number. Got {context[name]!r} instead."
                ) from None
            if not math.isfinite(value):
                raise PredictionInputError(f"feature {name!r} must be finite. Got {value} instead.")
            row[0, i] = value
        return row

    def predict(self, context: Mapping[str, Any]) -> Prediction:
        """Predict one row given as a mapping of feature name → number.

        Example:
            >>> bundle = efimero.load("models/")  # doctest: +SKIP
            >>> bundle.predict(features).classes["css_class_theme"].label  # doctest: +SKIP
            'tema-oscuro'
        """
        return self.predict_rows(self._row(context))[0]

    def predict_rows(self, features: pd.DataFrame | np.ndarray) -> list[Prediction]:
        """One :class:`Prediction` per row of a feature frame or matrix, in one vectorised pass."""
        outputs = [(self.models[name], output) for name, output in self.predict_outputs(features).items()]
        predictions = []
        for row in range(len(outputs[0][1])):
            classes: dict[str, ClassPrediction] = {}
            values: dict[str, float] = {}
            for model, output in outputs:
                if model.labels is not None:  # a classifier
                    probabilities = output[row]
                    best = int(probabilities.argmax())
                    classes[model.targets[0]] = ClassPrediction(
                        label=model.labels[best],
                        confidence=float(probabilities[best]),
                        probabilities={label: float(p) for label, p in zip(model.labels, probabilities, strict=True)},
                    )
                else:
                    values.update({target: float(v) for target, v in zip(model.targets, output[row], strict=True)})
            predictions.append(Prediction(classes, values, self.version))
        return predictions
