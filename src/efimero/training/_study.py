"""Optuna studies of :func:`~efimero.training.tune`: persistent, pruned, optionally quality versus latency.

**Persistence.** A study lives in ``training.tuning.storage``, a SQLAlchemy URL (default: the
interaction store's database, ``sqlite:///data/efimero.db``; ``none`` keeps it in memory), under a
name derived from everything that decides its trials: the model (name, kind, targets, labels),
a hash of the rows, the search space, the other hyperparameters, the folds, the objectives, the
pruner and the seed (:func:`study_name`). Rerunning the same command therefore loads the same
study: its finished trials (complete or pruned) are kept and only the missing ones run, so
``n_trials`` is the study's total. A trial cut short (Ctrl-C, an error) is stored as failed and
runs again; one whose process was killed is failed by Optuna's heartbeat once it is stale
(``_GRACE_S``). Changing any of those inputs starts a new study beside the old one; ``n_trials``
and the latency budget are not among them (raise ``n_trials`` to extend a finished study).

**Reproducibility.** The TPE sampler is seeded with ``seed + trials already stored``: a new study
is the same for the same seed, and a resumed study continues deterministically from its stored
trials, which the sampler reads, without replaying the random start-up draws of the first run.
It is not identical to an uninterrupted run: a new process cannot restore the sampler's state.
Latencies are measured, so a multi-objective study is reproducible in its parameters only.

**Pruning.** Each trial's first CV fold reports its held-out score every boosting round through
optuna-integration's :class:`~optuna_integration.XGBoostPruningCallback`, a native ``xgb.train``
callback: ``validation-mlogloss`` for a classifier, ``validation-r2`` (mean R² over the targets)
for the regressor, the metric the CV score ranks by. ``pruner: median`` stops a trial whose score at
a round is worse than the median of earlier trials at that round (after ``_PRUNER_STARTUP`` complete
trials and ``_PRUNER_WARMUP`` rounds). Optuna cannot prune a multi-objective study.

**Latency.** With ``objectives: [quality, latency]`` the second objective is the median time of a
single-row prediction (one thread, one DMatrix per row, as the service predicts) of the trial's
first-fold model over the first ``LATENCY_ROWS`` rows (:func:`single_row_latency_ms`). The chosen
trial is the best-quality trial of the Pareto front whose latency is within ``latency_budget_ms``
(default: the gate's ``validation.max_avg_latency_ms``); when none is, the fastest one, and the
result's ``note`` says so (:func:`choose`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState
from optuna_integration import XGBoostPruningCallback

from efimero import tracking
from efimero.bundle import TrainedModel
from efimero.config import TuningSettings, XGBoostParams
from efimero.errors import TrainingError
from efimero.training._spec import ModelSpec
from efimero.training._xgb import WATCHED_METRIC, Runtime
from efimero.training.tune import ProgressCallback, StudyInfo, TuningResult, _cross_validate

logger = logging.getLogger(__name__)

LATENCY_ROWS = 50
"""Rows timed one by one for a trial's predict latency (the first rows of the tuning data)."""
_FORMAT = 1
"""Part of every study name: bump it when the meaning of a stored trial changes."""
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
_PRUNER_STARTUP = 5
_PRUNER_WARMUP = 10
_REPORT_EVERY = 5
_HEARTBEAT_S = 30
_GRACE_S = 120
_LOG_SCALE = {"learning_rate", "reg_alpha", "reg_lambda"}
_INTEGER = {"max_depth", "n_estimators"}


def study_name(
    spec: ModelSpec,
    base: XGBoostParams,
    arrays: tuple[np.ndarray | None, ...],
    *,
    settings: TuningSettings,
    n_folds: int,
    runtime: Runtime,
) -> str:
    """``efimero-<model>-<hash>``: the same model, rows, search space, folds, objectives, pruner and seed
    give the same name (the number of trials and the latency budget do not count)."""
    data = hashlib.sha256()
    for array in arrays:
        if array is not None:
            data.update(f"{array.shape}{array.dtype}".encode())
            data.update(np.ascontiguousarray(array).tobytes())
    what = {
        "format": _FORMAT, "model": [spec.name, spec.kind, spec.targets, spec.labels], "data": data.hexdigest(),
        "search_space": sorted((k, list(v)) for k, v in settings.search_space.items()),
        "base": base.model_dump(mode="json"), "folds": n_folds, "objectives": list(settings.objectives),
        "pruner": settings.pruner, "seed": runtime.seed, "device": runtime.device,
    }
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()
    return f"efimero-{spec.name}-{digest[:12]}"


