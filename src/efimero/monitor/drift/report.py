"""The drift report on disk: one PNG per column, ``drift.html`` (plots inline) and ``drift.json``.

Each PNG overlays the reference and current distributions of one column as shares of rows
(numeric columns: a shared histogram over the pooled 0.5–99.5 % range, values beyond it counted
in the end bins; categorical columns: bars per category), titled with the column's verdict and
its statistics. matplotlib loads only when a report is written, so ``detect_drift`` stays cheap.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from efimero.monitor.drift.dataset import DATASET_DRIFT, NO_DRIFT, ColumnDrift, DriftReport
from efimero.monitor.drift.registry import STATISTICS, get_statistic, prepare_pair
from efimero.schema import CSS_TASK

if TYPE_CHECKING:
    from matplotlib.axes import Axes

HISTOGRAM_BINS = 30
MAX_CATEGORIES = 20
"""Categorical plots show the most common categories only."""
_COLOURS = ("#4c72b0", "#dd8452")
_UNITS = {feature.name: feature.unit for feature in CSS_TASK.features}
_GRID = "display:grid;grid-template-columns:repeat(auto-fill,minmax(24rem,1fr));gap:.5rem"


def _file_name(column: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", column).strip("._") or "column"
    name, suffix = f"drift_{stem}.png", 2
    while name in taken:
        name, suffix = f"drift_{stem}_{suffix}.png", suffix + 1
    taken.add(name)
    return name


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _numeric_plot(axis: Axes, ref: np.ndarray, cur: np.ndarray, labels: Sequence[str]) -> None:
    pooled = np.concatenate([ref, cur])
    low, high = np.quantile(pooled, [0.005, 0.995])
    if low == high:
        low, high = float(pooled.min()), float(pooled.max())
    if low == high:
        low, high = low - 0.5, high + 0.5
    if np.all(pooled == np.round(pooled)) and high - low <= 2 * HISTOGRAM_BINS:  # one bar per integer
        low, high = np.floor(low), np.ceil(high)
        edges = np.arange(low - 0.5, high + 1.0)
    else:
        edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    for sample, label, colour in zip((ref, cur), labels, _COLOURS, strict=True):
        axis.hist(np.clip(sample, low, high), bins=edges.tolist(), weights=np.full(len(sample), 1 / len(sample)),
                  histtype="stepfilled", alpha=0.45, color=colour, edgecolor=colour, label=f"{label} (n={len(sample)})")


def _categorical_plot(axis: Axes, ref: np.ndarray, cur: np.ndarray, labels: Sequence[str]) -> None:
    pooled = pd.Series(np.concatenate([ref, cur])).value_counts()
    categories = sorted(pooled.index[:MAX_CATEGORIES], key=lambda c: (isinstance(c, str), c))
    x = np.arange(len(categories))
    for offset, sample, label, colour in zip((-0.2, 0.2), (ref, cur), labels, _COLOURS, strict=True):
        counts = pd.Series(sample).value_counts()
        shares = [counts.get(category, 0) / len(sample) for category in categories]
        axis.bar(x + offset, shares, 0.4, color=colour, alpha=0.8, label=f"{label} (n={len(sample)})")
    axis.set_xticks(x, [_label(c) for c in categories], rotation=30 if len(categories) > 4 else 0,
                    ha="right" if len(categories) > 4 else "center")


def _stats_line(column: ColumnDrift) -> str:
    return " · ".join(f"{get_statistic(r.name).label} {r.score:.3g}" for r in column.stats.values())


def plot_drift(report: DriftReport, reference: pd.DataFrame, current: pd.DataFrame, output_dir: str | Path, *,
               labels: Sequence[str] = ("reference", "current")) -> dict[str, Path]:
    """Write one PNG per compared column (features, then predictions) under ``output_dir``; return the paths.

    Example:
        >>> plot_drift(detect_drift(ref, cur), ref, cur, "report/")  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    from efimero._report import save_figure

    (output_dir := Path(output_dir)).mkdir(parents=True, exist_ok=True)
    plots: dict[str, Path] = {}
    taken: set[str] = set()
    for column in (*report.features, *report.predictions):
        ref, cur = prepare_pair(reference[column.column], current[column.column], column.feature_type)
        figure, axis = plt.subplots(figsize=(5.6, 3.4))
        if column.feature_type == "numeric":
            _numeric_plot(axis, ref, cur, labels)
        else:
            _categorical_plot(axis, ref, cur, labels)
        unit = _UNITS.get(column.column)
        verdict = "DRIFTED" if column.drifted else "no drift"
        axis.set(xlabel=f"{column.column} ({unit})" if unit else column.column, ylabel="share of rows")
        axis.set_title(f"{column.column}: {verdict}\n{_stats_line(column)}", fontsize=10,
                       color="#c62828" if column.drifted else "#1c1f24")
        axis.legend(fontsize="small")
        plots[column.column] = save_figure(figure, output_dir / _file_name(column.column, taken))
    return plots


