"""Training a use case: every algorithm tuned, the best kept, tested against a baseline, gated, stored.

1. Read the rows, resolve the features (inferred ones written back for review), split 80/10/10.
2. Fit the preprocessing on the training split only, so no statistic leaks from the held-out rows.
3. Per algorithm: tune its grid by k-fold CV on the training split, the preprocessing refitted
   inside each fold on its k-1 training folds (:func:`~efimero.usecases._tune.cv_folds`), so CV
   scores see no statistic of the fold they score; refit the winner on the whole training split
   with the preprocessing of step 2 (boosters early-stop on the validation split, as the guide's
   loop does), and score it on the validation split. A failing algorithm is recorded and the
   others go on.
4. Keep the best by the primary metric on the validation split; score every algorithm on the test
   split too (reported, never used to choose), beside the baseline's scores.
5. Gate the best on the test split: every threshold and, by default, beating the baseline. A
   model below them is stored with status ``refused`` and the metric that failed.
6. Store the version (estimator, preprocessing, metrics, entry, manifest) and append one
   experiment-log record per algorithm.
"""

from __future__ import annotations

import logging
import platform
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sklearn

from efimero._io import atomic_write_json
from efimero.errors import EfimeroError, TrainingError
from efimero.estimators import Estimator, TaskKind, make_estimator
from efimero.usecases._data import Splits, check_columns, infer_features, read_source, split_rows, write_inferred
from efimero.usecases._metrics import baseline, gate_failures, sort_value
from efimero.usecases._prep import build_preprocessor, fit_and_transform, save_preprocessor
from efimero.usecases._registry import ESTIMATOR_DIR, UseCaseRegistry
from efimero.usecases._schema import AlgorithmSpec, UseCaseSpec, load_usecase
from efimero.usecases._tune import MAX_NOISE_SHARE, Fold, Search, cv_folds, predict_and_score, tune

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""Called as ``progress(algorithm, done, total)`` before each algorithm and once at the end."""


@dataclass
class AlgorithmRun:
    """One algorithm's run: tuned params, CV means, validation and test metrics, or the error."""

    algorithm: str
    params: dict[str, Any] = field(default_factory=dict)
    cv: dict[str, float | None] = field(default_factory=dict)
    cv_std: float | None = None
    validation: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] = field(default_factory=dict)
    candidates: int = 0
    iterations: int | None = None
    seconds: float = 0.0
    error: str | None = None


