from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from efimero.analysis import analyze as analyze_module
from efimero.analysis import plots
from efimero.analysis.analyze import analyze
from efimero.analysis.importance import combined_ranking, model_importance
from efimero.cli.main import app
from efimero.registry import Registry

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def analysis(tiny_registry, small_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("analysis")
    return analyze(tiny_registry[0], data=small_csv, output=out, export_report=True, shap_rows=120), out


def test_shap_values_add_up_to_the_margin(analysis) -> None:
    result, _ = analysis
    for name, explanation in result.explanations.items():
        rows, features, outputs = explanation.values.shape
        assert (rows, features) == (120, 19) and outputs == len(explanation.outputs)
        reconstructed = explanation.values.sum(axis=1) + explanation.base_values
        np.testing.assert_allclose(reconstructed, explanation.margin, atol=1e-4, err_msg=name)


def test_importance_shares_and_combined_ranking(tiny_registry) -> None:
    bundle = Registry(tiny_registry[0]).load()
    importance = model_importance(bundle)
    assert set(importance["model"]) == set(bundle.models)
    for measure in ("gain", "weight"):
        np.testing.assert_allclose(importance.groupby("model")[measure].sum(), 1.0)
    ranking = combined_ranking(importance)
    assert list(ranking["rank"]) == list(range(1, 20))
    assert ranking["combined_importance"].is_monotonic_decreasing
    row = ranking.iloc[0]
    assert row.combined_importance == pytest.approx((row.classifier_importance + row.regressor_importance) / 2)


def test_movement_is_measured_against_the_previous_version(analysis, tiny_registry) -> None:
    result, _ = analysis
    old, new = tiny_registry[1]
    assert (result.version, result.previous_version) == (new, old)
    assert result.movement["previous_rank"].notna().all()
    assert (result.movement["change"] == result.movement["previous_rank"] - result.movement["rank"]).all()


def test_plots_are_real_pngs_and_the_report_embeds_them(analysis) -> None:
    result, out = analysis
    expected = {"importance_combined", "importance_gain", "importance_weight", "correlations",
                *(f"shap_{name}" for name in result.explanations)}
    assert set(result.plots) == expected
    for path in result.plots.values():
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(expected)
    payload = json.loads((out / "report.json").read_text())
    assert payload["version"] == result.version and len(payload["ranking"]) == 19


def test_every_figure_has_labelled_axes(analysis, monkeypatch, tmp_path) -> None:
    result, _ = analysis
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda figure, path: figures.append(figure) or path)
    plots.plot_combined_ranking(result.ranking, tmp_path / "a.png")
    plots.plot_importance_heatmap(result.importance, "gain", tmp_path / "b.png")
    plots.plot_correlations(result.correlations, tmp_path / "c.png")
    sample = analyze_module.pd.DataFrame(np.zeros((120, 19)), columns=result.ranking_features())
    plots.plot_shap_summary(next(iter(result.explanations.values())), sample, tmp_path / "d.png")
    assert len(figures) == 4
    for figure in figures:
        axis = figure.axes[0]
        assert axis.get_xlabel() and axis.get_ylabel() and axis.get_title()


def test_cli_analyze(tiny_registry, small_csv, tmp_path) -> None:
    result = CliRunner().invoke(app, ["analyze", "--models", str(tiny_registry[0]), "--data", str(small_csv),
                                      "--output", str(tmp_path), "--plot-correlations", "--shap-rows", "50"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "correlations.png").is_file() and not (tmp_path / "report.html").exists()
    assert "Top features" in result.output
