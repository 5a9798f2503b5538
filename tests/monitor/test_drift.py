"""Drift statistics against scipy's own computations, the column rule, the dataset verdict, report and CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from scipy import stats
from scipy.spatial import distance
from typer.testing import CliRunner

from efimero.cli.drift import drift
from efimero.data import write_table
from efimero.data.generate import generate_dataset
from efimero.errors import ConfigError, DataError
from efimero.features import BUSINESS_HOURS, time_intensity
from efimero.monitor import (
    DATASET_DRIFT,
    FEATURE_DRIFT,
    NO_DRIFT,
    PREDICTION_DRIFT,
    STATISTICS,
    StatResult,
    detect_drift,
    export_report,
    get_statistic,
    statistics_for,
)
from efimero.monitor.drift import column_drifted, infer_feature_types
from efimero.monitor.drift.psi import EPSILON, psi_band, psi_from_counts
from efimero.schema import FEATURE_NAMES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
N = 2000
SHIFTED = {"hour_of_day", "is_business_hours", "time_intensity"}


@pytest.fixture(scope="module")
def normals() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """N(0, 1), an independent N(0, 1) and N(1, 1), n = 2000 each, seeded."""
    rng = np.random.default_rng(20240601)
    return rng.normal(0, 1, N), rng.normal(0, 1, N), rng.normal(1, 1, N)


@pytest.fixture(scope="module")
def categories() -> tuple[np.ndarray, np.ndarray]:
    """Shares 50/30/20 % against 30/30/40 %, 1000 rows each."""
    same = np.repeat(["a", "b", "c"], [500, 300, 200])
    changed = np.repeat(["a", "b", "c"], [300, 300, 400])
    return same, changed


def night_shift(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose visits happen 12 hours later (day → night), with the hour features recomputed."""
    shifted = frame.copy()
    hour = (shifted["hour_of_day"].to_numpy() + 12) % 24
    shifted["hour_of_day"] = hour
    shifted["is_business_hours"] = (np.isin(hour, BUSINESS_HOURS) & (shifted["is_weekend"] == 0)).astype(int)
    shifted["time_intensity"] = np.round(time_intensity(hour), 4)
    return shifted


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return generate_dataset(3000, seed=1)


@pytest.fixture(scope="module")
def same_distribution() -> pd.DataFrame:
    return generate_dataset(3000, seed=2)


@pytest.fixture(scope="module")
def night(same_distribution: pd.DataFrame) -> pd.DataFrame:
    return night_shift(same_distribution)


# --- the registry ----------------------------------------------------------------------------------

def test_registry_lists_every_statistic_with_kind_types_and_threshold() -> None:
    assert list(STATISTICS) == ["ks", "psi", "wasserstein", "jensen_shannon", "chi2"]
    assert [s.name for s in statistics_for("numeric")] == ["ks", "psi", "wasserstein", "jensen_shannon"]
    assert [s.name for s in statistics_for("categorical")] == ["psi", "jensen_shannon", "chi2"]
    expected = {"ks": ("p_value", 0.05), "chi2": ("p_value", 0.05), "psi": ("distance", 0.1),
                "wasserstein": ("distance", 0.1), "jensen_shannon": ("distance", 0.1)}
    assert {name: (s.kind, s.default_threshold) for name, s in STATISTICS.items()} == expected
    # drift direction: p-values below the threshold, distances at or above it
    assert get_statistic("ks").is_drift(0.01, 0.05) and not get_statistic("ks").is_drift(0.05, 0.05)
    assert get_statistic("psi").is_drift(0.1, 0.1) and not get_statistic("psi").is_drift(0.09, 0.1)


def test_registry_refuses_wrong_feature_type_unknown_names_and_bad_thresholds() -> None:
    with pytest.raises(DataError, match="numeric"):
        get_statistic("ks").evaluate(["a", "b"], ["a", "b"], feature_type="categorical")
    with pytest.raises(DataError, match="categorical"):
        get_statistic("chi2").evaluate([1.0, 2.0], [1.0, 2.0], feature_type="numeric")
    with pytest.raises(ConfigError, match="must be one of"):
        get_statistic("kolmogorov")
    frame = pd.DataFrame({"x": np.arange(50.0)})
    with pytest.raises(ConfigError, match="'nope'"):
        detect_drift(frame, frame, thresholds={"nope": 0.1})
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        detect_drift(frame, frame, thresholds={"ks": 1.5})
    with pytest.raises(ConfigError, match="share_threshold"):
        detect_drift(frame, frame, share_threshold=0)


# --- each statistic against scipy --------------------------------------------------------------------

