"""Optuna studies: resumed from their storage, pruned per boosting round, quality against latency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.metrics import r2_score

from efimero.bundle import Preprocessor
from efimero.config import TuningSettings, XGBoostParams, load_training_config
from efimero.errors import TrainingError
from efimero.schema import CSS_TASK
from efimero.training import _study
from efimero.training._spec import ModelSpec, model_specs
from efimero.training._xgb import Runtime, mean_r2
from efimero.training.tune import tune

RUNTIME = Runtime(seed=7, n_jobs=1)


@pytest.fixture(scope="module")
def data(small_frame: pd.DataFrame) -> tuple[dict[str, ModelSpec], np.ndarray, pd.DataFrame]:
    features = small_frame[CSS_TASK.feature_names].to_numpy(dtype=float)
    return {s.name: s for s in model_specs(CSS_TASK, small_frame)}, Preprocessor.fit(
        small_frame[CSS_TASK.feature_names]).transform(features), small_frame


def run(data: tuple[dict[str, ModelSpec], np.ndarray, pd.DataFrame], model: str = "css_class_theme", *,
        n_estimators: int = 10, progress: Any = None, **tuning: Any):
    specs, x, frame = data
    spec = specs[model]
    base = spec.default_params(load_training_config().training.models).model_copy(
        update={"n_estimators": n_estimators})
    settings = TuningSettings(**{"method": "optuna", "storage": None, "pruner": "none", **tuning})
    return tune(spec, base, x, spec.encode(frame), settings=settings, n_folds=2, runtime=RUNTIME, progress=progress)


def stored(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials()


def test_an_interrupted_study_resumes_where_it_stopped(data, tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path}/studies.db"
    space = {"max_depth": (2, 6), "learning_rate": (0.05, 0.3)}
    calls: list[int] = []
    interrupting = [True]
    real = _study._cross_validate

    def interrupted_in_the_third_trial(*args: Any, **kwargs: Any):
        calls.append(1)
        if interrupting[0] and len(calls) == 3:  # Ctrl-C in the middle of the third trial
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(_study, "_cross_validate", interrupted_in_the_third_trial)
    with pytest.raises(KeyboardInterrupt):
        run(data, n_trials=5, storage=url, search_space=space)
    (name,) = optuna.get_all_study_names(url)
    first = stored(url, name)
    assert [t.state.name for t in first] == ["COMPLETE", "COMPLETE", "FAIL"]

    calls.clear()
    interrupting[0] = False
    steps: list[tuple[str, int]] = []
    result = run(data, n_trials=5, storage=url, search_space=space, progress=lambda d, n: steps.append((d, n)))
    assert len(calls) == 3  # only the missing trials ran
    assert steps[0] == ("tuning css_class_theme (2 resumed)", 2) and sum(n for _, n in steps) == 5
    assert result.study is not None and result.study.name == name
    assert (result.study.resumed, result.study.ran, result.study.storage) == (2, 3, url)
    again = stored(url, name)
    assert [t.state.name for t in again].count("COMPLETE") == 5
    assert [(t.params, t.datetime_complete) for t in again[:2]] == [(t.params, t.datetime_complete) for t in first[:2]]
    assert len(result.trials) == 5 and result.best_score == min(t["log_loss"] for t in result.trials)

    calls.clear()
    done = run(data, n_trials=5, storage=url, search_space=space)
    assert calls == [] and done.study is not None and (done.study.resumed, done.study.ran) == (5, 0)
    assert done.best_params == result.best_params


def test_the_seed_decides_the_trials_and_the_inputs_the_study_name(data) -> None:
    space = {"max_depth": (2, 6), "learning_rate": (0.05, 0.3)}
    first, second = (run(data, n_trials=3, n_estimators=3, search_space=space) for _ in range(2))
    assert [t["params"] for t in first.trials] == [t["params"] for t in second.trials]
    assert first.study is not None and second.study is not None and first.study.name == second.study.name
    assert first.study.storage is None
    specs, x, frame = data
    spec = specs["css_class_theme"]
    settings = TuningSettings(method="optuna", search_space=space)
    base = XGBoostParams()
    name = _study.study_name(spec, base, (x, spec.encode(frame)), settings=settings, n_folds=2, runtime=RUNTIME)
    assert name.startswith("efimero-css_class_theme-")
    for changed in (
        dict(arrays=(x[1:], spec.encode(frame)[1:])),
        dict(settings=settings.model_copy(update={"search_space": {"max_depth": (2, 7)}})),
        dict(runtime=Runtime(seed=8, n_jobs=1)),
    ):
        kwargs: dict[str, Any] = {"arrays": (x, spec.encode(frame)), "settings": settings, "runtime": RUNTIME,
                                  **changed}
        assert _study.study_name(spec, base, kwargs.pop("arrays"), n_folds=2, **kwargs) != name
    more = settings.model_copy(update={"n_trials": 99, "latency_budget_ms": 1.0})
    assert _study.study_name(spec, base, (x, spec.encode(frame)), settings=more, n_folds=2, runtime=RUNTIME) == name


@pytest.mark.parametrize(("model", "n_trials"), [("css_class_theme", 10), ("css_variables", 7)])
def test_the_median_pruner_stops_obviously_bad_trials(data, model: str, n_trials: int) -> None:
    # A learning rate of 1e-4 barely moves the first fold's score: such trials are pruned mid-boosting.
    result = run(data, model, n_trials=n_trials, n_estimators=20, pruner="median",
                 search_space={"learning_rate": (1e-4, 0.5)})
    assert result.study is not None and result.study.pruner == "median"
    assert result.study.pruned >= 1 and len(result.trials) + result.study.pruned == n_trials
    best = next(t for t in result.trials if t["params"] == result.best_params)  # a complete trial
    assert best["params"]["learning_rate"] > 0.01


def test_the_regressors_round_metric_is_the_mean_r2_of_its_cv_score() -> None:
    import xgboost as xgb

    rng = np.random.default_rng(0)
    truth, predicted = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    truth[:, 2] = 1.0  # a constant target counts 0 (sklearn's convention)
    assert mean_r2(predicted, xgb.DMatrix(np.zeros((40, 1)), label=truth)) == (
        "r2", pytest.approx(r2_score(truth, predicted)))


def test_quality_against_latency_picks_the_best_pareto_trial_within_the_budget(data, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/studies.db"
    tuning = {"n_trials": 6, "objectives": ("quality", "latency"), "pruner": "median", "storage": url,
              "search_space": {"n_estimators": (2, 60), "max_depth": (1, 6)}}
    roomy = run(data, latency_budget_ms=1e6, **tuning)
    assert roomy.study is not None and roomy.study.pruner == "none"  # multi-objective studies cannot prune
    assert all(t["latency_ms"] > 0 for t in roomy.trials) and roomy.pareto_front
    front = roomy.pareto_front
    assert [t["latency_ms"] for t in front] == sorted(t["latency_ms"] for t in front)
    assert sum(t["chosen"] for t in front) == 1 and roomy.within_budget is True and roomy.note is None
    assert roomy.best_score == min(t["log_loss"] for t in roomy.trials)  # no budget pressure: the best quality
    assert roomy.best_latency_ms == next(t["latency_ms"] for t in front if t["chosen"])

    strict = run(data, latency_budget_ms=1e-9, **tuning)  # same study: the budget only changes the choice
    assert strict.study is not None and (strict.study.resumed, strict.study.ran) == (6, 0)
    assert strict.within_budget is False and "1e-09 ms latency budget" in (strict.note or "")
    assert strict.best_latency_ms == min(t["latency_ms"] for t in strict.pareto_front)
    summary = strict.to_dict()
    assert summary["objectives"] == ["quality", "latency"] and summary["study"]["storage"] == url
    assert {"quality", "latency"} <= set(summary["objectives"]) and "trials" not in summary


def test_choose_and_the_pareto_front() -> None:
    trials = [{"number": i, "log_loss": q, "latency_ms": ms}
              for i, (q, ms) in enumerate([(0.5, 3.0), (0.4, 5.0), (0.6, 1.0), (0.45, 6.0), (0.7, 2.0)])]
    front = _study.pareto_front(trials, metric="log_loss", maximize=False)
    assert [t["number"] for t in front] == [0, 1, 2]  # 3 is slower and worse than 1, 4 than 0
    assert _study.choose(front, metric="log_loss", maximize=False, budget_ms=4.0)[:2] == (trials[0], True)
    assert _study.choose(front, metric="log_loss", maximize=False, budget_ms=None)[0] is trials[1]
    chosen, within, note = _study.choose(front, metric="log_loss", maximize=False, budget_ms=0.5)
    assert chosen is trials[2] and not within and note is not None and "chose the fastest" in note


def test_a_storage_that_cannot_open_names_the_setting(data, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"--study-storage.*Got nope://x instead"):
        run(data, n_trials=1, storage="nope://x")
    with pytest.raises(TrainingError, match=r"password|\*\*\*"):
        _study.open_storage("postgresql://user:secret@127.0.0.1:1/none")


def test_tuning_settings() -> None:
    assert TuningSettings(storage="none").storage is None and TuningSettings(storage=" ").storage is None
    assert TuningSettings().storage == "sqlite:///data/efimero.db"
    hidden = TuningSettings(storage="postgresql://user:secret@db/efimero").model_dump(mode="json")["storage"]
    assert hidden == "postgresql://user:***@db/efimero"
    with pytest.raises(ValueError, match="objectives must be"):
        TuningSettings(objectives=("latency",))
    cfg = load_training_config(overrides={"validation": {"max_avg_latency_ms": 7}})
    assert cfg.training.tuning.latency_budget_ms == 7  # the gate's budget by default
    own = load_training_config(overrides={"training": {"tuning": {"latency_budget_ms": 3}}})
    assert own.training.tuning.latency_budget_ms == 3
