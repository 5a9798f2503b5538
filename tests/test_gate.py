from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from efimero.cli.main import app
from efimero.config import ValidationSettings
from efimero.data import write_table
from efimero.data.generate import generate_dataset
from efimero.gate import run_validation
from tests.deploy.conftest import MISSING_CLASS, narrow_registry  # noqa: F401 - fixture


def test_a_good_version_passes_every_check(tiny_registry, tmp_path) -> None:
    root, versions = tiny_registry
    test_data = write_table(generate_dataset(400, seed=11), tmp_path / "test.csv")
    report = run_validation(root, test_data=test_data, settings=ValidationSettings(min_accuracy=0.5, min_r2=0.1))
    assert report.passed, report.to_dict()
    assert [c.name for c in report.checks] == ["loading", "prediction", "performance", "accuracy"]
    performance = report.checks[2].values
    assert 0 < performance["avg_ms"] <= performance["p95_ms"] and performance["samples"] == 100
    assert report.version == versions[-1]


def test_tampered_version_fails_loading_only(registry_copy) -> None:
    root, versions = registry_copy()
    (root / versions[-1] / "metrics.json").write_text("{}")
    report = run_validation(root)
    assert not report.passed
    [loading] = report.checks
    assert loading.name == "loading" and "checksum mismatch in metrics.json" in loading.detail


def test_latency_threshold_fails(tiny_registry) -> None:
    report = run_validation(tiny_registry[0], settings=ValidationSettings(max_avg_latency_ms=1e-6))
    assert not report.passed and report.checks[2].status == "FAIL"
    assert "limit 1e-06" in report.checks[2].detail


def test_shuffled_labels_fail_accuracy(tiny_registry, tmp_path) -> None:
    frame = generate_dataset(400, seed=12)
    shuffled = frame.assign(**{c: frame[c].sample(frac=1, random_state=1).to_numpy()
                               for c in ("css_class_theme", "css_class_density", "css_class_font")})
    report = run_validation(tiny_registry[0], test_data=write_table(shuffled, tmp_path / "noise.csv"))
    accuracy = report.checks[-1]
    assert accuracy.status == "FAIL" and "mean accuracy must be ≥ 0.7" in accuracy.detail


def test_invalid_test_data_fails_the_accuracy_check(tiny_registry, tmp_path) -> None:
    path = tmp_path / "broken.csv"
    pd.DataFrame({"hour_of_day": [1]}).to_csv(path, index=False)
    report = run_validation(tiny_registry[0], test_data=path)
    assert report.checks[-1].status == "FAIL" and "column is missing" in report.checks[-1].detail


def test_test_data_with_a_class_the_version_never_saw_fails_accuracy_clearly(narrow_registry, small_frame,
                                                                            small_csv) -> None:
    narrow_root, narrow = narrow_registry
    report = run_validation(narrow_root, test_data=small_csv)
    accuracy = report.checks[-1]
    assert accuracy.name == "accuracy" and accuracy.status == "FAIL"
    assert accuracy.detail.startswith(f"{small_csv} holds class labels that {narrow} was never trained on")
    rows = [i + 1 for i, label in enumerate(small_frame["css_class_theme"]) if label == MISSING_CLASS]
    assert (f"column 'css_class_theme': must be one of the labels {narrow} knows ('tema-claro', 'tema-oscuro') "
            f"— {len(rows)} row(s) fail, first rows {', '.join(map(str, rows[:5]))}") in accuracy.detail
    assert f"(values seen: {MISSING_CLASS})" in accuracy.detail

    result = CliRunner().invoke(app, ["validate", "--models", str(narrow_root), "--test-data", str(small_csv), "--json"])
    assert result.exit_code == 1, result.output
    [check] = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "accuracy"]
    assert check["status"] == "FAIL" and check["detail"] == accuracy.detail
