"""Training on Dask (``efimero train --engine dask``): the models of :func:`~efimero.training.train`, from partitions.

The rows never meet in one process: workers validate the Parquet part files, and
``dask.dataframe.read_parquet`` feeds ``xgboost.dask`` (``DaskQuantileDMatrix``), which holds on
each worker only its share of the scaled features as float32 (persisted partitions spill to disk
past the worker's memory target). The result is the same :class:`~efimero.bundle.ModelBundle`
(one ``multi:softprob`` classifier per class target, one multi-output regressor on standardised
targets, a standard scaler), saved as the same registry version. What differs, and why:

* **Split.** Each row goes to the test, early-stopping or fit rows by a uniform draw seeded from
  ``(random_state, part file index)``, in the shares ``test_size`` and ``validation_split`` of
  the local path; sklearn's stratified split needs every row in one place. With the row counts
  Dask is for, every split's class shares match the whole within sampling error.
* **Scaler and target scales.** Mean and population standard deviation per feature over the
  train rows (per regression target over the fit rows), computed by Dask from per-partition
  moments: what ``StandardScaler`` and the local regressor compute.
* **No CV, no tuning.** k-fold CV would train k more times over all the data; ``metrics["cv"]``
  is empty and tuning is refused (tune on a sample with the local engine).
* **Test metrics: exact, distributed.** Each partition of the test rows is predicted on its
  worker and reduced to sufficient statistics (a confusion matrix and summed log-loss per class
  target; count, mean, centred sum of squares, squared and absolute error per variable, merged
  with Chan's formula), from which the client forms the numbers of
  :func:`~efimero.training.evaluate`: accuracy, macro-F1, log-loss, majority baseline, RMSE,
  MAE and R².
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from efimero.bundle import ModelBundle, Preprocessor, TrainedModel
from efimero.config import ClassifierParams, RegressorParams, TrainingSettings
from efimero.errors import TrainingError
from efimero.schema import TabularTask
from efimero.training._dask_read import EARLY, FIT, SPLIT_COLUMN, TEST, dask_inputs, read_data
from efimero.training._xgb import Runtime, booster_params, for_inference, gpu_problem, used_trees
from efimero.training.fit import MIN_ROWS, TrainingResult
from efimero.training.metrics import summary_scores
from efimero.training.tune import ProgressCallback

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

NO_TUNING = ("tuning runs on the local engine only: tune on a sample without --engine dask, then train on Dask with "
             "the tuned settings in the config.")


@dataclass(frozen=True)
class DaskEngine:
    """Where Dask training runs: a scheduler address, or a ``LocalCluster`` of ``workers`` processes.

    ``worker_memory`` is each local worker's limit (``"1GiB"``); past 60 % of it a worker spills
    data to disk, past 95 % its nanny restarts it. A scheduler address ignores the local settings.
    """

    scheduler: str | None = None
    workers: int = 2
    worker_memory: str = "2GiB"
    threads_per_worker: int = 1
    processes: bool = True
    connect_timeout_s: float = 10.0

    def describe(self) -> dict[str, Any]:
        if self.scheduler:
            return {"name": "dask", "scheduler": self.scheduler}
        return {"name": "dask", "scheduler": "LocalCluster", "workers": self.workers,
                "worker_memory": self.worker_memory, "threads_per_worker": self.threads_per_worker}


@contextmanager
def dask_client(engine: DaskEngine) -> Iterator[Client]:
    """A ``distributed.Client`` of ``engine``: connected to its scheduler, or to a new ``LocalCluster``.

    Raises:
        TrainingError: the scheduler cannot be reached (its address named).
    """
    from distributed import Client, LocalCluster

    if engine.scheduler:
        try:
            client = Client(engine.scheduler, timeout=engine.connect_timeout_s)
        except (OSError, TimeoutError, ValueError) as exc:
            raise TrainingError(
                f"cannot reach the Dask scheduler at {engine.scheduler} within {engine.connect_timeout_s:g} s "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no answer'}). Start one with "
                "`dask scheduler` and workers with `dask worker ADDRESS`, or drop --scheduler to use a local cluster."
            ) from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=engine.workers, threads_per_worker=engine.threads_per_worker,
                      memory_limit=engine.worker_memory, processes=engine.processes,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        yield client


def _check_gpus(client: Client) -> None:
    """Refuse ``device="cuda"`` unless every worker can train on a CUDA device."""
    problems = {worker: problem for worker, problem in client.run(gpu_problem).items() if problem}
    if problems:
        worker, problem = next(iter(problems.items()))
        raise TrainingError(f"Dask worker {worker}: {problem}")


def _moments(frame: dd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation per column (a zero deviation becomes 1), from partitions."""
    import dask

    numbers = frame.astype("float64")
    mean, var = dask.compute(numbers.mean(), numbers.var(ddof=0))
    scale = np.sqrt(var.to_numpy(dtype=float))
    scale[~(scale > 10 * np.finfo(float).eps)] = 1.0  # StandardScaler's handling of constant columns
    return mean.to_numpy(dtype=float), scale


