"""The Python API behind the CLI: each function is one ``efimero`` command."""

from __future__ import annotations

import platform
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from efimero import tracking
from efimero._io import atomic_write_json, sha256_file
from efimero.config import TrainingConfig, load_training_config
from efimero.css import DEFAULT_TOKENS, StyleTokens
from efimero.css import METADATA_KEY as TOKENS_METADATA_KEY
from efimero.data import data_metadata, write_table
from efimero.data._parts import is_partitioned, parquet_parts, sha256_dataset, write_parts
from efimero.data.generate import (
    CHUNK_ROWS,
    DatasetDescription,
    Pattern,
    describe_dataset,
    generate_chunks,
    generate_dataset,
)
from efimero.data.validate import ValidationReport, load_training_data, validate_dataset, validate_frame
from efimero.errors import TrainingError
from efimero.registry import Registry
from efimero.training import DASK_SPLIT, ModelBundle, Prediction, TrainingResult
from efimero.training import train as train_models
from efimero.training._dask import NO_TUNING, DaskEngine, train_dask
from efimero.training.tune import ProgressCallback

_LIBRARIES = ("efimero", "xgboost", "scikit-learn", "numpy", "pandas", "optuna", "pandera", "dask", "distributed")


@dataclass(frozen=True)
class GenerateResult:
    output: Path
    rows: int
    metadata: dict[str, Any]
    metadata_path: Path | None
    validation: ValidationReport | None


def generate(
    size: int = 1000,
    *,
    output: str | Path = "data/synthetic_training_data.csv",
    seed: int = 42,
    pattern: Pattern = "realistic",
    validate: bool = False,
    export_metadata: bool = False,
    progress: ProgressCallback | None = None,
    tokens: StyleTokens = DEFAULT_TOKENS,
) -> GenerateResult:
    """Generate a synthetic training file (CSV, JSON or Parquet by suffix), or a partitioned dataset.

    An ``output`` without a file suffix (``data/big/``) is a directory of Parquet part files,
    generated and written one chunk at a time (:func:`generate_partitioned`). ``tokens`` are the
    site's style tokens whose targets the rows carry (:func:`~efimero.data.generate.generate_dataset`).

    Example:
        >>> efimero.generate(500, output="data/small.csv", seed=1)  # doctest: +SKIP
    """
    if is_partitioned(output):
        return generate_partitioned(size, output=output, seed=seed, pattern=pattern, validate=validate,
                                    export_metadata=export_metadata, progress=progress, tokens=tokens)
    frame = generate_dataset(size, seed=seed, pattern=pattern, tokens=tokens)
    report = validate_frame(frame, source=str(output), task=tokens.task)[1] if validate else None
    output = write_table(frame, output)
    description = describe_dataset(frame, seed=seed, pattern=pattern)
    description["sha256"] = sha256_file(output)
    metadata_path = None
    if export_metadata:
        metadata_path = output.with_name(f"{output.stem}_metadata.json")
        atomic_write_json(metadata_path, description)
    return GenerateResult(output, len(frame), description, metadata_path, report)


def generate_partitioned(
    size: int,
    *,
    output: str | Path,
    seed: int = 42,
    pattern: Pattern = "realistic",
    validate: bool = False,
    export_metadata: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    progress: ProgressCallback | None = None,
    tokens: StyleTokens = DEFAULT_TOKENS,
) -> GenerateResult:
    """Generate ``size`` rows as a directory of Parquet part files, one chunk in memory at a time.

    Each chunk is seeded from ``(seed, chunk index)`` (:func:`~efimero.data.generate.generate_chunks`),
    so the same seed gives the same bytes; ``progress(description, 1)`` is called per chunk
    written. The metadata (``<output>_metadata.json`` beside the directory) is accumulated chunk by
    chunk and its ``sha256`` fingerprints the part files (:func:`~efimero.data.sha256_dataset`).

    Example:
        >>> efimero.generate(10_000_000, output="data/big/")  # doctest: +SKIP
    """
    output = Path(output)
    description = DatasetDescription(seed=seed, pattern=pattern)
    checked = ValidationReport(str(output), rows=0, columns=len(tokens.task.columns)) if validate else None
    chunks = generate_chunks(size, seed=seed, pattern=pattern, chunk_rows=chunk_rows, tokens=tokens)
    for part, frame in write_parts(chunks, output):
        if validate:
            validate_frame(frame, source=str(part), task=tokens.task)
        description.add(frame)
        if progress:
            progress(f"wrote {part.name}", 1)
    metadata = description.to_dict() | {"sha256": sha256_dataset(output), "partitioned": True,
                                        "part_files": len(parquet_parts(output)), "chunk_rows": chunk_rows}
    metadata_path = None
    if export_metadata:
        metadata_path = output.with_name(f"{output.name}_metadata.json")
        atomic_write_json(metadata_path, metadata)
    report = replace(checked, rows=description.rows) if checked else None
    return GenerateResult(output, description.rows, metadata, metadata_path, report)


