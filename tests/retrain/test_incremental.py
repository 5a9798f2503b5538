"""Incremental retraining on generated data (no live service): metrics, forgetting, labels."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from efimero._api import train
from efimero.config import IncrementalParameters, ValidationSettings
from efimero.data import write_table
from efimero.data.generate import generate_dataset
from efimero.errors import UnseenLabelsError
from efimero.gate import run_validation
from efimero.registry import Registry
from efimero.retrain import incremental
from efimero.schema import CSS_TASK
from efimero.training import summary_scores
from tests.conftest import fast_config
from tests.deploy.conftest import MISSING_CLASS, narrow_registry  # noqa: F401 - fixture

ACCEPT_ANY_GAIN = {"min_samples": 50, "min_improvement_threshold": -1.0}


def new_rows(tmp_path: Path, *, seed: int, contradict: bool = False) -> Path:
    """Fresh rows from the generator; with ``contradict`` every label and value breaks its rules."""
    frame = generate_dataset(400, seed=seed)
    if contradict:
        for target in CSS_TASK.class_targets:  # each label becomes the next one of its target
            labels = target.labels
            frame[target.name] = frame[target.name].map(lambda label: labels[(labels.index(label) + 1) % len(labels)])
        for target in CSS_TASK.regression_targets:  # each value mirrored inside its range
            frame[target.name] = target.minimum + target.maximum - frame[target.name]
    return write_table(frame, tmp_path / f"new-{seed}.csv")


def test_the_updated_version_records_its_own_metrics_and_the_gate_reads_them(registry_copy, tmp_path) -> None:
    root, (_, live) = registry_copy()
    # forgetting is not the subject here: the tests below give it a realistic tolerance
    settings = IncrementalParameters(**ACCEPT_ANY_GAIN, forgetting_tolerance=1.0)
    result = incremental([new_rows(tmp_path, seed=21)], models=root, settings=settings)
    assert result.status == "success", result.reason
    parent, updated = Registry(root).load(live), Registry(root).load(result.version)
    metrics = updated.metrics
    assert metrics["n_rows"] == result.rows["holdout"]
    for kind in ("classification", "regression"):
        assert metrics[kind].keys() == parent.metrics[kind].keys()
        for target in metrics[kind]:
            assert metrics[kind][target] != parent.metrics[kind][target], target
    assert metrics["summary"] == pytest.approx(summary_scores(metrics))
    judged = result.scores["new_holdout"]["updated"]
    assert metrics["summary"] == pytest.approx({k: v for k, v in judged.items() if k != "combined"})

    report = run_validation(root, version=result.version, recorded_metrics=True,
                            settings=ValidationSettings(min_accuracy=0, min_r2=-100))
    accuracy = report.checks[-1]
    assert accuracy.name == "accuracy" and f"test rows recorded with {result.version}" in accuracy.detail
    assert accuracy.values["metrics"]["classification"] == metrics["classification"]
    assert accuracy.values["summary"] == pytest.approx(metrics["summary"])
    assert accuracy.values["summary"] != pytest.approx(parent.metrics["summary"])


def test_rows_that_contradict_the_original_rules_are_refused_as_forgetting(registry_copy, tmp_path) -> None:
    root, versions = registry_copy()
    settings = IncrementalParameters(**ACCEPT_ANY_GAIN, forgetting_tolerance=0.02)
    result = incremental([new_rows(tmp_path, seed=22, contradict=True)], models=root, settings=settings,
                         backup_current=True)
    check = result.scores["forgetting_check"]
    assert check["ran"] and not check["passed"] and check["drop"] > 0.02, check
    assert result.status == "no_improvement" and result.version is None
    assert "catastrophic forgetting" in result.reason and f"{check['drop']:.4f}" in result.reason
    registry = Registry(root)
    assert registry.versions() == versions and registry.current() == versions[-1]
    assert not (root / "backups").exists()


def test_an_unreachable_original_test_set_is_reported_not_passed(tmp_path) -> None:
    training_file = write_table(generate_dataset(300, seed=3), tmp_path / "gone.csv")
    root = tmp_path / "models"
    train(training_file, output=root, config=fast_config())
    training_file.unlink()
    result = incremental([new_rows(tmp_path, seed=23)], models=root, settings=IncrementalParameters(**ACCEPT_ANY_GAIN))
    check = result.scores["forgetting_check"]
    assert check["ran"] is False and str(training_file) in check["reason"]
    assert f"forgetting check not run: {check['reason']}" in result.reason


def test_new_rows_with_a_class_the_live_version_never_saw_are_refused(narrow_registry, small_csv, tmp_path) -> None:
    narrow_root, narrow = narrow_registry
    root = Path(shutil.copytree(narrow_root, tmp_path / "models"))
    rows = pd.read_csv(small_csv)
    known = write_table(rows[rows["css_class_theme"] != MISSING_CLASS], tmp_path / "known.csv")
    data = write_table(rows, tmp_path / "with-contrast.csv")
    with pytest.raises(UnseenLabelsError) as raised:
        incremental([known, data], models=root, settings=IncrementalParameters(**ACCEPT_ANY_GAIN))
    message = str(raised.value)
    assert message.startswith(f"{data} holds class labels that {narrow} was never trained on")
    assert "css_class_theme" in message and f"values seen: {MISSING_CLASS}" in message
    assert "'tema-claro', 'tema-oscuro'" in message and "efimero retrain full" in message
    assert Registry(root).versions() == [narrow]
