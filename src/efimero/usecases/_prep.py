"""A use case's preprocessing: one scikit-learn ``ColumnTransformer``, saved with skops (never pickle).

Numeric columns are imputed (median by default) and standardised (``scaling: standard``);
categorical ones imputed (most frequent) and one-hot or ordinally encoded, with values never
seen at fit mapped to all-zeros (one-hot) or -1 (ordinal) rather than refused, since a new
category at serving time must not take the service down. The file is read back through the
estimators' allow-list (:func:`efimero.estimators._skops.load_trusted`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from efimero._io import atomic_write_bytes
from efimero.estimators._skops import dump_trusted, load_trusted
from efimero.usecases._schema import Feature, Preprocessing

PREPROCESSING_FILE = "preprocessing.skops"
PREPROCESSING_TRUSTED = frozenset({"numpy.dtype"})
"""Beyond the estimators' allow-list: imputers and encoders keep the dtype they were fitted on."""


def build_preprocessor(features: list[Feature], settings: Preprocessing) -> ColumnTransformer:
    """An unfitted ``ColumnTransformer`` for ``features`` as ``settings`` ask; columns keep their names."""
    numeric = [f.name for f in features if f.kind == "numeric"]
    categorical = [f.name for f in features if f.kind == "categorical"]
    missing = settings.missing
    steps: list[tuple[str, Pipeline, list[str]]] = []
    if numeric:
        fill = missing.fill_value if missing.numeric == "constant" and missing.fill_value is not None else 0.0
        imputer = SimpleImputer(strategy=missing.numeric, fill_value=fill, keep_empty_features=True)
        scaler = [StandardScaler()] if settings.scaling == "standard" else []
        steps.append(("numeric", make_pipeline(imputer, *scaler), numeric))
    if categorical:
        fill = str(missing.fill_value) if missing.categorical == "constant" and missing.fill_value is not None \
            else "missing"
        encoder: Any = (
            OneHotEncoder(handle_unknown="ignore", sparse_output=False) if settings.encoding == "one_hot"
            else OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        )
        steps.append(("categorical", make_pipeline(
            SimpleImputer(strategy=missing.categorical, fill_value=fill, keep_empty_features=True), encoder,
        ), categorical))
    return ColumnTransformer(steps, remainder="drop", verbose_feature_names_out=False)


def as_frame(X: pd.DataFrame, features: list[Feature]) -> pd.DataFrame:
    """``X`` with categorical columns as strings (NaN kept), so the encoder sees one type per column."""
    frame = X.copy()
    for feature in features:
        if feature.kind == "categorical":
            column = frame[feature.name]
            frame[feature.name] = column.astype(object).where(column.isna(), column.astype(str))
    return frame


def transform(preprocessor: ColumnTransformer, X: pd.DataFrame, features: list[Feature]) -> np.ndarray:
    """The numeric matrix the estimators train and predict on."""
    return np.asarray(preprocessor.transform(as_frame(X, features)), dtype=np.float64)


def fit_and_transform(preprocessor: ColumnTransformer, fit_on: pd.DataFrame, others: Sequence[pd.DataFrame],
                      features: list[Feature]) -> tuple[ColumnTransformer, list[np.ndarray]]:
    """A fresh copy of ``preprocessor`` fitted on ``fit_on``'s rows only, and the matrices of ``fit_on``
    and of each of ``others`` through it (``preprocessor`` itself is left unfitted)."""
    fitted = clone(preprocessor).fit(as_frame(fit_on, features))
    return fitted, [transform(fitted, X, features) for X in (fit_on, *others)]


def save_preprocessor(preprocessor: ColumnTransformer, directory: Path) -> str:
    """Write the fitted preprocessor as skops into ``directory``; return the file's name."""
    atomic_write_bytes(directory / PREPROCESSING_FILE, dump_trusted({"preprocessor": preprocessor}))
    return PREPROCESSING_FILE


def load_preprocessor(directory: Path) -> ColumnTransformer:
    """The preprocessor saved in ``directory``; refuses a file naming types outside the allow-list.

    Raises:
        UntrustedModelError: the file names a type efimero does not trust.
    """
    state = load_trusted(directory / PREPROCESSING_FILE, also_trusted=PREPROCESSING_TRUSTED)
    preprocessor: ColumnTransformer = state["preprocessor"]
    return preprocessor