def shown_url(url: str) -> str:
    """``url`` with its password hidden."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def open_storage(url: str | None) -> optuna.storages.BaseStorage | None:
    """Optuna's RDB storage at ``url`` (tables created when missing), or None for an in-memory study.

    A SQLite file's directory is created; ``postgresql://`` uses psycopg 3, as the store does.

    Raises:
        TrainingError: the URL is malformed, its driver is missing or the database cannot be reached.
    """
    if url is None:
        return None
    from sqlalchemy import event
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
    try:
        parsed = make_url(url)
        sqlite = parsed.get_backend_name() == "sqlite"
        if sqlite and parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": 30}} if sqlite else {"pool_pre_ping": True}
        with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna 5; it fails stale trials
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=_HEARTBEAT_S,
                                                 grace_period=_GRACE_S)
    except (ArgumentError, ValueError, ModuleNotFoundError, OSError, SQLAlchemyError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(
            "training.tuning.storage (--study-storage) must be a reachable SQLAlchemy URL such as "
            f"sqlite:///data/efimero.db, or none for an in-memory study. Got {shown_url(url)} instead ({reason})."
        ) from exc
    if sqlite:  # a report per boosting round: WAL without an fsync per commit, as the store's own engine
        event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()
    return storage


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()



def single_row_latency_ms(model: TrainedModel, rows: np.ndarray) -> float:
    """Median milliseconds of one single-row prediction of ``model``, over ``rows`` (after one warm-up).

    The model predicts on one thread from a DMatrix built per row, as the service does.
    """
    model.predict_matrix(rows[:1])
    timings = []
    for i in range(len(rows)):
        started = time.perf_counter()
        model.predict_matrix(rows[i:i + 1])
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.median(timings))


def pareto_front(trials: list[dict[str, Any]], *, metric: str, maximize: bool) -> list[dict[str, Any]]:
    """The trials no other trial beats on both ``metric`` and ``latency_ms`` (better on one, no worse on the other)."""
    sign = 1.0 if maximize else -1.0

    def dominates(a: dict[str, Any], b: dict[str, Any]) -> bool:
        qa, qb, la, lb = sign * a[metric], sign * b[metric], a["latency_ms"], b["latency_ms"]
        return qa >= qb and la <= lb and (qa > qb or la < lb)

    return [t for t in trials if not any(dominates(other, t) for other in trials)]


def choose(
    front: list[dict[str, Any]], *, metric: str, maximize: bool, budget_ms: float | None
) -> tuple[dict[str, Any], bool, str | None]:
    """The best-quality trial of ``front`` within ``budget_ms`` (None: no budget), else the fastest one.

    Returns:
        The trial, whether it is within the budget, and a note when it is not.
    """
    fits = [t for t in front if budget_ms is None or t["latency_ms"] <= budget_ms]
    if fits:
        return (max if maximize else min)(fits, key=lambda t: t[metric]), True, None
    fastest = min(front, key=lambda t: t["latency_ms"])
    return fastest, False, (
        f"no Pareto trial predicts a row within the {budget_ms:g} ms latency budget; chose the fastest "
        f"(trial {fastest['number']}: {fastest['latency_ms']:.3f} ms, {metric} {fastest[metric]:.4f})"
    )


def run_study(
    spec: ModelSpec,
    base: XGBoostParams,
    x: np.ndarray,
    y: np.ndarray,
    *,
    settings: TuningSettings,
    n_folds: int,
    runtime: Runtime,
    progress: ProgressCallback | None = None,
    weight: np.ndarray | None = None,
) -> TuningResult:
    """Create or resume the study of one model and run it up to ``settings.n_trials`` finished trials.

    Progress advances once per finished trial, and at once by the number of resumed trials.

    Raises:
        TrainingError: the storage cannot be opened, or every trial was pruned.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metric = spec.primary_metric
    multi = "latency" in settings.objectives
    pruning = settings.pruner == "median" and not multi
    name = study_name(spec, base, (x, y, weight), settings=settings, n_folds=n_folds, runtime=runtime)
    directions: list[Literal["minimize", "maximize"]] = ["maximize" if spec.maximize else "minimize"]
    if multi:
        directions.append("minimize")
    study = optuna.create_study(
        storage=open_storage(settings.storage),
        study_name=name,
        load_if_exists=True,
        directions=directions,
        sampler=optuna.samplers.TPESampler(seed=runtime.seed),
        pruner=optuna.pruners.MedianPruner(_PRUNER_STARTUP, _PRUNER_WARMUP) if pruning else optuna.pruners.NopPruner(),
    )
    stored = study.get_trials(deepcopy=False)
    if stored:  # resumed: go on from the stored trials without replaying the first run's draws
        study.sampler = optuna.samplers.TPESampler(seed=runtime.seed + len(stored))
    done = sorted((t for t in stored if t.state in _FINISHED), key=lambda t: t.number)
    resumed = min(len(done), settings.n_trials)
    for trial in done[:resumed]:
        if trial.state == TrialState.COMPLETE and "cv" in trial.user_attrs:
            tracking.current().trial(f"{spec.name} #{trial.number + 1} (resumed)", params=trial.params,
                                     metrics=trial.user_attrs["cv"])
    if progress and resumed:
        progress(f"tuning {spec.name} ({resumed} resumed)", resumed)
    ran = 0

    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        candidate = _suggest(trial, settings)
        params = type(base).model_validate(base.model_dump() | candidate)
        callbacks = [_EveryFewRounds(trial, WATCHED_METRIC[spec.kind])] if pruning else []
        cv, model = _cross_validate(spec, params, x, y, n_folds=n_folds, runtime=runtime, weight=weight,
                                    callbacks=callbacks)
        trial.set_user_attr("cv", cv)
        tracking.current().trial(f"{spec.name} #{trial.number + 1}", params=trial.params, metrics=cv)
        if not multi:
            return cv[metric]["mean"]
        return cv[metric]["mean"], single_row_latency_ms(model, x[:LATENCY_ROWS])

    def finished(_: optuna.Study, trial: FrozenTrial) -> None:
        nonlocal ran
        if trial.state in _FINISHED:
            ran += 1
            if progress:
                progress(f"tuning {spec.name}", 1)

    if settings.n_trials > len(done):
        study.optimize(objective, n_trials=settings.n_trials - len(done),
                       callbacks=[optuna.study.MaxTrialsCallback(settings.n_trials, states=_FINISHED), finished])
    kept = sorted(study.get_trials(deepcopy=False, states=_FINISHED), key=lambda t: t.number)[:settings.n_trials]
    trials = [_record(t, metric, multi) for t in kept if t.state == TrialState.COMPLETE]
    info = StudyInfo(name=name, storage=shown_url(settings.storage) if settings.storage else None,
                     n_trials=settings.n_trials, resumed=resumed, ran=ran, pruned=len(kept) - len(trials),
                     pruner="median" if pruning else "none")
    if not trials:
        raise TrainingError(f"every one of the {len(kept)} trials of study {name} was pruned; set "
                            "training.tuning.pruner to none or raise --n-trials.")
    result = TuningResult(spec.name, "optuna", metric, {}, 0.0, trials, study=info, objectives=settings.objectives)
    if multi:
        front = sorted(pareto_front(trials, metric=metric, maximize=spec.maximize), key=lambda t: t["latency_ms"])
        best, result.within_budget, result.note = choose(front, metric=metric, maximize=spec.maximize,
                                                         budget_ms=settings.latency_budget_ms)
        result.pareto_front = [t | {"chosen": t is best} for t in front]
        result.latency_budget_ms, result.best_latency_ms = settings.latency_budget_ms, best["latency_ms"]
    else:
        best = (max if spec.maximize else min)(trials, key=lambda t: t[metric])
    result.best_params, result.best_score = dict(best["params"]), best[metric]
    logger.info("tuned %s in study %s (%s): %d trials resumed, %d run, %d pruned; best %s %.4f with %s",
                spec.name, name, info.storage or "in memory", resumed, ran, info.pruned, metric, best[metric],
                best["params"])
    return result


class _EveryFewRounds(XGBoostPruningCallback):
    """Optuna's XGBoost pruning callback, reporting every ``_REPORT_EVERY`` rounds (steps 4, 9, ...).

    Each report is a write and each pruning check a read of the study, which in a SQLite storage
    take longer than a boosting round on small data; every trial reports at the same rounds, so the
    median pruner still compares like with like.
    """

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        if (epoch + 1) % _REPORT_EVERY:
            return False
        return bool(super().after_iteration(model, epoch, evals_log))


def _record(trial: FrozenTrial, metric: str, multi: bool) -> dict[str, Any]:
    values = trial.values
    record: dict[str, Any] = {"number": trial.number, "params": dict(trial.params), metric: values[0]}
    if multi:
        record["latency_ms"] = values[1]
    return record


def _suggest(trial: optuna.Trial, settings: TuningSettings) -> dict[str, Any]:
    candidate: dict[str, Any] = {}
    for name, (low, high) in settings.search_space.items():
        if name in _INTEGER:
            candidate[name] = trial.suggest_int(name, int(low), int(high))
        else:
            candidate[name] = trial.suggest_float(name, low, high, log=name in _LOG_SCALE)
    return candidate
