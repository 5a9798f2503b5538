"""The dataset drift verdict weighs features by the live model's importance; both shares are reported."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from efimero.analysis.importance import combined_ranking, model_importance
from efimero.cli.drift import drift
from efimero.data import write_table
from efimero.errors import DataError
from efimero.monitor import detect_drift
from efimero.monitor.drift import UNWEIGHTED_BASIS, ZERO_IMPORTANCE_BASIS, feature_importance
from efimero.registry import Registry
from efimero.schema import CSS_TASK, FEATURE_NAMES

_KINDS = {feature.name: feature.kind for feature in CSS_TASK.features}


def shifted(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """A copy with each named feature moved far: flags flipped, numbers moved by three spreads."""
    moved = frame.copy()
    for name in columns:
        values = moved[name]
        moved[name] = 1 - values if _KINDS[name] == "binary" else values + 3 * values.std() + 1
    return moved


def test_importance_weighs_the_verdict_and_the_unweighted_share_stays_beside_it(small_frame) -> None:
    important, unused = ["hour_of_day", "is_mobile", "accessibility_needs"], ["pixel_density", "is_weekend",
                                                                              "touch_enabled", "user_density_group"]
    importance = {name: (0.3 if name in important else 0.1 / 16) for name in FEATURE_NAMES}

    report = detect_drift(small_frame, shifted(small_frame, important), importance=importance, share_threshold=0.2)
    assert set(report.drifted_features) == set(important)
    assert report.drift_share == pytest.approx(3 / 19) and report.drift_share < 0.2
    assert report.weighted_drift_share == pytest.approx(0.9) and report.decision_share == report.weighted_drift_share
    assert report.dataset_drift and "importance-weighted drift share 0.90, unweighted 0.16" in report.summary
    assert report.column("is_mobile").importance == pytest.approx(0.3)
    assert json.loads(json.dumps(report.to_dict()))["weighted_drift_share"] == pytest.approx(0.9)

    quiet = detect_drift(small_frame, shifted(small_frame, unused), importance=importance, share_threshold=0.2)
    assert quiet.drift_share == pytest.approx(4 / 19) and quiet.drift_share > 0.2
    assert quiet.weighted_drift_share == pytest.approx(0.025) and not quiet.dataset_drift

    plain = detect_drift(small_frame, shifted(small_frame, unused), share_threshold=0.2)
    assert plain.weighted_drift_share is None and plain.dataset_drift and plain.share_basis == UNWEIGHTED_BASIS
    assert UNWEIGHTED_BASIS in plain.summary
    zero = detect_drift(small_frame, small_frame, importance={"not_a_feature": 1.0})
    assert zero.weighted_drift_share is None and zero.share_basis == ZERO_IMPORTANCE_BASIS
    with pytest.raises(DataError, match="importance must map features to finite numbers ≥ 0"):
        detect_drift(small_frame, small_frame, importance={"hour_of_day": -1.0})


def test_feature_importance_is_the_combined_gain_ranking_of_analyze(tiny_registry) -> None:
    bundle = Registry(tiny_registry[0]).load()
    importance = feature_importance(bundle)
    ranking = combined_ranking(model_importance(bundle)).set_index("feature")["combined_importance"]
    assert list(importance) == bundle.feature_names and sum(importance.values()) == pytest.approx(1.0)
    assert importance == pytest.approx(ranking.to_dict())


def test_cli_weighs_by_the_live_version_and_reports_both_shares(tmp_path: Path, tiny_registry, small_frame,
                                                                 small_csv) -> None:
    root = tiny_registry[0]
    importance = feature_importance(Registry(root).load())
    top = sorted(importance, key=importance.__getitem__, reverse=True)[:3]
    current = write_table(shifted(small_frame, top), tmp_path / "now.csv")
    app = typer.Typer()
    app.command()(drift)
    runner = CliRunner()

    weighted = runner.invoke(app, ["--current", str(current), "--models", str(root), "--share-threshold", "0.2",
                                   "--output", str(tmp_path / "report"), "--json"])
    assert weighted.exit_code == 0, weighted.output
    payload = json.loads(weighted.output)
    assert payload["reference_files"][0]["path"] == str(small_csv)  # the live version's training data
    assert payload["drift_share"] == pytest.approx(3 / 19)
    assert payload["weighted_drift_share"] == pytest.approx(sum(importance[name] for name in top))
    assert payload["decision_share"] == payload["weighted_drift_share"] > 0.2 and payload["dataset_drift"]
    page = (tmp_path / "report" / "drift.html").read_text()
    assert "importance-weighted drift share" in page and "<th>importance</th>" in page

    plain = runner.invoke(app, ["--reference", str(small_csv), "--current", str(current), "--share-threshold", "0.2",
                                "--json"])
    payload = json.loads(plain.output)
    assert payload["weighted_drift_share"] is None and payload["share_basis"] == UNWEIGHTED_BASIS
    assert not payload["dataset_drift"]
    shown = runner.invoke(app, ["--reference", str(small_csv), "--current", str(current), "--models", str(root)],
                          env={"COLUMNS": "160"})
    assert shown.exit_code == 0 and "importance" in shown.output and "importance-weighted" in shown.output
