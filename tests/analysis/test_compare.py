"""Model comparison: metrics side by side, paired bootstrap, McNemar, verdict, plots, report, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import typer
from scipy import stats
from typer.testing import CliRunner

from efimero._api import train
from efimero.analysis.compare import (
    B_BETTER,
    B_WORSE,
    NO_DIFFERENCE,
    compare_versions,
    export_report,
    mcnemar,
    paired_bootstrap,
    plot_comparison,
)
from efimero.cli.compare import compare
from efimero.config import load_training_config
from efimero.data import write_table
from efimero.data.generate import generate_dataset
from efimero.data.validate import load_training_data
from efimero.errors import DataError, EfimeroError
from efimero.registry import Registry
from efimero.bundle import Preprocessor
from efimero.training.metrics import evaluate

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAST = {"n_bootstrap": 300, "latency_samples": 20}


@pytest.fixture(scope="module")
def test_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_table(generate_dataset(1000, seed=11), tmp_path_factory.mktemp("compare") / "test.csv")


@pytest.fixture(scope="module")
def tiny_version(tiny_registry: tuple[Path, list[str]]) -> Path:
    root, versions = tiny_registry
    return root / versions[0]


@pytest.fixture(scope="module")
def strong_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A version trained on ten times the tiny registry's data with default-sized models."""
    directory = tmp_path_factory.mktemp("strong")
    data = write_table(generate_dataset(3000, seed=5), directory / "train.csv")
    config = load_training_config(overrides={"training": {"data": {"cv_folds": 0}, "n_jobs": 1}})
    run = train(data, output=directory / "models", config=config)
    return directory / "models" / run.version


@pytest.fixture(scope="module")
def better(tiny_version: Path, strong_version: Path, test_csv: Path):
    return compare_versions(tiny_version, strong_version, test_csv, **FAST)


def test_a_version_against_itself_shows_no_difference(tiny_version: Path, test_csv: Path) -> None:
    result = compare_versions(tiny_version, tiny_version, test_csv, **FAST)
    assert result.verdict == NO_DIFFERENCE
    assert {t.kind for t in result.targets} == {"classification", "regression"} and len(result.targets) == 11
    for target in result.targets:
        d = target.difference
        assert d.observed == d.mean == 0 and d.low <= 0 <= d.high, target
        assert target.metrics_a == target.metrics_b and target.outcome == "no difference"
    for target in result.group("classification"):
        assert (target.mcnemar.b, target.mcnemar.c, target.mcnemar.p_value) == (0, 0, 1.0)
    assert all(t.difference.ratio[0] == pytest.approx(1.0) for t in result.group("regression"))


def test_more_data_is_better_and_the_reverse_is_worse(better, tiny_version, strong_version, test_csv) -> None:
    assert better.verdict == B_BETTER, better.to_dict()
    assert any(t.outcome == "better" for t in better.targets) and not any(t.outcome == "worse" for t in better.targets)
    assert "a regression anywhere blocks promotion" in better.rule and "significantly better" in better.reasons[0]
    worse = compare_versions(strong_version, tiny_version, test_csv, **FAST)
    assert worse.verdict == B_WORSE and "significantly worse" in worse.reasons[0]
    for forward, backward in zip(better.targets, worse.targets):
        assert forward.target == backward.target
        assert forward.difference.observed == pytest.approx(-backward.difference.observed)
        if forward.mcnemar:
            assert (forward.mcnemar.b, forward.mcnemar.c) == (backward.mcnemar.c, backward.mcnemar.b)


def test_metrics_match_the_training_evaluation(better, tiny_version, strong_version, test_csv) -> None:
    frame, _ = load_training_data(test_csv, allow_duplicates=True)
    for side, path in (("a", tiny_version), ("b", strong_version)):
        expected = evaluate(Registry(path.parent).load(path.name), frame)
        for target in better.targets:
            metrics = getattr(target, f"metrics_{side}")
            reference = expected[target.kind][target.target]
            for name in metrics:
                assert metrics[name] == pytest.approx(reference[name], rel=1e-6), (side, target.target, name)


def test_bootstrap_is_reproducible_and_seeded(better, tiny_version, strong_version, test_csv) -> None:
    again = compare_versions(tiny_version, strong_version, test_csv, **FAST)
    other_seed = compare_versions(tiny_version, strong_version, test_csv, seed=1, **FAST)
    assert [t.difference for t in again.targets] == [t.difference for t in better.targets]
    assert [t.difference for t in other_seed.targets] != [t.difference for t in better.targets]


def test_vectorised_bootstrap_matches_a_plain_loop() -> None:
    rng = np.random.default_rng(7)
    n, replicates = 50, 40
    correct = (rng.integers(0, 2, (n, 2)).astype(float), rng.integers(0, 2, (n, 2)).astype(float))
    squared = (rng.random((n, 3)), rng.random((n, 3)))
    accuracy, rmse_diff, ratio = paired_bootstrap(correct, squared, n_bootstrap=replicates, seed=3)
    rows = np.random.default_rng(3).integers(0, n, size=(replicates, n))
    for i, sample in enumerate(rows):
        np.testing.assert_allclose(accuracy[i], correct[1][sample].mean(0) - correct[0][sample].mean(0), atol=1e-12)
        rmse_a, rmse_b = np.sqrt(squared[0][sample].mean(0)), np.sqrt(squared[1][sample].mean(0))
        np.testing.assert_allclose(rmse_diff[i], rmse_b - rmse_a, atol=1e-12)
        np.testing.assert_allclose(ratio[i], rmse_b / rmse_a, rtol=1e-12)


