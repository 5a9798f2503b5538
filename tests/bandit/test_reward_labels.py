"""Learning from rewards: served labels weighted by reward / propensity, per class head."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from efimero.cli.main import app
from efimero.collect import collect
from efimero.data.generate import generate_dataset
from efimero.errors import DataValidationError, TrainingError
from efimero.registry import Registry
from efimero.schema import CSS_TASK
from efimero.store import decisions, open_engine
from efimero.training import row_weights, train
from tests.bandit.test_evaluate import REWARD, stored_logs
from tests.conftest import fast_config

THEME = "css_class_theme"


def test_every_due_decision_becomes_a_row_labelled_with_the_best_label_by_its_doubly_robust_score(
    registry_copy, tmp_path
) -> None:
    """The logs of :func:`stored_logs` reward the dense layout on wide screens and the dark theme at night."""
    root, (_, live) = registry_copy()
    url = stored_logs(root, live, tmp_path)
    result = collect(url, labels="reward", reward=REWARD, output=tmp_path / "rewarded.csv")
    frame = result.frame
    assert (len(frame), result.labels, result.pending_rewards) == (300, "reward", 0)
    assert result.reward_version == REWARD.version
    assert list(frame.columns) == [*CSS_TASK.columns, *CSS_TASK.weight_columns]
    best = pd.DataFrame([{"css_class_density": "densidad-alta" if row["viewport_diagonal"] >= 1200 else "densidad-baja",
                          THEME: "tema-oscuro" if row["hour_of_day"] >= 19 or row["hour_of_day"] < 7 else "tema-claro"}
                         for row in frame.to_dict("records")])
    assert (frame["css_class_density"] == best["css_class_density"]).mean() > 0.8
    assert (frame[THEME] == best[THEME]).mean() > 0.8
    engine = open_engine(url, create=False)
    logged = decisions(engine, start=result.start, end=result.end)
    engine.dispose()
    served = logged["decisions"].map(lambda d: d["slots"][THEME]["label"])
    assert (frame[THEME] != served).mean() > 0.2  # not the served labels learned back
    assert (frame[[f"sample_weight__{t}" for t in (THEME, "css_class_density")]] >= 0).all().all()
    rewards, _ = REWARD.of_decisions(logged, now=pd.Timestamp.now(tz="UTC").to_pydatetime())
    assert np.allclose(frame["sample_weight"], np.maximum(rewards, 1e-3))
    assert result.to_dict()["labels"] == "reward"


def test_a_rarely_explored_label_that_earns_more_wins_over_the_label_served_most() -> None:
    """Heuristic-free: the greedy label is served 90 % of the time and earns 0.2; the explored one 0.9."""
    rows = generate_dataset(600, seed=5).reset_index(drop=True)
    rng = np.random.default_rng(0)
    explored = rng.random(len(rows)) < 0.1
    rows[THEME] = np.where(explored, "tema-alto-contraste", "tema-claro")
    propensity = np.where(explored, 0.1, 0.9)
    reward = np.where(explored, 0.9, 0.2)
    rows[f"sample_weight__{THEME}"] = reward / propensity
    unweighted = train(rows.drop(columns=[f"sample_weight__{THEME}"]), task=CSS_TASK,
                       settings=fast_config().training)
    weighted = train(rows, task=CSS_TASK, settings=fast_config().training)
    features = rows[CSS_TASK.feature_names]
    assert (unweighted.bundle.predict_frame(features)[THEME] == "tema-claro").mean() > 0.9
    # Weighted, the better label is what the head predicts for most visitors (explored rows are only 10 %,
    # so some regions of the feature space hold none and keep the served label).
    assert (weighted.bundle.predict_frame(features)[THEME] == "tema-alto-contraste").mean() > 0.6


def test_a_heads_own_weights_replace_the_row_weights_only_for_that_head() -> None:
    rows = pd.DataFrame({"sample_weight": [1.0, 2.0], f"sample_weight__{THEME}": [0.0, 5.0]})
    assert row_weights(CSS_TASK, rows, [THEME]).tolist() == [0.0, 5.0]
    assert row_weights(CSS_TASK, rows, ["css_class_font"]).tolist() == [1.0, 2.0]
    assert row_weights(CSS_TASK, rows, ["font_size_base", "spacing_base"]).tolist() == [1.0, 2.0]
    assert row_weights(CSS_TASK, rows.drop(columns="sample_weight"), ["css_class_font"]) is None


def test_a_negative_head_weight_is_refused_naming_the_column(tmp_path) -> None:
    from efimero.data.validate import validate_frame

    rows = generate_dataset(60, seed=2).assign(**{f"sample_weight__{THEME}": -1.0})
    with pytest.raises(DataValidationError, match=f"sample_weight__{THEME}"):
        validate_frame(rows, source="rewarded.csv")


def test_the_cli_collects_reward_rows_and_train_reads_their_weights(registry_copy, tmp_path) -> None:
    root, (_, live) = registry_copy()
    url = stored_logs(root, live, tmp_path)
    output = tmp_path / "rewarded.csv"
    result = CliRunner().invoke(app, ["collect", "--db", url, "--labels", "reward", "--output", str(output),
                                      "--min-session-duration", "0", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["rows"], report["labels"], report["reward_version"]) == (300, "reward", REWARD.version)
    trained = CliRunner().invoke(app, ["train", "--data", str(output), "--output", str(tmp_path / "models"),
                                       "--cv-folds", "0", "--n-jobs", "1", "--json"])
    assert trained.exit_code == 0, trained.output
    assert Registry(tmp_path / "models").current() is not None
    wrong = CliRunner().invoke(app, ["collect", "--db", url, "--labels", "bandit"])
    assert wrong.exit_code == 1 and "--labels must be heuristic or reward" in wrong.output


def test_a_head_whose_every_reward_is_zero_is_a_clear_training_error() -> None:
    rows = generate_dataset(200, seed=4).assign(**{f"sample_weight__{THEME}": 0.0})
    with pytest.raises(TrainingError, match=f"the weights of {THEME} sum to 0 over the training rows"):
        train(rows, task=CSS_TASK, settings=fast_config().training)