def _weight_column(task: TabularTask, columns: Sequence[str], targets: list[str]) -> str | None:
    """The column :func:`~efimero.training.row_weights` would take the model's weights from."""
    own = task.target_weight_column(targets[0]) if len(targets) == 1 else None
    return next((c for c in (own, task.weight_column) if c and c in columns), None)


def _codes(series: pd.Series, labels: list[str]) -> pd.Series:
    return pd.Series(pd.Categorical(series, categories=labels).codes, index=series.index, dtype="int32")


@dataclass
class _Split:
    """The fit, early-stopping and test rows, and the scaler fitted on fit + early stopping."""

    fit: dd.DataFrame
    early: dd.DataFrame
    test: dd.DataFrame
    preprocessor: Preprocessor
    x_fit: dd.DataFrame | None = None
    x_early: dd.DataFrame | None = None

    def prepare_features(self) -> None:
        """The scaled features of the fit and early-stopping rows, as graphs: each model's DMatrix persists
        them while it trains and releases them after, so a worker never holds more than one model's data."""
        self.x_fit, self.x_early = self.features(self.fit), self.features(self.early)

    def features(self, rows: dd.DataFrame) -> dd.DataFrame:
        """The scaled features of ``rows`` as float32 (what XGBoost bins anyway): half the memory of float64."""
        return standardised(rows[self.preprocessor.feature_names], self.preprocessor.mean, self.preprocessor.scale,
                            dtype="float32")


def _standardise(rows: pd.DataFrame, mean: np.ndarray, scale: np.ndarray, dtype: str) -> pd.DataFrame:
    values = ((rows.to_numpy(dtype=float) - mean) / scale).astype(dtype)
    return pd.DataFrame(values, index=rows.index, columns=rows.columns)


def standardised(rows: dd.DataFrame, mean: np.ndarray, scale: np.ndarray, *, dtype: str = "float64") -> dd.DataFrame:
    """``(rows - mean) / scale`` per partition, in ``dtype``."""
    meta = pd.DataFrame({name: pd.Series(dtype=dtype) for name in rows.columns})
    return rows.map_partitions(_standardise, mean, scale, dtype, meta=meta)