@dataclass
class TrainResult:
    """What ``train_usecase`` did: every run, the best, its baselines, the gate and the stored entry."""

    key: str
    task: str
    primary_metric: str
    best: str
    runs: list[AlgorithmRun]
    test: dict[str, Any]
    baseline_validation: dict[str, Any]
    baseline_test: dict[str, Any]
    thresholds: dict[str, float]
    gate_failures: list[str]
    entry: dict[str, Any]
    seconds: float
    inferred: str | None = None

    @property
    def passed(self) -> bool:
        return not self.gate_failures

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def train_usecase(
    spec: UseCaseSpec | str | Path,
    *,
    algorithms: list[str] | None = None,
    seed: int | None = None,
    models: str | Path = "models/usecases",
    base: str | Path | None = None,
    n_jobs: int = 1,
    progress: Progress | None = None,
) -> TrainResult:
    """Train every listed algorithm of a use case, keep the best, gate it and store it as a new version.

    Args:
        spec: the use case, or the path of its YAML file (then relative data paths are relative to
            it and inferred features are written beside it).
        algorithms: train only these (default: the use case's list, else every one for its task).
        seed: the seed of the split, the folds and the models (default: ``split.seed``).
        models: the use-case registry's root.
        base: the folder relative data paths start from, when ``spec`` is no path (default: cwd).
        n_jobs: threads per model.
        progress: see :data:`Progress`.

    Returns:
        The result; ``passed`` is False and ``entry["status"]`` is ``refused`` below the gate.

    Raises:
        ConfigError: the YAML file is invalid (file and dotted key named).
        DataError: the data cannot be read or breaks a declared range.
        TrainingError: no algorithm could be trained (each error named).

    Example:
        >>> result = train_usecase("usecases/wine.yaml", algorithms=["logistic_regression"])  # doctest: +SKIP
        >>> result.entry["status"], result.best
        ('candidate', 'logistic_regression')
    """
    started = time.perf_counter()
    source = None if isinstance(spec, UseCaseSpec) else Path(spec)
    spec = load_usecase(source) if source is not None else spec
    assert isinstance(spec, UseCaseSpec)
    seed = spec.split.seed if seed is None else seed
    spec = spec.model_copy(update={"split": spec.split.model_copy(update={"seed": seed})})
    folder = source.parent if source is not None else Path(base or ".")
    frame = read_source(spec, base=folder)
    features = spec.features or infer_features(frame, spec)
    inferred = None
    if spec.features is None and source is not None:
        inferred = str(write_inferred(source, spec, features))
    check_columns(frame, spec, features)
    splits = split_rows(frame, spec, features)
    unfitted = build_preprocessor(features, spec.preprocessing)
    preprocessor, matrices = fit_and_transform(unfitted, splits.X_train, [splits.X_val, splits.X_test], features)
    search = Search(spec.tuning.method, spec.tuning.n_iter, spec.tuning.n_trials, spec.cv.folds, spec.scorers,
                    spec.metric, seed, n_jobs)
    folds = cv_folds(spec.task, unfitted, splits.X_train, splits.y_train, features, search)
    todo = spec.algorithm_specs(algorithms)
    runs, fitted = [], {}
    for done, algorithm in enumerate(todo):
        if progress is not None:
            progress(algorithm.name, done, len(todo))
        run, model = _run(algorithm, spec.task, matrices, folds, splits, search)
        runs.append(run)
        if model is not None:
            fitted[run.algorithm] = model
    if progress is not None:
        progress("done", len(todo), len(todo))
    if not fitted:
        raise TrainingError(f"use case {spec.key}: no algorithm could be trained: "
                            + "; ".join(f"{run.algorithm}: {run.error}" for run in runs))
    best = max((run for run in runs if run.algorithm in fitted), key=lambda run: _rank(spec, run))
    n_clusters = int(best.test.get("n_clusters") or 2)
    base_val, base_test = (baseline(spec.task, splits.y_train, y, X=X, n_clusters=n_clusters, seed=seed)
                           for y, X in ((splits.y_val, matrices[1]), (splits.y_test, matrices[2])))
    failures = gate_failures(best.test, spec.thresholds, primary=spec.metric,
                             baseline=base_test if spec.beat_baseline else None)
    resolved = spec.model_copy(update={"features": features})
    entry = _entry(resolved, best, splits, failures)
    registry = UseCaseRegistry(models)

    def write(directory: Path) -> None:
        fitted[best.algorithm].save(directory / ESTIMATOR_DIR)
        save_preprocessor(preprocessor, directory)
        atomic_write_json(directory / "spec.json", _without_secrets(resolved.model_dump(mode="json")))
        atomic_write_json(directory / "metrics.json", {
            "primary_metric": spec.metric, "best": best.algorithm, "test": best.test,
            "baseline": {"validation": base_val, "test": base_test},
            "runs": [asdict(run) for run in runs], "gate": {"thresholds": spec.thresholds, "failures": failures},
        })

    entry = registry.save(spec.key, write, entry)
    registry.log_experiments(spec.key, _experiments(spec, runs, best, entry))
    return TrainResult(spec.key, spec.task.value, spec.metric, best.algorithm, runs, best.test, base_val, base_test,
                       spec.thresholds, failures, entry, time.perf_counter() - started, inferred)


