"""`efimero analyze`: importance, SHAP and correlations of a version, as plots and a report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from efimero._report import Html, image_tag, table, write_report
from efimero.analysis import plots
from efimero.analysis.explain import Explanation, explain
from efimero.analysis.importance import combined_ranking, model_importance, ranking_movement
from efimero.data.validate import load_training_data
from efimero.registry import Registry


@dataclass
class AnalysisResult:
    version: str
    previous_version: str | None
    importance: pd.DataFrame
    ranking: pd.DataFrame
    movement: pd.DataFrame
    explanations: dict[str, Explanation]
    correlations: pd.DataFrame
    plots: dict[str, Path] = field(default_factory=dict)
    report: tuple[Path, Path] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "previous_version": self.previous_version,
            "ranking": self.ranking.to_dict(orient="records"),
            "movement": self.movement.replace({np.nan: None}).to_dict(orient="records"),
            "importance": self.importance.to_dict(orient="records"),
            "shap_mean_abs": {
                name: {out: dict(zip(self.ranking_features(), e.mean_abs()[:, i].round(6).tolist(), strict=True))
                       for i, out in enumerate(e.outputs)}
                for name, e in self.explanations.items()
            },
            "top_correlations": top_correlations(self.correlations).to_dict(orient="records"),
            "plots": {name: str(path) for name, path in self.plots.items()},
            "report": [str(p) for p in self.report] if self.report else None,
        }

    def ranking_features(self) -> list[str]:
        return list(self.importance["feature"].drop_duplicates())


def top_correlations(correlations: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The most strongly correlated feature pairs (each pair once)."""
    upper = correlations.where(np.triu(np.ones(correlations.shape, dtype=bool), k=1))
    pairs = upper.stack().reset_index()
    pairs.columns = ["feature_a", "feature_b", "correlation"]
    return pairs.reindex(pairs["correlation"].abs().sort_values(ascending=False).index).head(top)


def _previous(registry: Registry, version: str | None) -> str | None:
    versions = registry.versions()
    index = versions.index(version) if version in versions else len(versions)
    return versions[index - 1] if index > 0 else None


def analyze(
    models: str | Path,
    *,
    data: str | Path,
    output: str | Path = "analysis",
    version: str | None = None,
    plot_importance: bool = False,
    plot_correlations: bool = False,
    export_report: bool = False,
    shap_rows: int = 500,
    seed: int = 0,
) -> AnalysisResult:
    """Analyse one registry version on ``data``: importance, SHAP, correlations, movement.

    Example:
        >>> result = analyze("models/", data="data/train.csv", export_report=True)  # doctest: +SKIP
        >>> result.ranking.head(3)["feature"].tolist()                               # doctest: +SKIP
    """
    registry = Registry(models)
    bundle = registry.load(version)
    frame, _ = load_training_data(data, allow_duplicates=True)
    features = frame[bundle.feature_names]
    sample = features.sample(min(shap_rows, len(features)), random_state=seed)
    importance = model_importance(bundle)
    ranking = combined_ranking(importance)
    previous = _previous(registry, bundle.version)
    previous_ranking = combined_ranking(model_importance(registry.load(previous))) if previous else None
    result = AnalysisResult(
        version=bundle.version or "",
        previous_version=previous,
        importance=importance,
        ranking=ranking,
        movement=ranking_movement(ranking, previous_ranking),
        explanations=explain(bundle, sample),
        correlations=features.corr(numeric_only=True),
    )
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    if plot_importance or export_report:
        result.plots["importance_combined"] = plots.plot_combined_ranking(ranking, out / "importance_combined.png")
        for measure in ("gain", "weight"):
            result.plots[f"importance_{measure}"] = plots.plot_importance_heatmap(
                importance, measure, out / f"importance_{measure}.png")
        for name, explanation in result.explanations.items():
            result.plots[f"shap_{name}"] = plots.plot_shap_summary(explanation, sample, out / f"shap_{name}.png")
    if plot_correlations or export_report:
        result.plots["correlations"] = plots.plot_correlations(features, out / "correlations.png")
    if export_report:
        result.report = _report(result, out, data=str(data), rows=len(frame), shap_rows=len(sample))
    return result


def _movement_cell(change: float) -> str:
    if pd.isna(change):
        return Html("<span class='neutral'>new</span>")
    if change > 0:
        return Html(f"<span class='good'>▲ {int(change)}</span>")
    if change < 0:
        return Html(f"<span class='bad'>▼ {int(-change)}</span>")
    return Html("<span class='neutral'>=</span>")


def _report(result: AnalysisResult, out: Path, *, data: str, rows: int, shap_rows: int) -> tuple[Path, Path]:
    figures = result.plots
    since = f"since {result.previous_version}" if result.previous_version else "(no earlier version in the registry)"
    ranking_rows = []
    m: Any  # a row of the movement table
    for m in result.movement.itertuples():
        ranking_rows.append((m.feature, int(m.rank), m.combined_importance,
                             "—" if pd.isna(m.previous_rank) else int(m.previous_rank), _movement_cell(m.change)))
    sections = [
        ("Top features and how they moved",
         "<p>Combined ranking: the mean of the classifiers' and the regressor's share of total gain. "
         f"Movement {since}.</p>"
         + table(["feature", "rank", "combined importance", "previous rank", "movement"], ranking_rows)
         + image_tag(figures["importance_combined"], "combined importance")),
        ("Importance per model",
         "<p>Gain: the average loss reduction of a feature's splits. Weight: how often it is split on.</p>"
         + image_tag(figures["importance_gain"], "gain per model")
         + image_tag(figures["importance_weight"], "weight per model")),
        ("SHAP values (TreeExplainer)",
         f"<p>Mean |SHAP| on {shap_rows} sampled rows, per model and output, in margin units.</p>"
         + "".join(image_tag(figures[f"shap_{name}"], f"SHAP {name}") for name in result.explanations)),
        ("Feature correlations",
         image_tag(figures["correlations"], "correlation heatmap")
         + table(["feature", "feature", "correlation"],
                 [(p.feature_a, p.feature_b, p.correlation)
                  for p in top_correlations(result.correlations).itertuples()])),
    ]
    return write_report(out, "report", f"Feature analysis of {result.version}",
                        f"{rows} rows of {data}", sections, result.to_dict())