def _boost(client: Client, native: dict[str, Any], params: ClassifierParams | RegressorParams, split: _Split,
           labels: Any, weight: str | None, *, xgb_model: Any = None) -> Any:
    """``xgboost.dask.train`` on the fit rows, stopping early on the early-stopping rows."""
    import xgboost as xgb
    from xgboost import dask as dxgb

    with xgb.config_context(verbosity=0):
        train = dxgb.DaskQuantileDMatrix(client, split.x_fit, labels(split.fit),
                                         weight=split.fit[weight] if weight else None)
        evals = []
        if params.early_stopping_rounds is not None:
            evals = [(dxgb.DaskQuantileDMatrix(client, split.x_early, labels(split.early), ref=train,
                                               weight=split.early[weight] if weight else None), "validation")]
        output = dxgb.train(client, native, train, num_boost_round=params.n_estimators, evals=evals or None,
                            early_stopping_rounds=params.early_stopping_rounds if evals else None,
                            verbose_eval=False, xgb_model=xgb_model)
    booster = used_trees(output["booster"]) if evals else output["booster"]
    booster.feature_names, booster.feature_types = None, None  # as trained from arrays on the local path
    return for_inference(booster)


def fit_models(client: Client, split: _Split, task: TabularTask, settings: TrainingSettings, runtime: Runtime,
               labels: dict[str, list[str]], progress: ProgressCallback | None = None) -> dict[str, TrainedModel]:
    """One classifier per class target and the multi-output regressor, trained with ``xgboost.dask``."""
    columns = list(split.fit.columns)
    models: dict[str, TrainedModel] = {}
    for target in task.class_target_names:
        params = settings.models.classifier
        known = labels[target]
        if len(known) < 2:
            raise TrainingError(f"target {target!r} has a single label in the training rows; it needs at least two.")
        native = booster_params(params, runtime) | {"num_class": len(known), "eval_metric": "mlogloss"}
        booster = _boost(client, native, params, split,
                         lambda rows, t=target, k=known: rows[t].map_partitions(_codes, k, meta=(t, "int32")),
                         _weight_column(task, columns, [target]))
        models[target] = TrainedModel(target, "classifier", [target], booster, params.model_dump(), labels=known)
        if progress:
            progress(f"fitting {target} on Dask", 1)
    if task.regression_targets:
        regressor = settings.models.regressor
        names = task.regression_target_names
        mean, scale = _moments(split.fit[names])
        native = booster_params(regressor, runtime) | {"eval_metric": "rmse"}
        booster = _boost(client, native, regressor, split,
                         lambda rows: standardised(rows[names], mean, scale, dtype="float32"),
                         _weight_column(task, columns, names))
        models[task.regression_model] = TrainedModel(task.regression_model, "regressor", names, booster,
                                                     regressor.model_dump(), target_mean=mean, target_scale=scale)
        if progress:
            progress(f"fitting {task.regression_model} on Dask", 1)
    return models


def split_rows(marked: dd.DataFrame, task: TabularTask) -> _Split:
    """Select the fit, early-stopping and test rows by the split column :func:`read_data` added; fit the scaler."""
    split = marked[SPLIT_COLUMN]
    mean, scale = _moments(marked[split != TEST][task.feature_names])
    return _Split(marked[split == FIT], marked[split == EARLY], marked[split == TEST],
                  Preprocessor(list(task.feature_names), mean, scale))