def test_ks_is_scipys_p_value(normals: tuple[np.ndarray, ...]) -> None:
    base, same, shifted = normals
    ks = get_statistic("ks")
    identical = ks.evaluate(base, base.copy())
    assert identical == StatResult("ks", 1.0, 0.05, False, "p_value")
    independent = ks.evaluate(base, same)
    assert independent.score == pytest.approx(stats.ks_2samp(base, same).pvalue) and not independent.drifted
    moved = ks.evaluate(base, shifted)
    assert moved.score == pytest.approx(stats.ks_2samp(base, shifted).pvalue, rel=1e-9, abs=1e-300)
    assert moved.score < 1e-10 and moved.drifted


def test_wasserstein_is_scipys_distance_over_the_reference_std(normals: tuple[np.ndarray, ...]) -> None:
    base, same, shifted = normals
    wasserstein = get_statistic("wasserstein")
    assert wasserstein.evaluate(base, base.copy()).score == 0.0
    moved = wasserstein.evaluate(base, shifted)
    assert moved.score == pytest.approx(stats.wasserstein_distance(base, shifted) / np.std(base))
    assert moved.score == pytest.approx(1.0, abs=0.1) and moved.drifted  # a one-σ shift scores about 1
    assert not wasserstein.evaluate(base, same).drifted
    # the normalisation makes one threshold fit any unit
    assert wasserstein.evaluate(base * 1000 + 5, shifted * 1000 + 5).score == pytest.approx(moved.score)
    # a constant reference falls back to the pooled spread; equal constants score 0
    assert wasserstein.evaluate(np.ones(10), np.ones(10)).score == 0.0
    assert wasserstein.evaluate(np.ones(10), np.full(10, 3.0)).score == pytest.approx(2.0)


def test_psi_of_identical_samples_is_zero_and_a_shift_is_significant(normals: tuple[np.ndarray, ...]) -> None:
    base, same, shifted = normals
    psi = get_statistic("psi")
    assert psi.evaluate(base, base.copy()).score == pytest.approx(0.0, abs=1e-12)
    assert psi.evaluate(base, same).score < 0.1
    moved = psi.evaluate(base, shifted)
    assert moved.drifted and psi_band(moved.score) == "significant"
    assert [psi_band(x) for x in (0.05, 0.1, 0.2, 0.25)] == ["stable", "moderate", "moderate", "significant"]


def test_psi_matches_hand_computed_examples() -> None:
    by_hand = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)  # 0.2747
    assert psi_from_counts(np.array([50, 50]), np.array([25, 75])) == pytest.approx(by_hand)
    categorical = get_statistic("psi").evaluate(["a"] * 50 + ["b"] * 50, ["a"] * 25 + ["b"] * 75,
                                                feature_type="categorical")
    assert categorical.score == pytest.approx(by_hand) and categorical.drifted
    # numeric, two quantile bins of [1, 2, 3, 4]: edges 1, 2.5, 4 → reference shares 1/2, 1/2
    from efimero.monitor.drift.psi import psi_numeric

    assert psi_numeric(np.array([1.0, 2, 3, 4]), np.array([1.0, 1, 1, 4]), bins=2) == pytest.approx(by_hand)
    # a value beyond the reference's range lands in the open upper bin, where the reference has EPSILON
    beyond = psi_numeric(np.array([1.0, 2, 3, 4]), np.array([1.0, 1, 4, 5]), bins=2)
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.25 - EPSILON) * math.log(0.25 / EPSILON)
    assert beyond == pytest.approx(expected)


def test_jensen_shannon_is_scipys_base_2_distance_in_unit_interval(normals: tuple[np.ndarray, ...],
                                                                    categories: tuple[np.ndarray, ...]) -> None:
    base, same, shifted = normals
    js = get_statistic("jensen_shannon")
    assert js.evaluate(base, base.copy()).score == pytest.approx(0.0, abs=1e-7)
    moved = js.evaluate(base, shifted)
    assert 0.1 <= moved.score <= 1 and moved.drifted
    assert js.evaluate(shifted, base).score == pytest.approx(moved.score)  # symmetric
    assert not js.evaluate(base, same).drifted
    first, second = categories
    shares = (np.array([0.5, 0.3, 0.2]), np.array([0.3, 0.3, 0.4]))
    result = js.evaluate(first, second, feature_type="categorical")
    assert result.score == pytest.approx(distance.jensenshannon(*shares, base=2))
    assert result.score == pytest.approx(js.evaluate(second, first, feature_type="categorical").score)
    assert js.evaluate(["a"] * 10, ["b"] * 10, feature_type="categorical").score == pytest.approx(1.0)


