"""Feature importance per model (gain and weight) and the combined ranking of the guide."""

from __future__ import annotations

import numpy as np
import pandas as pd

from efimero.training import ModelBundle

IMPORTANCE_TYPES = ("gain", "weight")


def model_importance(bundle: ModelBundle) -> pd.DataFrame:
    """Long table: model, kind, feature, gain, weight; each measure sums to 1 within a model.

    XGBoost names features f0…f18 when trained on arrays; they are mapped back to the
    bundle's feature names. Features a model never splits on get 0.
    """
    rows = []
    for name, model in bundle.models.items():
        scores = {kind: model.booster.get_score(importance_type=kind) for kind in IMPORTANCE_TYPES}
        totals = {kind: sum(values.values()) or 1.0 for kind, values in scores.items()}
        for index, feature in enumerate(bundle.feature_names):
            key = f"f{index}" if f"f{index}" in scores["gain"] or f"f{index}" in scores["weight"] else feature
            rows.append({
                "model": name,
                "kind": model.kind,
                "feature": feature,
                **{kind: scores[kind].get(key, 0.0) / totals[kind] for kind in IMPORTANCE_TYPES},
            })
    return pd.DataFrame(rows)


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
