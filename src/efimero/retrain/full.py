"""Full retraining: train from scratch on the combined data, keep it only if it beats the live one.

The new version is saved beside the live one (not current) and both are compared on the new
model's held-out test rows with ``efimero compare``'s paired bootstrap and McNemar tests.

Which targets decide: on curated data (no ``sample_weight`` column) every target, by
``compare``'s own verdict. On production data the regression targets of most rows are the
values the live model itself served (confirmed sessions keep the served style), so the live
model scores near-perfectly on them by construction; there the class targets decide — where
behaviour and explicit feedback carry evidence independent of the live model — and the
regression results are reported beside them. Either way a single significantly worse deciding
target blocks promotion, and only "better" makes the version current (deploying it is the pipeline's job).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from efimero import tracking
from efimero._api import library_versions
from efimero.analysis.compare import B_BETTER, B_WORSE, NO_DIFFERENCE, Comparison, compare_versions
from efimero.config import TrainingConfig, load_training_config
from efimero.css import DEFAULT_TOKENS, tokens_of
from efimero.css import METADATA_KEY as TOKENS_METADATA_KEY
from efimero.data import data_metadata, write_table
from efimero.errors import TrainingError
from efimero.registry import Registry
from efimero.retrain._common import RetrainResult, combine, read_files, require_data, score, tracked
from efimero.schema import TabularTask
from efimero.training import DASK_SPLIT, DaskEngine, train, train_dask
from efimero.training._dask import NO_TUNING


@tracked
def full(
    data: Sequence[str | Path],
    *,
    output: str | Path = "models",
    config: TrainingConfig | None = None,
    tune_hyperparams: bool = False,
    compare_with_current: bool = True,
    task: TabularTask | None = None,
    engine: DaskEngine | None = None,
) -> RetrainResult:
    """Retrain every model from scratch on ``data``; promote only a significantly better version.

    The version records every file it was trained on (path, sha256, rows: ``data_files``) and
    the library versions, as ``efimero train`` does, so drift checks, ``collect --validate`` and
    the next incremental run's forgetting check can read all of its training data. The new version
    predicts the style tokens of the live one (``task`` defaults to theirs).

    With ``engine`` the models are trained with ``xgboost.dask`` (:func:`~efimero.training.train_dask`:
    Dask's own split, no CV, no tuning); the version is an ordinary one, and its held-out rows,
    gathered from the workers, are compared with the live version as the local ones are. ``data``
    is then one input :func:`~efimero.training.train_dask` reads, or several Parquet inputs
    (directories of part files or ``.parquet`` files).

    Raises:
        TrainingError: tuning was asked for on Dask, or Dask training failed.
        DataError: ``data`` is empty, or one of several inputs is not Parquet (with ``engine``).
    """
    config = config or load_training_config()
    registry = Registry(output)
    live = registry.current()
    tokens = tokens_of(registry.info(live).metadata) if live is not None else DEFAULT_TOKENS
    task = task or tokens.task
    settings = config.training
    if engine is None:
        frames = read_files(list(data), task)
        trained = train(combine(frames, task), task=task, settings=settings, tune_hyperparams=tune_hyperparams)
        trained.input_rows = [len(rows) for rows in frames]
    else:
        if tune_hyperparams:
            raise TrainingError(NO_TUNING)
        require_data(data)
        # duplicates allowed, as read_files allows them: production repeats itself
        settings = settings.model_copy(update={"data": settings.data.model_copy(update={"allow_duplicates": True})})
        trained = train_dask(list(data), task=task, settings=settings, engine=engine, keep_test_rows=True)
    metadata = {
        "task": task.name, TOKENS_METADATA_KEY: tokens.to_dict(), "algorithm": "xgboost", "strategy": "full",
        "parent_version": live, "engine": engine.describe() if engine is not None else {"name": "local"},
        **({"split": DASK_SPLIT} if engine is not None else {}),
        "hyperparameters": trained.hyperparameters, "training_settings": settings.model_dump(mode="json"),
        **data_metadata(list(zip(data, trained.input_rows, strict=True))),
        "rows": trained.n_rows, "training_duration_s": round(trained.duration_s, 3),
        "library_versions": library_versions(),
    }
    version = registry.save(trained.bundle, metrics=trained.metrics, metadata=metadata, set_current=live is None,
                            max_versions_to_keep=config.registry.max_versions_to_keep)
    tracking.current().log_version(registry.path(version))
    result = RetrainResult("full", "success", "", parent_version=live, version=version, rows=trained.n_rows)
    if live is not None and compare_with_current:
        holdout = trained.test_rows
        assert holdout is not None, "train() keeps the rows it held out"
        with tempfile.TemporaryDirectory() as scratch:
            test_file = write_table(holdout, Path(scratch) / "holdout.csv")
            comparison = compare_versions(registry.path(live), registry.path(version), test_file)
        production = task.weight_column is not None and task.weight_column in holdout
        verdict = _class_verdict(comparison) if production else comparison.verdict
        result.scores = {"holdout": {"current": score(registry.load(live), holdout),
                                     "retrained": score(trained.bundle, holdout)},
                         "verdict": verdict, "deciding_targets": "class targets" if production else "all targets",
                         "outcomes": {t.target: t.outcome for t in comparison.targets}, "rule": comparison.rule}
        if verdict != B_BETTER:
            result.status = "not_better"
            result.reason = f"compared with {live} on {len(holdout)} held-out rows: {verdict}"
            return result
        result.reason = f"better than {live} on {len(holdout)} held-out rows"
    registry.set_current(version)
    return result


def _class_verdict(comparison: Comparison) -> str:
    """``compare``'s rule applied to the class targets only (see the module docstring)."""
    outcomes = [t.outcome for t in comparison.group("classification")]
    if "worse" in outcomes:
        return B_WORSE
    return B_BETTER if "better" in outcomes else NO_DIFFERENCE
