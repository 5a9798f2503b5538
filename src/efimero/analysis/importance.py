"""Feature importance per model (gain and weight) and the combined ranking of the guide."""

from __future__ import annotations

import numpy as np
import pandas as pd

from efimero.bundle import ModelBundle

IMPORTANCE_TYPES = ("gain", "weight")


def model_importance(bundle: ModelBundle) -> pd.DataFrame:
    """Long table: model, kind, feature, gain, weight; each measure sums to 1 within a model."""
    shares = {kind: bundle.importance(kind) for kind in IMPORTANCE_TYPES}
    return pd.DataFrame([
        {"model": name, "kind": model.kind, "feature": feature,
         **{kind: float(shares[kind][name][index]) for kind in IMPORTANCE_TYPES}}
        for name, model in bundle.models.items()
        for index, feature in enumerate(bundle.feature_names)
    ])


def combined_ranking(importance: pd.DataFrame, measure: str = "gain") -> pd.DataFrame:
    """The guide's combined importance: mean of the classifiers' and the regressors' mean shares.

    Returns one row per feature with ``classifier_importance``, ``regressor_importance``,
    ``combined_importance`` and ``rank`` (1 = most important), sorted by rank.
    """
    by_kind = importance.pivot_table(index="feature", columns="kind", values=measure, aggfunc="mean").fillna(0.0)
    ranking = pd.DataFrame(index=by_kind.index)
    for kind in ("classifier", "regressor"):
        ranking[f"{kind}_importance"] = by_kind[kind] if kind in by_kind else 0.0
    present = [c for c in ("classifier", "regressor") if c in by_kind]
    ranking["combined_importance"] = by_kind[present].mean(axis=1)
    ranking = ranking.sort_values("combined_importance", ascending=False)
    ranking["rank"] = np.arange(1, len(ranking) + 1)
    return ranking.reset_index()


def ranking_movement(current: pd.DataFrame, previous: pd.DataFrame | None, top: int = 10) -> pd.DataFrame:
    """How the top features of ``current`` moved since ``previous`` (positive = climbed)."""
    moved = current.head(top)[["feature", "rank", "combined_importance"]].copy()
    if previous is None:
        moved["previous_rank"] = np.nan
        moved["change"] = np.nan
        return moved
    before = previous.set_index("feature")["rank"]
    moved["previous_rank"] = moved["feature"].map(before)
    moved["change"] = moved["previous_rank"] - moved["rank"]
    return moved
