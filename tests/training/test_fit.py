from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from efimero.config import load_training_config
from efimero.data.generate import generate_dataset
from efimero.errors import TrainingError
from efimero.schema import CSS_TASK
from efimero.training import train
from efimero.training.metrics import evaluate
from tests.conftest import fast_config


@pytest.fixture(scope="module")
def guide_run():
    """The issue's reference run: 5000 rows, seed 42, default settings (5-fold CV included)."""
    frame = generate_dataset(5000, seed=42)
    return train(frame, task=CSS_TASK, settings=load_training_config().training)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["css_class_theme", "css_class_density", "css_class_font"])
def test_classifiers_beat_the_majority_baseline(guide_run, target: str) -> None:
    scores = guide_run.metrics["classification"][target]
    print(f"{target}: accuracy {scores['accuracy']:.3f} vs majority baseline {scores['baseline_accuracy']:.3f}")
    assert scores["accuracy"] > scores["baseline_accuracy"] + 0.1
    assert scores["macro_f1"] > 0.5


@pytest.mark.slow
def test_font_size_is_learned(guide_run) -> None:
    assert guide_run.metrics["regression"]["font_size_base"]["r2"] > 0.5
    assert np.mean([m["r2"] for m in guide_run.metrics["regression"].values()]) > 0.4


@pytest.mark.slow
def test_run_records_cv_rows_and_time(guide_run) -> None:
    assert guide_run.n_rows == {"total": 5000, "train": 3600, "early_stopping": 400, "test": 1000}
    theme_cv = guide_run.metrics["cv"]["css_class_theme"]["accuracy"]
    assert theme_cv["folds"] == 5 and 0 < theme_cv["std"] < 0.1
    assert abs(theme_cv["mean"] - guide_run.metrics["classification"]["css_class_theme"]["accuracy"]) < 0.05
    assert guide_run.duration_s > 0
    assert guide_run.metrics["summary"]["mean_accuracy"] > 0.8


def test_training_is_reproducible(small_frame) -> None:
    settings = fast_config().training
    first, second = (train(small_frame, task=CSS_TASK, settings=settings) for _ in range(2))
    for name, model in first.bundle.models.items():
        assert bytes(model.booster.save_raw("ubj")) == bytes(second.bundle.models[name].booster.save_raw("ubj"))
    assert first.metrics == second.metrics


def test_early_stopping_keeps_only_used_trees(small_frame) -> None:
    settings = fast_config(models={"classifier": {"n_estimators": 300, "early_stopping_rounds": 3}}).training
    result = train(small_frame, task=CSS_TASK, settings=settings)
    assert result.bundle.models["css_class_theme"].booster.num_boosted_rounds() < 300


def test_metrics_match_the_bundles_predictions(small_frame) -> None:
    result = train(small_frame, task=CSS_TASK, settings=fast_config().training)
    again = evaluate(result.bundle, small_frame.iloc[:80])
    predicted = result.bundle.predict_frame(small_frame.iloc[:80])
    assert again["classification"]["css_class_theme"]["accuracy"] == pytest.approx(
        (predicted.css_class_theme == small_frame.css_class_theme.iloc[:80].to_numpy()).mean()
    )


@pytest.mark.parametrize("method", ["grid", "optuna"])
def test_tuning_scores_candidates_by_cv(small_frame, method: str) -> None:
    settings = fast_config(
        data={"cv_folds": 2},
        tuning={"method": method, "n_trials": 3, "search_space": {"max_depth": [2, 4]},
                "grid": {"max_depth": [2, 3], "learning_rate": [0.1], "n_estimators": [10]}},
    ).training
    steps = []
    result = train(small_frame, task=CSS_TASK, settings=settings, tune_hyperparams=True,
                   progress=lambda _, n: steps.append(n))
    expected = 2 if method == "grid" else 3
    assert {name: len(t.trials) for name, t in result.tuning.items()} == dict.fromkeys(result.bundle.models, expected)
    theme = result.tuning["css_class_theme"]
    assert theme.metric == "log_loss" and theme.best_score == min(t["log_loss"] for t in theme.trials)
    assert result.hyperparameters["css_class_theme"]["max_depth"] == theme.best_params["max_depth"]
    assert result.tuning["css_variables"].metric == "r2"
    assert sum(steps) == 4 * (expected + 2 + 1)


def test_too_few_rows_is_a_training_error(small_frame) -> None:
    with pytest.raises(TrainingError, match="at least 50 rows"):
        train(small_frame.iloc[:20], task=CSS_TASK, settings=fast_config().training)


@pytest.mark.skipif(
    xgb.build_info().get("USE_CUDA") and __import__("shutil").which("nvidia-smi") is not None,
    reason="a GPU is present: the no-GPU message cannot be shown here",
)
def test_gpu_without_gpu_fails_clearly(small_frame) -> None:
    with pytest.raises(TrainingError, match="--gpu") as info:
        train(small_frame, task=CSS_TASK, settings=fast_config(device="cuda").training)
    assert "Drop --gpu" in str(info.value)
