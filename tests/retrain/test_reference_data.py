"""Every version records every training file, and every reader of the reference reads all of them.

A full retraining on several files once recorded ``data_file: "A,B"`` with no hash: the drift
triggers then reported "no reference data" as "not fired", ``collect --validate`` failed, and
the next incremental run skipped its forgetting check without a word.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xgboost
from typer.testing import CliRunner

from efimero._io import sha256_file
from efimero.cli.main import app
from efimero.config import load_retraining_config
from efimero.data import write_table
from efimero.data.generate import generate_dataset
from efimero.monitor.drift import reference_of
from efimero.registry import Registry
from efimero.pipeline import auto_retrain, read_runs
from efimero.retrain import full
from efimero.retrain._common import original_test_problem, original_test_rows
from tests.collect.conftest import ENGAGED, WINDOW, contexts, crafted_store  # noqa: F401 - fixture
from tests.conftest import fast_config


@pytest.fixture
def two_file_version(registry_copy, tmp_path: Path) -> tuple[Path, str, Path, Path]:
    """(registry, version, first file, second file): a full retraining on two files, made current."""
    root, _ = registry_copy()
    first = write_table(generate_dataset(200, seed=5), tmp_path / "a.csv")
    second = write_table(generate_dataset(150, seed=6), tmp_path / "b.csv")
    result = full([first, second], output=root, config=fast_config(), compare_with_current=False)
    assert Registry(root).current() == result.version
    return root, result.version, first, second


def test_full_records_every_file_and_every_reader_reads_them_all(two_file_version) -> None:
    root, version, first, second = two_file_version
    metadata = Registry(root).info(version).metadata
    assert metadata["data_files"] == [{"path": str(first), "sha256": sha256_file(first), "rows": 200},
                                      {"path": str(second), "sha256": sha256_file(second), "rows": 150}]
    assert metadata["data_file"] == str(first) and "data_sha256" not in metadata
    assert metadata["library_versions"]["xgboost"] == xgboost.__version__

    bundle = Registry(root).load()
    reference = reference_of(bundle)
    assert reference.problem is None and len(reference.frame) == 350
    assert sum(reference.importance.values()) == pytest.approx(1.0)
    test_rows = original_test_rows(Registry(root), bundle)
    assert test_rows is not None and len(test_rows) == metadata["rows"]["test"]


def test_unreadable_training_data_is_reported_as_not_checked(two_file_version, crafted_store, tmp_path,  # noqa: F811
                                                             caplog) -> None:
    root, version, first, second = two_file_version
    url = crafted_store((context, ENGAGED) for context in contexts(80, seed=4))
    second.write_text(second.read_text() + second.read_text().splitlines()[-1] + "\n")  # changed since training
    bundle = Registry(root).load()
    assert "b.csv changed since version" in reference_of(bundle).problem
    assert original_test_rows(Registry(root), bundle) is None and "changed since" in original_test_problem(bundle)
    assert "original test rows" in caplog.text

    first.unlink()
    config = load_retraining_config(overrides={"retraining": {
        "models_dir": str(root), "data_collection": {"db_url": url, "output_dir": str(tmp_path / "prod")}}})
    run = auto_retrain(config, mode="check")
    states = {t["name"]: t for t in run.triggers}
    for name in ("feature_drift", "prediction_drift"):
        assert states[name]["status"] == "not_run" and not states[name]["fired"], states[name]
        assert f"{first} of version {version} is gone" in states[name]["detail"]
    assert states["performance"]["status"] in {"fired", "not_fired"}
    assert "could not check: feature_drift" in run.decision
    [recorded] = read_runs(root)
    assert [t["name"] for t in recorded["not_run"]] == ["feature_drift", "prediction_drift"]
    assert "is gone" in recorded["stages"][0]["quality"]["drift_not_run"]
    assert recorded["stages"][0]["quality"]["recommendation"] == "caution"


def test_collect_validate_reads_every_file_of_the_live_version(two_file_version, crafted_store,  # noqa: F811
                                                               tmp_path) -> None:
    root, version, first, second = two_file_version
    url = crafted_store((context, ENGAGED) for context in contexts(80, seed=4))
    result = CliRunner().invoke(app, ["collect", "--db", url, "--start-date", str(WINDOW[0]), "--end-date",
                                      str(WINDOW[1]), "--min-session-duration", "0", "--output",
                                      str(tmp_path / "prod.csv"), "--validate", "--models", str(root), "--json"])
    assert result.exit_code == 0, result.output
    quality = json.loads(result.stdout)["quality"]
    assert quality["drift_share"] is not None and quality["weighted_drift_share"] is not None
    assert quality["drift_not_run"] is None

    first.unlink()
    shown = CliRunner().invoke(app, ["collect", "--db", url, "--start-date", str(WINDOW[0]), "--end-date",
                                     str(WINDOW[1]), "--output", str(tmp_path / "prod.csv"), "--validate",
                                     "--models", str(root)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "drift not checked" in shown.output and "is gone" in shown.output and "caution" in shown.output