def _without_secrets(spec: dict[str, Any]) -> dict[str, Any]:
    """The use case as stored in a version: a SQL URL's password is masked (versions get copied and shared)."""
    sql = spec["data"].get("sql")
    if sql:
        from sqlalchemy.engine import make_url

        sql["url"] = make_url(sql["url"]).render_as_string(hide_password=True)
    return spec


def _run(algorithm: AlgorithmSpec, task: TaskKind, matrices: list[np.ndarray], folds: list[Fold], splits: Splits,
         search: Search) -> tuple[AlgorithmRun, Estimator | None]:
    """Tune, refit and score one algorithm; an error is recorded in the run, not raised."""
    started = time.perf_counter()
    X_train, X_val, X_test = matrices
    run = AlgorithmRun(algorithm.name)
    try:
        tuned = tune(algorithm.name, task, fixed=algorithm.params, grid=algorithm.search_space(),
                     X=X_train, folds=folds, search=search)
        run.params, run.cv, run.cv_std, run.candidates = tuned.params, tuned.cv, tuned.cv_std, len(tuned.trials)
        model = make_estimator(algorithm.name, task, params=tuned.params, seed=search.seed, n_jobs=search.n_jobs)
        validation = {} if task is TaskKind.CLUSTERING else {"X_val": X_val, "y_val": splits.y_val}
        model.fit(X_train, splits.y_train, **validation)
        run.iterations = model.iterations
        run.validation = predict_and_score(model, X_val, splits.y_val, seed=search.seed)
        run.test = predict_and_score(model, X_test, splits.y_test, seed=search.seed)
    except EfimeroError as exc:
        run.error = str(exc)
        logger.warning("%s failed: %s", algorithm.name, exc)
        model = None
    run.seconds = round(time.perf_counter() - started, 3)
    return run, model


def _rank(spec: UseCaseSpec, run: AlgorithmRun) -> float:
    """The run's validation score on the primary metric, larger is better; clusterings mostly noise last."""
    if spec.task is TaskKind.CLUSTERING and (run.validation.get("noise_share") or 0.0) > MAX_NOISE_SHARE:
        return float("-inf")
    return sort_value(spec.metric, run.validation.get(spec.metric))


def _entry(spec: UseCaseSpec, best: AlgorithmRun, splits: Splits, failures: list[str]) -> dict[str, Any]:
    """The guide's registry entry (the registry adds directory, version, model_id and created_at)."""
    return {
        "use_case_key": spec.key, "name": spec.name or spec.key, "department": spec.department,
        "task": spec.task.value, "algorithm": best.algorithm, "created_by": "efimero usecase train",
        "primary_metric": spec.metric, "metrics": best.test, "validation_metrics": best.validation,
        "hyperparameters": best.params, "features": [f.name for f in spec.features or []],
        "feature_count": len(spec.features or []), "training_samples": len(splits.X_train),
        "status": "refused" if failures else "candidate", "gate_failures": failures,
    }


def _experiments(spec: UseCaseSpec, runs: list[AlgorithmRun], best: AlgorithmRun,
                 entry: dict[str, Any]) -> list[dict[str, Any]]:
    """One experiment-log record per algorithm run (the guide's log_experiment fields)."""
    run_id = uuid.uuid4().hex[:12]
    environment = {"python_version": platform.python_version(), "sklearn_version": sklearn.__version__,
                   "numpy_version": np.__version__}
    return [{
        "run_id": run_id, "timestamp": entry["created_at"], "use_case_key": spec.key, "algorithm": run.algorithm,
        "parameters": run.params, "cv": run.cv, "cv_std": run.cv_std, "validation": run.validation,
        "test": run.test, "candidates": run.candidates, "seconds": run.seconds, "error": run.error,
        "chosen": run is best, "version": entry["version"] if run is best else None,
        "tuning": spec.tuning.method, "seed": spec.split.seed, "environment": environment,
    } for run in runs]
