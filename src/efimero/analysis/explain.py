"""SHAP values with shap's TreeExplainer, per model and per output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shap
import xgboost as xgb

from efimero.bundle import ModelBundle


@dataclass(frozen=True)
class Explanation:
    """SHAP values of one model on some rows: ``values`` is (rows, features, outputs)."""

    model: str
    outputs: list[str]
    values: np.ndarray
    base_values: np.ndarray
    margin: np.ndarray

    def mean_abs(self) -> np.ndarray:
        """Mean |SHAP| per feature and output: (features, outputs)."""
        return np.abs(self.values).mean(axis=0)


def explain(bundle: ModelBundle, features: pd.DataFrame) -> dict[str, Explanation]:
    """TreeSHAP of every model on ``features`` (raw, unscaled feature columns).

    Values are in the model's margin space (log-odds per class, standardised targets for the
    regressor): for each row, ``values.sum(features) + base_values`` equals the margin output.
    """
    scaled = bundle.preprocessor.transform(features[bundle.feature_names].to_numpy(dtype=float))
    explanations = {}
    for name, model in bundle.models.items():
        explainer = shap.TreeExplainer(model.booster)
        values = np.asarray(explainer.shap_values(scaled))
        if values.ndim == 2:
            values = values[:, :, None]
        outputs = model.targets
        if model.kind == "classifier":
            assert model.labels is not None, "a classifier always records its labels"
            outputs = model.labels
        margin = np.asarray(model.booster.predict(xgb.DMatrix(scaled), output_margin=True)).reshape(len(scaled), -1)
        explanations[name] = Explanation(
            model=name,
            outputs=list(outputs),
            values=values,
            base_values=np.atleast_1d(np.asarray(explainer.expected_value, dtype=float)),
            margin=margin,
        )
    return explanations