def validate_data(path: str | Path, *, allow_duplicates: bool = False,
                  tokens: StyleTokens = DEFAULT_TOKENS) -> ValidationReport:
    """Validate a training file, or a partitioned dataset chunk by chunk, against the columns of
    ``tokens``' task; raises DataValidationError on failure."""
    return validate_dataset(path, allow_duplicates=allow_duplicates, task=tokens.task)


@dataclass(frozen=True)
class TrainRun:
    """A finished training run: the registry version it created and what it measured."""

    version: str
    models_dir: Path
    result: TrainingResult
    metadata: dict[str, Any]


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def train(
    data: str | Path,
    *,
    output: str | Path | None = None,
    config: TrainingConfig | None = None,
    tune_hyperparams: bool = False,
    tokens: StyleTokens = DEFAULT_TOKENS,
    progress: ProgressCallback | None = None,
    engine: DaskEngine | None = None,
) -> TrainRun:
    """Validate ``data``, train every model and save a new current version in the registry.

    The models predict ``tokens``' targets (a site's own style tokens, :mod:`efimero.css`); the
    version carries the tokens in ``metadata["style_tokens"]``, so that serving, the JS client and
    collection follow it.

    With ``engine`` (a :class:`~efimero.training.DaskEngine`) the models are trained with
    ``xgboost.dask`` over the data's partitions (:func:`~efimero.training.train_dask`) and saved
    as the same kind of version; ``metadata["engine"]`` records where.

    Inside an open tracking run (``efimero train --mlflow-uri``, or ``efimero.tracking.run("train")``)
    the tuning trials become nested runs, and the version is logged and registered in MLflow.

    Example:
        >>> run = efimero.train("data/synthetic_training_data.csv", output="models/")  # doctest: +SKIP
        >>> run.result.metrics["summary"]["mean_accuracy"] > 0.7  # doctest: +SKIP
        True
    """
    config = config or load_training_config()
    settings = config.training
    task = tokens.task
    if engine is not None:
        if tune_hyperparams:
            raise TrainingError(NO_TUNING)
        result = train_dask(data, task=task, settings=settings, engine=engine, progress=progress)
        total_rows = result.n_rows["total"]
    else:
        frame, _ = load_training_data(data, task=task, allow_duplicates=settings.data.allow_duplicates)
        result = train_models(frame, task=task, settings=settings, tune_hyperparams=tune_hyperparams,
                              progress=progress)
        total_rows = len(frame)
    metadata = {
        "task": task.name,
        TOKENS_METADATA_KEY: tokens.to_dict(),
        "algorithm": "xgboost",
        "hyperparameters": result.hyperparameters,
        "tuning": {
            name: {"method": t.method, "metric": t.metric, "best_score": t.best_score, "candidates": len(t.trials)}
            for name, t in result.tuning.items()
        },
        "training_settings": settings.model_dump(mode="json"),
        **data_metadata([(data, total_rows)]),
        "rows": result.n_rows,
        "training_duration_s": round(result.duration_s, 3),
        "library_versions": library_versions(),
        "engine": engine.describe() if engine is not None else {"name": "local"},
        **({"split": DASK_SPLIT} if engine is not None else {}),
    }
    models_dir = Path(output) if output is not None else config.registry.model_dir
    registry = Registry(models_dir)
    version = registry.save(
        result.bundle,
        metrics=result.metrics,
        metadata=metadata,
        max_versions_to_keep=config.registry.max_versions_to_keep,
    )
    tracking.current().log_version(registry.path(version))
    return TrainRun(version, models_dir, result, registry.info(version).metadata)


def load(models: str | Path = "models", version: str | None = None) -> ModelBundle:
    """Load a registry version (the current one by default), checksums verified.

    Example:
        >>> bundle = efimero.load("models/")  # doctest: +SKIP
        >>> bundle.predict(features).values["font_size_base"]  # doctest: +SKIP
        16.9
    """
    return Registry(models).load(version)


_cache: dict[tuple[str, str], ModelBundle] = {}
_cache_lock = threading.Lock()


def predict(context: Mapping[str, Any], *, models: str | Path = "models", version: str | None = None) -> Prediction:
    """Predict the CSS classes and variables of one visitor's 19 features.

    Loaded versions are cached per registry and version: only the ``current`` pointer is
    read per call, so a new live version is picked up without rebuilding anything else.
    """
    registry = Registry(models)
    name = registry.current() if version in (None, "current") else version
    bundle = _cache.get((str(registry.root), name or ""))
    if bundle is None:
        with _cache_lock:
            name = registry.resolve(name)
            key = (str(registry.root), name)
            bundle = _cache.get(key) or registry.load(name)
            _cache[key] = bundle
    return bundle.predict(context)