def train_dask(
    data: str | Path | Sequence[str | Path],
    *,
    task: TabularTask,
    settings: TrainingSettings,
    engine: DaskEngine | None = None,
    progress: ProgressCallback | None = None,
    keep_test_rows: bool = False,
) -> TrainingResult:
    """Train every model of ``task`` on Dask from a Parquet directory (or any data file), or from several Parquet
    inputs combined (:func:`read_data`); see the module docstring.

    ``input_rows`` of the result holds the rows of each input. With ``keep_test_rows`` the test rows
    are gathered into ``test_rows`` (the client then holds them: ``test_size`` of the data), for a
    comparison that needs them in one frame (full retraining compares them with the live version).

    Raises:
        TrainingError: the scheduler is unreachable, too few rows, a target with one label, or
            ``device="cuda"`` without a usable GPU on a worker.
        DataError: one of several inputs is not Parquet, or an input is missing.
        DataValidationError: the data breaks the schema (part file and row named).

    Example:
        >>> result = train_dask("data/big/", task=CSS_TASK, settings=settings)  # doctest: +SKIP
    """
    from efimero.training._dask_metrics import evaluate_distributed

    inputs = dask_inputs([Path(data)] if isinstance(data, str | Path) else [Path(path) for path in data])
    engine = engine or DaskEngine()
    started = time.perf_counter()
    with dask_client(engine) as client:
        if settings.device == "cuda":
            _check_gpus(client)
        frame, input_rows = read_data(client, inputs, task, settings, partitions=max(engine.workers, 1))
        rows = sum(input_rows)
        if progress:
            progress("validated on Dask", 1)
        if rows < MIN_ROWS:
            raise TrainingError(f"training needs at least {MIN_ROWS} rows. Got {rows} instead.")
        split = split_rows(frame, task)
        split.prepare_features()
        labels = _present_labels(split, task)
        runtime = Runtime(seed=settings.data.random_state, n_jobs=-1, device=settings.device)
        bundle = ModelBundle(split.preprocessor, fit_models(client, split, task, settings, runtime, labels, progress))
        metrics, counts = evaluate_distributed(client, bundle, split)
        test_rows = split.test.drop(columns=SPLIT_COLUMN).compute().reset_index(drop=True) if keep_test_rows else None
        if progress:
            progress("test metrics on Dask", 1)
    metrics["cv"] = {}
    metrics["summary"] = summary_scores(metrics)
    return TrainingResult(
        bundle=bundle, metrics=metrics,
        hyperparameters={name: model.params for name, model in bundle.models.items()},
        duration_s=time.perf_counter() - started,
        n_rows={"total": rows, "train": counts[FIT], "early_stopping": counts[EARLY], "test": counts[TEST]},
        test_rows=test_rows, input_rows=input_rows,
    )


def _present_labels(split: _Split, task: TabularTask) -> dict[str, list[str]]:
    """Per class target, the schema's labels that occur in the train rows, in schema order."""
    import dask

    names = task.class_target_names
    parts = [*split.fit[names].to_delayed(), *split.early[names].to_delayed()]
    seen = dask.compute(*[dask.delayed(_labels_in)(part) for part in parts])
    return {t.name: [label for label in t.labels if any(label in s[t.name] for s in seen)]
            for t in task.class_targets}


def _labels_in(rows: pd.DataFrame) -> dict[str, set[str]]:
    return {name: set(rows[name].unique()) for name in rows.columns}


def dask_steps(task: TabularTask) -> int:
    """Progress steps of a Dask training run: validation, one per model, test metrics."""
    return 2 + len(task.class_targets) + (1 if task.regression_targets else 0)


def continue_on_dask(client: Client, native: dict[str, Any], x: np.ndarray, labels: np.ndarray,
                     weight: np.ndarray | None, *, rounds: int, booster: Any) -> Any:
    """Add ``rounds`` trees to ``booster`` with ``xgboost.dask.train(xgb_model=...)`` on rows spread over the workers.

    The rows (already scaled, labels encoded as the local path does) are split into one chunk
    per worker; the appended trees are those ``xgboost.train(xgb_model=...)`` would grow on them.
    """
    import dask.array as da
    from xgboost import dask as dxgb

    workers = max(len(client.scheduler_info().get("workers", {})), 1)
    chunk = max(-(-len(x) // workers), 1)
    data = da.from_array(x, chunks=(chunk, x.shape[1]))
    label = da.from_array(labels, chunks=(chunk, *labels.shape[1:]))
    weights = None if weight is None else da.from_array(weight, chunks=(chunk,))
    matrix = dxgb.DaskDMatrix(client, data, label, weight=weights)
    output = dxgb.train(client, native, matrix, num_boost_round=rounds, xgb_model=booster, verbose_eval=False)
    updated = output["booster"]
    updated.feature_names, updated.feature_types = None, None
    return updated
