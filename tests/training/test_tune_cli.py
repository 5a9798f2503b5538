"""`efimero train --tune-hyperparams --tuner optuna`: where its studies live, and a rerun that resumes them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from efimero.cli.main import app

runner = CliRunner()


def squeezed(text: str) -> str:
    """``text`` without any whitespace, so that rich's wrapping of long paths does not matter."""
    return "".join(text.split())


def invoke(*args: object):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_a_rerun_resumes_every_study_and_says_so(tmp_path: Path, small_csv: Path) -> None:
    config = tmp_path / "training.yaml"
    few = {"n_estimators": 5, "max_depth": 3}
    config.write_text(yaml.safe_dump({"training": {
        "data": {"cv_folds": 0}, "models": {"classifier": few, "regressor": few}, "n_jobs": 1,
        "tuning": {"search_space": {"max_depth": [2, 4]}}}}))
    url = f"sqlite:///{tmp_path}/studies.db"
    tune = ("train", "--data", small_csv, "--output", tmp_path / "models", "--config", config, "--tune-hyperparams",
            "--tuner", "optuna", "--n-trials", 2, "--study-storage", url)

    first = json.loads(invoke(*tune, "--json").stdout)["tuning"]
    assert set(first) == {"css_class_theme", "css_class_density", "css_class_font", "css_variables"}
    theme = first["css_class_theme"]
    assert theme["method"] == "optuna" and theme["candidates"] == 2 and theme["objectives"] == ["quality"]
    assert {k: theme["study"][k] for k in ("storage", "n_trials", "resumed", "ran")} == {
        "storage": url, "n_trials": 2, "resumed": 0, "ran": 2}

    again = squeezed(invoke(*tune).output)
    assert squeezed(f"Optuna studies in {url}: rerunning this command resumes them.") in again
    assert squeezed(f"css_class_theme: study {theme['study']['name']} in {url} — 2 of 2 trials resumed, 0 run") in again


def test_help_names_the_study_storage_and_its_default() -> None:
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "250"})
    assert "--study-storage" in result.output
    assert "[default: training.tuning.storage, sqlite:///data/efimero.db]" in result.output