def _test_name(name: str) -> str:
    return get_statistic(name).label.removesuffix(" p")


def _rows(columns: Sequence[ColumnDrift], *, importance: bool = False) -> list[list[Any]]:
    from efimero._report import Html

    def score(column: ColumnDrift, name: str) -> Any:
        result = column.stats.get(name)
        if result is None:
            return "—"
        text = f"{result.score:.4g}"
        return Html(f"<span class='bad'>{text}</span>") if result.drifted else text

    rows = []
    for column in columns:
        test = column.test
        flag = Html("<span class='bad'>drifted</span>" if column.drifted else "<span class='good'>no</span>")
        weight = [f"{column.importance:.3f}" if column.importance is not None else "—"] if importance else []
        rows.append([column.column, column.feature_type, *weight, _test_name(test.name) if test else "—",
                     score(column, test.name) if test else "—", score(column, "psi"), score(column, "wasserstein"),
                     score(column, "jensen_shannon"), flag, column.reason])
    return rows


_HEADERS = ["column", "type", "test", "p-value", "PSI", "W/σ", "JS", "drifted", "why"]
_WEIGHTED_HEADERS = [*_HEADERS[:2], "importance", *_HEADERS[2:]]



def export_report(report: DriftReport, reference: pd.DataFrame, current: pd.DataFrame, output_dir: str | Path, *,
                  labels: Sequence[str] = ("reference", "current")) -> tuple[Path, Path]:
    """Write the per-column PNGs, ``drift.html`` (verdict, tables, plots inline) and ``drift.json``.

    Args:
        report: what :func:`~efimero.monitor.drift.detect_drift` found on ``reference`` and ``current``.
        reference: the reference data the report was computed on.
        current: the current data the report was computed on.
        output_dir: folder for the files (created when missing).
        labels: names of the two datasets in legends and the subtitle (e.g. their file names).

    Returns:
        The paths of ``drift.html`` and ``drift.json``.

    Example:
        >>> export_report(detect_drift(ref, cur), ref, cur, "report/")  # doctest: +SKIP
    """
    from efimero._report import image_tag, table, write_report

    output_dir = Path(output_dir)
    plots = plot_drift(report, reference, current, output_dir, labels=labels)
    weighted = report.weighted_drift_share is not None
    css = "bad" if report.verdict == DATASET_DRIFT else "good" if report.verdict == NO_DRIFT else "neutral"
    sections = [("Verdict", f"<p class='verdict {css}'>{html.escape(report.verdict)}</p>"
                            f"<p>{html.escape(report.summary)}.</p>"
                            f"<p class='meta'>Rule: {html.escape(report.rule)}.</p>")]
    sections.append(("Features", table(_WEIGHTED_HEADERS if weighted else _HEADERS,
                                       _rows(report.features, importance=weighted))))
    if report.predictions:
        sections.append(("Predicted classes", table(_HEADERS, _rows(report.predictions))))
    limits = [(name, statistic.description, statistic.kind.replace("_", "-"), ", ".join(statistic.feature_types),
               ("p < " if statistic.kind == "p_value" else "≥ ") + f"{report.thresholds[name]:g}")
              for name, statistic in STATISTICS.items() if name in report.thresholds]
    sections.append(("Statistics and thresholds", table(["name", "statistic", "returns", "accepts", "drift when"],
                                                        limits)))
    images = "".join(image_tag(path, f"{name}: {labels[0]} vs {labels[1]}") for name, path in plots.items())
    sections.append(("Distributions", f"<div style='{_GRID}'>{images}</div>"))
    subtitle = (f"{labels[0]}: {report.reference_rows} rows; {labels[1]}: {report.current_rows} rows; "
                f"{len(report.features)} features, {len(report.predictions)} predicted class columns")
    payload = report.to_dict() | {"labels": list(labels), "plots": {name: str(path) for name, path in plots.items()}}
    return write_report(output_dir, "drift", f"Data drift: {report.verdict}", subtitle, sections, payload)