def test_chi2_is_scipys_contingency_test(categories: tuple[np.ndarray, ...]) -> None:
    same, changed = categories
    chi2 = get_statistic("chi2")
    identical = chi2.evaluate(same, same.copy(), feature_type="categorical")
    assert identical.score == pytest.approx(1.0) and not identical.drifted
    moved = chi2.evaluate(same, changed, feature_type="categorical")
    table = np.array([[500, 300, 200], [300, 300, 400]])
    assert moved.score == pytest.approx(stats.chi2_contingency(table).pvalue)
    assert moved.score < 0.05 and moved.drifted
    # a label only the current data has still counts
    assert chi2.evaluate(["a"] * 100, ["a"] * 80 + ["new"] * 20, feature_type="categorical").drifted
    assert chi2.evaluate([1, 1], [1.0, 1.0], feature_type="categorical").score == 1.0  # one category: 1 and 1.0


# --- the column rule -----------------------------------------------------------------------------------

def test_rule_needs_a_significant_test_and_a_large_distance() -> None:
    rng = np.random.default_rng(7)
    big_a, big_b = rng.normal(0, 1, 100_000), rng.normal(0.03, 1, 100_000)
    tiny_shift = detect_drift(pd.DataFrame({"x": big_a}), pd.DataFrame({"x": big_b})).column("x")
    assert tiny_shift.stats["ks"].drifted  # significant with 100k rows...
    assert not tiny_shift.drifted and "no distance" in tiny_shift.reason  # ...but too small to matter
    small_a, small_b = rng.normal(0, 1, 25), rng.normal(0, 1, 25)
    noisy = detect_drift(pd.DataFrame({"x": small_a}), pd.DataFrame({"x": small_b})).column("x")
    assert noisy.stats["jensen_shannon"].drifted  # 25 rows make histograms noisy...
    assert not noisy.drifted  # ...and the test keeps that from counting
    results = {"ks": StatResult("ks", 0.001, 0.05, True, "p_value"),
               "psi": StatResult("psi", 0.3, 0.1, True, "distance")}
    assert column_drifted(results) == (True, "KS p 0.001 < 0.05; PSI 0.3 ≥ 0.1")


# --- the dataset verdict ---------------------------------------------------------------------------------

def test_feature_types_follow_the_schema_then_the_values(reference: pd.DataFrame) -> None:
    types = infer_feature_types(reference, reference, FEATURE_NAMES)
    categorical = {name for name, kind in types.items() if kind == "categorical"}
    assert categorical == {"is_weekend", "is_business_hours", "is_mobile", "is_tablet", "is_desktop",
                           "touch_enabled", "user_density_group", "accessibility_needs"}
    frame = pd.DataFrame({"label": ["x", "y"] * 10, "small": [1, 2, 3, 4] * 5, "real": np.linspace(0, 1, 20),
                          "flag": [True, False] * 10, "wide": np.arange(20)})
    assert infer_feature_types(frame, frame, list(frame)) == {
        "label": "categorical", "small": "categorical", "real": "numeric", "flag": "categorical", "wide": "numeric"}
    forced = infer_feature_types(frame, frame, list(frame), categorical=["wide"])
    assert forced["wide"] == "categorical" and forced["small"] == "numeric" and forced["label"] == "categorical"


def test_same_distribution_does_not_drift(reference: pd.DataFrame, same_distribution: pd.DataFrame) -> None:
    report = detect_drift(reference, same_distribution)
    assert [c.column for c in report.features] == FEATURE_NAMES
    assert [c.column for c in report.predictions] == ["css_class_density", "css_class_font", "css_class_theme"]
    assert report.verdict == NO_DRIFT and report.drift_share <= 0.1 and not report.dataset_drift
    assert report.prediction_drift is False and report.prediction_share == 0.0
    json.dumps(report.to_dict())  # JSON-ready


def test_night_shift_flags_exactly_the_hour_features(reference: pd.DataFrame, night: pd.DataFrame) -> None:
    report = detect_drift(reference, night)
    assert set(report.drifted_features) == SHIFTED
    assert all(c.drifted == (c.column in SHIFTED) for c in report.features)
    assert report.drift_share == pytest.approx(3 / 19) and 0 <= report.drift_share <= 1
    assert report.verdict == FEATURE_DRIFT and not report.dataset_drift
    assert report.column("hour_of_day").feature_type == "numeric"
    assert report.column("is_business_hours").test.name == "chi2"
    assert detect_drift(reference, night, share_threshold=0.15).verdict == DATASET_DRIFT


