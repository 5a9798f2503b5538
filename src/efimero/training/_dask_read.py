"""Reading data for Dask training: validated on the workers, one partition per Parquet file, each row's split fixed.

See :mod:`efimero.training._dask` for how the rows are split and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from efimero.config import TrainingSettings
from efimero.data import is_partitioned, parquet_parts
from efimero.data.validate import check_duplicates, check_part, load_training_data
from efimero.errors import DataError, DataValidationError
from efimero.schema import TabularTask
from efimero.training.fit import fill_weights

if TYPE_CHECKING:
    import dask.dataframe as dd
    from distributed import Client

FIT, EARLY, TEST = 0, 1, 2
DASK_SPLIT = "dask"
"""``metadata["split"]`` of a version whose rows were split by :func:`split_codes`; a retraining keeps it,
so that the version's test rows can be rebuilt (:func:`held_out_rows`) after any number of them."""
SPLIT_COLUMN = "_efimero_split"
"""The column that holds each row's split (FIT, EARLY or TEST) while it is on Dask."""
VALIDATION_BATCH_ROWS = 50_000
"""Rows a worker validates at once: pandera's peak memory grows with the batch, not with the dataset."""
_SPLIT_STREAM = 0x53504C4954  # "SPLIT": the spawn key that keeps the split's draws apart from the generator's


def dask_inputs(data: Sequence[Path]) -> Path | list[list[Path]]:
    """What :func:`read_data` reads: a single data file (read here), or per input its Parquet files (read on the
    workers). Cheap (no data read), so that bad inputs fail before a cluster starts.

    Raises:
        DataError: no input, a missing input, or one of several inputs that is not Parquet.
    """
    if not data:
        raise DataError("Dask training needs at least one data input. Got none.")
    if len(data) == 1:
        return [parquet_parts(data[0])] if is_partitioned(data[0]) else data[0]
    return [_parquet_files(path) for path in data]


def read_data(client: Client, inputs: Path | list[list[Path]], task: TabularTask, settings: TrainingSettings, *,
              partitions: int) -> tuple[dd.DataFrame, list[int]]:
    """Validate ``inputs`` (:func:`dask_inputs`) and open them as a Dask DataFrame of the task's columns and the split;
    also return the rows of each input.

    A partitioned Parquet directory is validated on the workers, one part file per task
    (:func:`~efimero.data.validate.check_part`), and read one partition per part file
    (``dask.dataframe.from_map`` over ``pandas.read_parquet``); a single file is read and
    validated here and split into ``partitions``. Several inputs must be Parquet (directories of
    part files, or ``.parquet`` files, one partition each); their files are read as a directory's
    parts and combined as the local path combines files (:func:`~efimero.training.fill_weights`).
    Each row's split (:func:`split_codes`) is fixed as it is read, so no fusing or regrouping of
    partitions by Dask can move a row to another split.

    Raises:
        DataValidationError: the first part file (in input, then name order) that breaks a rule, or a duplicate row.
    """
    import dask.dataframe as dd

    if isinstance(inputs, Path):
        frame, _ = load_training_data(inputs, task=task, allow_duplicates=settings.data.allow_duplicates)
        frame = frame.assign(**{SPLIT_COLUMN: split_codes(0, len(frame), settings)})
        return dd.from_pandas(frame, npartitions=max(partitions, 1), sort=False), [len(frame)]
    parts = [part for files in inputs for part in files]
    checks = client.gather(client.map(check_part, parts, task=task, batch_rows=VALIDATION_BATCH_ROWS, pure=False))
    _settle_workers(client)
    for check in checks:
        if check.failures:
            raise DataValidationError(str(check.part), check.failures)
    if not settings.data.allow_duplicates:
        check_duplicates(np.concatenate([c.hashes for c in checks]), [(c.part, 0, c.rows) for c in checks])
    schemas = [_schema(part) for part in parts]
    present = [[name for name in schema.names if name in task.weight_columns or name in task.columns]
               for schema in schemas]
    columns = [*task.columns, *(name for name in task.weight_columns if any(name in p for p in present))]
    meta = _complete(schemas[0].empty_table().select(present[0]).to_pandas(), columns, task)
    frame = dd.from_map(_read_part, [str(p) for p in parts], range(len(parts)), present,
                        args=[columns, settings, task], meta=meta.assign(**{SPLIT_COLUMN: np.int8(0)}),
                        label="read-parquet-part", enforce_metadata=False)
    rows = iter(check.rows for check in checks)
    return frame, [sum(next(rows) for _ in files) for files in inputs]


