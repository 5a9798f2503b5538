"""The figures of the analysis report; every axis is labelled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import shap

from efimero._report import plt, save_figure
from efimero.analysis.explain import Explanation


def plot_combined_ranking(ranking: pd.DataFrame, path: Path) -> Path:
    figure, axis = plt.subplots(figsize=(8, 6.5))
    ordered = ranking.sort_values("combined_importance")
    positions = np.arange(len(ordered))
    axis.barh(positions - 0.2, ordered["classifier_importance"], height=0.4, label="classifiers (mean)",
              color="#4c78a8")
    axis.barh(positions + 0.2, ordered["regressor_importance"], height=0.4, label="regressor", color="#f58518")
    axis.plot(ordered["combined_importance"], positions, "k|", markersize=12, label="combined")
    axis.set_yticks(positions, ordered["feature"])
    axis.set_xlabel("share of total gain")
    axis.set_ylabel("feature")
    axis.set_title("Feature importance (gain), combined ranking")
    axis.legend(loc="lower right")
    return save_figure(figure, path)


def plot_importance_heatmap(importance: pd.DataFrame, measure: str, path: Path) -> Path:
    matrix = importance.pivot_table(index="feature", columns="model", values=measure, aggfunc="sum")
    matrix = matrix.loc[matrix.mean(axis=1).sort_values(ascending=False).index]
    figure, axis = plt.subplots(figsize=(7, 7))
    image = axis.imshow(matrix.to_numpy(), cmap="viridis", aspect="auto")
    axis.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=30, ha="right")
    axis.set_yticks(range(matrix.shape[0]), matrix.index)
    axis.set_xlabel("model")
    axis.set_ylabel("feature")
    axis.set_title(f"Importance by {measure}, per model (each column sums to 1)")
    figure.colorbar(image, ax=axis, label=f"share of {measure}")
    return save_figure(figure, path)


def plot_correlations(features: pd.DataFrame, path: Path) -> Path:
    correlation = features.corr(numeric_only=True)
    figure, axis = plt.subplots(figsize=(9, 8))
    image = axis.imshow(correlation.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    labels = list(correlation.columns)
    axis.set_xticks(range(len(labels)), labels, rotation=90)
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("feature")
    axis.set_ylabel("feature")
    axis.set_title("Pearson correlation between features")
    figure.colorbar(image, ax=axis, label="correlation coefficient")
    return save_figure(figure, path)


def plot_shap_summary(explanation: Explanation, features: pd.DataFrame, path: Path) -> Path:
    """shap's summary plot of one model: mean |SHAP| per feature, stacked over its outputs."""
    per_output = [explanation.values[:, :, i] for i in range(len(explanation.outputs))]
    plt.figure()
    shap.summary_plot(per_output, features, feature_names=list(features.columns), class_names=explanation.outputs,
                      plot_type="bar", show=False, max_display=len(features.columns))
    figure = plt.gcf()
    axis = figure.axes[0]
    axis.set_xlabel("mean |SHAP value| (model margin units)")
    axis.set_ylabel("feature")
    axis.set_title(f"SHAP summary: {explanation.model}")
    return save_figure(figure, path)