def test_mcnemar_matches_a_hand_count(better, tiny_version, strong_version, test_csv) -> None:
    frame, _ = load_training_data(test_csv, allow_duplicates=True)
    predicted = [Registry(p.parent).load(p.name).predict_frame(frame) for p in (tiny_version, strong_version)]
    for target in better.group("classification"):
        truth = frame[target.target].to_numpy()
        right_a, right_b = predicted[0][target.target].to_numpy() == truth, predicted[1][target.target].to_numpy() == truth
        b, c = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
        assert (target.mcnemar.b, target.mcnemar.c) == (b, c)
        if b + c >= 25:
            statistic = (abs(b - c) - 1) ** 2 / (b + c)
            assert target.mcnemar.statistic == pytest.approx(statistic)
            assert target.mcnemar.p_value == pytest.approx(stats.chi2.sf(statistic, 1))


def test_mcnemar_exact_and_chi_squared() -> None:
    exact = mcnemar(np.array([True] * 3 + [False] * 10), np.array([False] * 3 + [True] * 10))
    tail = sum(math.comb(13, k) for k in range(4)) / 2**13
    assert (exact.b, exact.c, exact.method) == (3, 10, "exact binomial")
    assert exact.p_value == pytest.approx(2 * tail)
    large = mcnemar(np.array([True] * 30 + [False] * 10), np.array([False] * 30 + [True] * 10))
    assert large.method.startswith("chi-squared") and large.statistic == pytest.approx(19**2 / 40)
    assert large.p_value == pytest.approx(stats.chi2.sf(19**2 / 40, df=1))


def test_plots_are_png_and_the_report_holds_the_verdict(better, tmp_path: Path) -> None:
    plots = plot_comparison(better, tmp_path)
    assert set(plots) == {"accuracy", "rmse"}
    for path in plots.values():
        content = path.read_bytes()
        assert content.startswith(PNG_SIGNATURE) and len(content) > 5_000, path
    html_path, json_path = export_report(better, tmp_path / "report")
    page = html_path.read_text(encoding="utf-8")
    assert html_path.name == "compare.html" and B_BETTER in page and "McNemar" in page
    assert page.count("data:image/png;base64,") == 2 and "blocks promotion" in page
    payload = json.loads(json_path.read_text(encoding="utf-8"))
    assert payload["verdict"] == B_BETTER and len(payload["targets"]) == 11


def _mismatched(source: Path, tmp_path: Path, *, drop: str | None = None, rename: str | None = None) -> Path:
    bundle = Registry(source.parent).load(source.name)
    if drop:
        del bundle.models[drop]
    if rename:
        names = [rename + "_renamed" if name == rename else name for name in bundle.feature_names]
        bundle.preprocessor = Preprocessor(names, bundle.preprocessor.mean, bundle.preprocessor.scale)
    root = tmp_path / "mismatch"
    return root / Registry(root).save(bundle, metrics={}, metadata={})


def test_mismatched_versions_raise_a_clear_error(tiny_version: Path, test_csv: Path, tmp_path: Path) -> None:
    no_font = _mismatched(tiny_version, tmp_path, drop="css_class_font")
    with pytest.raises(EfimeroError, match=r"classification targets differ \(only in A: css_class_font; only in B: none\)"):
        compare_versions(tiny_version, no_font, test_csv, **FAST)
    renamed = _mismatched(tiny_version, tmp_path, rename="hour_of_day")
    with pytest.raises(EfimeroError, match=r"feature names differ \(only in A: hour_of_day; only in B: hour_of_day_renamed\)"):
        compare_versions(tiny_version, renamed, test_csv, **FAST)


def test_bad_inputs_raise_efimero_errors(tiny_version: Path, test_csv: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text("hour_of_day\n1\n")
    with pytest.raises(DataError, match="column is missing"):
        compare_versions(tiny_version, tiny_version, broken)
    with pytest.raises(EfimeroError, match="confidence strictly between 0 and 1"):
        compare_versions(tiny_version, tiny_version, test_csv, confidence=1.5)


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(compare)
    return app


def test_cli_prints_tables_and_verdict_and_exits_0(tiny_version, strong_version, test_csv, tmp_path) -> None:
    output = tmp_path / "comparison"
    args = ["--model-a", tiny_version, "--model-b", strong_version, "--test-data", test_csv,
            "--n-bootstrap", 200, "--export-report", "--output", output]
    result = CliRunner().invoke(_app(), [str(a) for a in args])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Class targets" in text and "McNemar" in text and "Latency" in text and f"Verdict: {B_BETTER}" in text
    assert (output / "compare.html").is_file() and (output / "compare_accuracy.png").is_file()


def test_cli_json_parses_and_errors_exit_1(tiny_version, strong_version, test_csv, tmp_path) -> None:
    runner = CliRunner()
    args = ["--model-a", strong_version, "--model-b", tiny_version, "--test-data", test_csv,
            "--n-bootstrap", 200, "--json"]
    result = runner.invoke(_app(), [str(a) for a in args])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["verdict"] == B_WORSE and payload["rule"] and "plots" not in payload
    missing = runner.invoke(_app(), ["--model-a", str(tmp_path / "nowhere"), "--model-b", str(tiny_version),
                                     "--test-data", str(test_csv), "--json"])
    assert missing.exit_code == 1
    assert json.loads(missing.stdout)["error"] == "VersionNotFoundError"