def test_prediction_drift_over_the_predicted_classes(reference: pd.DataFrame,
                                                     same_distribution: pd.DataFrame) -> None:
    current = same_distribution.copy()
    current.loc[current.index[: len(current) // 2], "css_class_theme"] = "tema-oscuro"
    report = detect_drift(reference, current)
    assert report.drifted_predictions == ["css_class_theme"] and report.prediction_drift
    assert report.prediction_share == pytest.approx(1 / 3)
    assert report.verdict == PREDICTION_DRIFT and report.drift_share == 0.0
    only_named = detect_drift(reference, current, prediction_columns=["css_class_font"])
    assert [c.column for c in only_named.predictions] == ["css_class_font"] and not only_named.prediction_drift
    assert detect_drift(reference, current, prediction_columns=[]).prediction_drift is None


def test_unusable_input_raises_data_error(reference: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="current data must hold every requested column"):
        detect_drift(reference, reference.drop(columns="hour_of_day"), columns=["hour_of_day"])
    with pytest.raises(DataError, match="hour_of_day"):
        detect_drift(reference, reference.drop(columns="hour_of_day"))
    with pytest.raises(DataError, match="at least one row"):
        detect_drift(reference, reference.iloc[:0])
    empty = reference.assign(hour_of_day=np.nan)
    with pytest.raises(DataError, match="column 'hour_of_day'.*non-missing"):
        detect_drift(reference, empty)
    with pytest.raises(DataError, match="categorical must name compared feature columns"):
        detect_drift(reference, reference, categorical=["hour_of_dya"])
    with pytest.raises(DataError, match="share at least one column"):
        detect_drift(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"b": [1.0]}))


# --- report and CLI -----------------------------------------------------------------------------------

def test_export_writes_pngs_html_and_json(tmp_path: Path, reference: pd.DataFrame, night: pd.DataFrame) -> None:
    columns = ["hour_of_day", "is_business_hours", "total_interactions"]
    report = detect_drift(reference, night, columns=columns, prediction_columns=["css_class_theme"])
    html_path, json_path = export_report(report, reference, night, tmp_path / "out", labels=("train.csv", "now.csv"))
    page = html_path.read_text()
    assert report.verdict == DATASET_DRIFT and "Data drift: dataset drift" in page
    assert "<img src=\"data:image/png;base64," in page and "hour_of_day" in page and "train.csv" in page
    payload = json.loads(json_path.read_text())
    assert payload["verdict"] == DATASET_DRIFT and payload["drift_share"] == pytest.approx(2 / 3)
    assert set(payload["plots"]) == {*columns, "css_class_theme"}
    for path in payload["plots"].values():
        assert Path(path).read_bytes().startswith(PNG_SIGNATURE)


def test_the_report_escapes_every_value_that_comes_from_data(tmp_path: Path, reference: pd.DataFrame,
                                                             night: pd.DataFrame) -> None:
    hostile = "<script>alert(1)</script>"
    renamed = {"hour_of_day": hostile}
    report = detect_drift(reference.rename(columns=renamed), night.rename(columns=renamed), columns=[hostile])
    html_path, _ = export_report(report, reference.rename(columns=renamed), night.rename(columns=renamed),
                                 tmp_path / "out", labels=("<b>train</b>.csv", "now.csv"))
    page = html_path.read_text()
    assert hostile not in page and "<b>train</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<span class='bad'>drifted</span>" in page


def test_cli_reports_drift_and_exits_zero(tmp_path: Path, reference: pd.DataFrame, night: pd.DataFrame) -> None:
    app = typer.Typer()
    app.command()(drift)
    ref_csv = write_table(reference.head(600), tmp_path / "ref.csv")
    cur_csv = write_table(night.head(600), tmp_path / "cur.csv")
    runner = CliRunner()
    shown = runner.invoke(app, ["--reference", str(ref_csv), "--current", str(cur_csv)], env={"COLUMNS": "140"})
    assert shown.exit_code == 0, shown.output
    assert "feature drift" in shown.output and "hour_of_day" in shown.output and "Prediction drift" in shown.output
    as_json = runner.invoke(app, ["--reference", str(ref_csv), "--current", str(cur_csv), "--json"])
    assert as_json.exit_code == 0
    payload = json.loads(as_json.output)
    assert set(payload["drifted_features"]) == SHIFTED and payload["reference"] == str(ref_csv)
    same = runner.invoke(app, ["--reference", str(ref_csv), "--current", str(ref_csv), "--json"])
    assert same.exit_code == 0 and json.loads(same.output)["verdict"] == NO_DRIFT
    missing = runner.invoke(app, ["--reference", str(tmp_path / "nope.csv"), "--current", str(cur_csv), "--json"])
    assert missing.exit_code == 1 and json.loads(missing.output)["error"] == "DataError"