def held_out_rows(paths: Sequence[Path], task: TabularTask, settings: TrainingSettings) -> pd.DataFrame:
    """The test rows a Dask training of ``paths`` held out (:func:`read_data`), read back file by file.

    Each row's split depends only on its file's index among the inputs' files and the seed
    (:func:`split_codes`), so these are exactly the rows it scored, gathered one file at a time.
    """
    inputs = dask_inputs(list(paths))
    if isinstance(inputs, Path):
        frame, _ = load_training_data(inputs, task=task, allow_duplicates=True)
        return frame[split_codes(0, len(frame), settings) == TEST].reset_index(drop=True)
    kept = []
    for index, part in enumerate(part for files in inputs for part in files):
        rows = pd.read_parquet(part, columns=task.columns)
        kept.append(rows[split_codes(index, len(rows), settings) == TEST])
    return pd.concat(kept, ignore_index=True)


def _parquet_files(path: Path) -> list[Path]:
    """The Parquet files of one of several inputs: a directory's part files, or the ``.parquet`` file itself."""
    if is_partitioned(path):
        return parquet_parts(path)
    if path.suffix.lower() != ".parquet":
        raise DataError(f"{path}: each of several inputs of Dask training must be Parquet, a directory of *.parquet "
                        f"part files or a .parquet file. Got a {path.suffix or 'suffix-less'} file instead; write it "
                        "as Parquet, or train with --engine local.")
    if not path.is_file():
        raise DataError(f"{path}: no such data file.")
    return [path]


def _complete(frame: pd.DataFrame, columns: list[str], task: TabularTask) -> pd.DataFrame:
    """``frame`` with every column of ``columns``; weight columns its file lacks are filled as the local path does."""
    return fill_weights(frame.reindex(columns=columns), task)


def _settle_workers(client: Client) -> None:
    """Bring the workers back to their baseline after validation, before they load the data.

    pandera's validation grows a worker's heap by about 0.3 GiB that the allocator keeps
    (``malloc_trim`` gives little back), and a 1 GiB worker needs it for its share of the rows.
    The worker processes of a cluster efimero started are restarted (the validation's results are
    already here); a user's own workers are only trimmed: restarting them is not efimero's call.
    """
    cluster = client.cluster
    if cluster is not None and getattr(cluster, "processes", False):
        client.restart()
    else:
        client.run(_trim_memory)


def _trim_memory() -> None:
    """Give the heap pandera's validation grew back to the OS, so a worker starts training from its baseline."""
    import ctypes
    import gc

    gc.collect()
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _schema(part: Path) -> Any:
    """The Arrow schema of a Parquet file, read from its footer."""
    import pyarrow.parquet as pq

    return pq.read_schema(part)


def split_codes(file_id: int, rows: int, settings: TrainingSettings) -> np.ndarray:
    """The split of each row of one file: a uniform draw per row seeded from (random_state, file index).

    The seed sequence carries its own spawn key, so the draws are independent of any other stream
    seeded with the same numbers: ``efimero data generate`` seeds chunk ``i`` with ``(seed, i)``, and
    with ``seed == random_state`` a plain ``(random_state, i)`` would replay the draws that chose
    each row's hour, putting the early hours in the test rows.
    """
    data = settings.data
    rng = np.random.default_rng(np.random.SeedSequence([data.random_state, file_id], spawn_key=(_SPLIT_STREAM,)))
    draw = rng.random(rows)
    early = data.test_size + (1 - data.test_size) * data.validation_split
    return np.where(draw < data.test_size, TEST, np.where(draw < early, EARLY, FIT)).astype(np.int8)


def _read_part(part: str, file_id: int, present: list[str], names: list[str], settings: TrainingSettings,
               task: TabularTask) -> pd.DataFrame:
    """One part file as one partition, its split column computed as it is read (so no regrouping moves it)."""
    frame = _complete(pd.read_parquet(part, columns=present), names, task)
    return frame.assign(**{SPLIT_COLUMN: split_codes(file_id, len(frame), settings)})
