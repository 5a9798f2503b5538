"""Seeded synthetic tables for use cases (``data: {generator: ...}``): the same seed gives the same rows.

- ``classification``: scikit-learn's ``make_classification`` (columns ``x01``…, target ``label``)
  plus a categorical ``segment`` that carries part of the signal.
- ``regression``: ``make_regression`` (target ``target``, or ``target_1``… for several) plus a
  categorical ``region`` with an additive effect.
- ``blobs``: ``make_blobs`` with ``classes`` centres and no target (for clustering).
- ``churn``: the MLOps guide's customer table: tenure, monthly and total charges, contract,
  payment method, internet service, support calls, senior citizen, paperless billing, and
  ``churned`` (about 29 % of customers) drawn from a logistic model of those columns:
  month-to-month contracts, short tenure, high charges, fibre and many support calls churn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import make_blobs, make_classification, make_regression

from efimero.usecases._schema import GeneratorSource


def generate_table(source: GeneratorSource) -> pd.DataFrame:
    """The table ``source`` describes (see the module docstring for each kind's columns)."""
    rng = np.random.default_rng(source.seed)
    if source.kind == "churn":
        frame = _churn(source.rows, rng)
    elif source.kind == "classification":
        frame = _classification(source, rng)
    elif source.kind == "regression":
        frame = _regression(source, rng)
    else:
        x, _ = make_blobs(n_samples=source.rows, n_features=source.features, centers=source.classes,
                          cluster_std=1.0, random_state=source.seed)
        frame = _numbered(x)
    return _punch_holes(frame, source.missing, rng) if source.missing else frame


def _numbered(x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(x, columns=[f"x{i + 1:02d}" for i in range(x.shape[1])])


def _classification(source: GeneratorSource, rng: np.random.Generator) -> pd.DataFrame:
    x, y = make_classification(
        n_samples=source.rows, n_features=source.features, n_informative=max(2, source.features // 2),
        n_redundant=min(2, source.features // 4), n_classes=source.classes, n_clusters_per_class=1,
        flip_y=source.noise, class_sep=1.2, random_state=source.seed,
    )
    frame = _numbered(x)
    shifted = x[:, 0] + rng.normal(0.0, 0.5, len(x))  # segment follows the first column, noisily
    frame["segment"] = np.select([shifted < -0.5, shifted < 0.5], ["bronze", "silver"], "gold")
    frame["label"] = y
    return frame


def _regression(source: GeneratorSource, rng: np.random.Generator) -> pd.DataFrame:
    x, y = make_regression(
        n_samples=source.rows, n_features=source.features, n_informative=max(2, source.features // 2),
        n_targets=source.targets, noise=source.noise * 100, random_state=source.seed,
    )
    frame = _numbered(x)
    regions = rng.choice(np.array(["north", "south", "east", "west"]), size=len(x))
    effect = pd.Series(regions).map({"north": 30.0, "south": -30.0, "east": 10.0, "west": -10.0}).to_numpy()
    y = np.asarray(y).reshape(len(x), -1) + effect[:, None]
    frame["region"] = regions
    names = ["target"] if y.shape[1] == 1 else [f"target_{i + 1}" for i in range(y.shape[1])]
    for i, name in enumerate(names):
        frame[name] = y[:, i]
    return frame


def _churn(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    contract = rng.choice(["month_to_month", "one_year", "two_year"], size=rows, p=[0.55, 0.25, 0.20])
    tenure = np.where(contract == "month_to_month", rng.integers(0, 40, rows), rng.integers(6, 73, rows))
    internet = rng.choice(["dsl", "fiber_optic", "none"], size=rows, p=[0.35, 0.45, 0.20])
    base = np.select([internet == "fiber_optic", internet == "dsl"], [75.0, 50.0], 22.0)
    monthly = np.clip(base + rng.normal(0, 15, rows), 18.0, 120.0).round(2)
    payment = rng.choice(["electronic_check", "mailed_check", "bank_transfer", "credit_card"], size=rows,
                         p=[0.35, 0.2, 0.22, 0.23])
    calls = rng.poisson(1.5, rows)
    senior = (rng.random(rows) < 0.16).astype(int)
    paperless = (rng.random(rows) < 0.6).astype(int)
    logit = 1.6 * (-2.0 + 2.6 * (contract == "month_to_month") - 1.2 * (contract == "two_year") - 0.05 * tenure
                   + 0.03 * (monthly - 65) + 0.6 * (calls - 1.5) + 0.7 * (internet == "fiber_optic")
                   + 0.5 * (payment == "electronic_check") + 0.3 * senior + 0.2 * paperless)
    churned = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return pd.DataFrame({
        "tenure_months": tenure,
        "monthly_charges": monthly,
        "total_charges": (monthly * tenure * rng.uniform(0.95, 1.05, rows)).round(2),
        "contract": contract,
        "payment_method": payment,
        "internet_service": internet,
        "support_calls": calls,
        "senior_citizen": senior,
        "paperless_billing": paperless,
        "churned": churned,
    })


def _punch_holes(frame: pd.DataFrame, share: float, rng: np.random.Generator) -> pd.DataFrame:
    """Empty a ``share`` of the cells of every feature column (targets stay whole)."""
    frame = frame.copy()
    for column in frame.columns:
        if column.startswith(("x", "segment", "region")):
            frame[column] = frame[column].mask(rng.random(len(frame)) < share)
    return frame
