"""Partitioned Parquet: a directory of ``part-*.parquet`` files, read and written chunk by chunk.

A dataset too large for one process's memory is a directory of Parquet part files (what
``efimero data generate --output data/big/`` writes and ``dask.dataframe.read_parquet`` reads).
Nothing here holds more than one chunk of it at a time:

* :func:`iter_chunks` yields ``(part file, first row in that file, rows)`` batch by batch
  (``pyarrow.parquet.ParquetFile.iter_batches``), so validation can name the file and row;
* :func:`sample_rows` draws a seeded uniform sample without replacement of at most ``max_rows``
  rows: the row positions are drawn first from the row counts in the Parquet footers, then
  the batches are streamed and only those rows kept;
* :func:`sha256_dataset` hashes the part files' names and bytes, one file at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from efimero._io import sha256_file
from efimero.errors import DataError

PART_GLOB = "*.parquet"
DEFAULT_BATCH_ROWS = 262_144
"""Rows per batch when a partitioned dataset is streamed: about 60 MB of the 30 schema columns."""


def is_partitioned(path: str | Path) -> bool:
    """Whether ``path`` names a partitioned dataset (a directory, or a path without a file suffix)."""
    path = Path(path)
    return path.is_dir() or (not path.exists() and path.suffix == "")


def parquet_parts(path: str | Path) -> list[Path]:
    """The part files of a partitioned dataset, in name order.

    Raises:
        DataError: the directory is missing or holds no ``*.parquet`` file.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such data directory. Generate one with "
                        f"`efimero data generate --output {path}/ --size N`.")
    parts = sorted(p for p in path.glob(PART_GLOB) if p.is_file() and not p.name.startswith("."))
    if not parts:
        raise DataError(f"{path}: a partitioned dataset must hold at least one *.parquet part file. Got none; "
                        "write one with `efimero data generate --output DIR/`.")
    return parts


def _parquet_file(part: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(part)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{part}: cannot be read as Parquet: {exc}") from exc


def part_rows(parts: Sequence[Path]) -> list[int]:
    """Row count of each part file, read from its footer."""
    return [_parquet_file(part).metadata.num_rows for part in parts]


def count_rows(path: str | Path) -> int:
    """Rows of a partitioned dataset, from the part files' footers (no data is read)."""
    return sum(part_rows(parquet_parts(path)))


def iter_chunks(path: str | Path, *, batch_rows: int = DEFAULT_BATCH_ROWS,
                columns: Sequence[str] | None = None) -> Iterator[tuple[Path, int, pd.DataFrame]]:
    """Yield ``(part file, 0-based position of the batch's first row in that file, batch)`` in order.

    Raises:
        DataError: a part file cannot be read as Parquet.
    """
    for part in parquet_parts(path):
        for offset, frame in iter_part(part, batch_rows=batch_rows, columns=columns):
            yield part, offset, frame


def iter_part(part: Path, *, batch_rows: int = DEFAULT_BATCH_ROWS,
              columns: Sequence[str] | None = None) -> Iterator[tuple[int, pd.DataFrame]]:
    """Yield ``(0-based position of the batch's first row, batch)`` of one Parquet file.

    Raises:
        DataError: the file cannot be read as Parquet.
    """
    import pyarrow as pa

    offset = 0
    try:
        wanted = list(columns) if columns else None
        for batch in _parquet_file(part).iter_batches(batch_size=batch_rows, columns=wanted):
            frame = batch.to_pandas()
            yield offset, frame
            offset += len(frame)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{part}: cannot be read as Parquet after row {offset}: {exc}") from exc


def read_partitioned(path: str | Path) -> pd.DataFrame:
    """Every row of a partitioned dataset in one frame (for data known to fit in memory)."""
    frames = [frame for _, _, frame in iter_chunks(path)]
    return pd.concat(frames, ignore_index=True)


def sample_rows(path: str | Path, *, max_rows: int, seed: int = 0,
                batch_rows: int = DEFAULT_BATCH_ROWS) -> tuple[pd.DataFrame, int]:
    """A seeded uniform sample without replacement of at most ``max_rows`` rows, and the total rows.

    Every row has the same chance ``max_rows / total`` to be drawn, whatever file it sits in, so
    statistics of the sample estimate those of the whole dataset without bias; with at most
    ``max_rows`` rows the whole dataset is returned. Memory: one batch plus the sample.

    Example:
        >>> frame, total = sample_rows("data/big/", max_rows=100_000, seed=0)  # doctest: +SKIP
    """
    parts = parquet_parts(path)
    total = sum(part_rows(parts))
    if total <= max_rows:
        return read_partitioned(path), total
    chosen = np.sort(np.random.default_rng(seed).choice(total, size=max_rows, replace=False))
    kept: list[pd.DataFrame] = []
    start = 0
    for _, _, frame in iter_chunks(path, batch_rows=batch_rows):
        end = start + len(frame)
        lo, hi = np.searchsorted(chosen, [start, end])
        if hi > lo:
            kept.append(frame.iloc[chosen[lo:hi] - start])
        start = end
    return pd.concat(kept, ignore_index=True), total


def sha256_dataset(path: str | Path) -> str:
    """sha256 over each part file's name and sha256, in name order: the dataset's fingerprint."""
    digest = hashlib.sha256()
    for part in parquet_parts(path):
        digest.update(f"{part.name}\0{sha256_file(part)}\n".encode())
    return digest.hexdigest()


def write_parts(chunks: Iterator[pd.DataFrame], output: str | Path) -> Iterator[tuple[Path, pd.DataFrame]]:
    """Write each chunk as ``part-NNNNN.parquet`` of the dataset ``output``; yield each as it is written.

    The parts go to a hidden staging directory that replaces ``output`` once the last chunk is
    written, so an interrupted run leaves the previous dataset (or none), never a partial one.
    The bytes of a part depend only on its rows and the pyarrow version.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from efimero._io import atomic_write_bytes, staged_directory

    output = Path(output)
    if output.exists() and not output.is_dir():
        raise DataError(f"{output}: a partitioned dataset is written to a directory, but a file is in its place. "
                        "Remove it or choose another --output.")
    with staged_directory(output) as staging:
        for index, frame in enumerate(chunks):
            sink = pa.BufferOutputStream()
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
            atomic_write_bytes(staging / f"part-{index:05d}.parquet", sink.getvalue().to_pybytes())
            yield output / f"part-{index:05d}.parquet", frame


STATISTICS_SAMPLE_ROWS = 200_000
"""Rows of a partitioned dataset that drift statistics read: a seeded uniform sample (:func:`read_for_statistics`)."""


def read_for_statistics(path: str | Path, *, max_rows: int = STATISTICS_SAMPLE_ROWS, seed: int = 0) -> pd.DataFrame:
    """A data file whole, or a seeded uniform sample of at most ``max_rows`` rows of a partitioned dataset.

    The sample is what drift statistics are computed on when the data does not fit in memory:
    each row is equally likely to be drawn, so the distributions compared are unbiased
    estimates of the whole dataset's. The tests (KS, chi²) then test the same hypothesis with
    the power of ``max_rows`` rows (at 200,000 rows KS already detects a CDF shift of about
    0.005), and the distances carry a sampling error of order ``1/sqrt(max_rows)``.
    """
    from efimero.data._tables import read_table

    return sample_rows(path, max_rows=max_rows, seed=seed)[0] if is_partitioned(path) else read_table(path)
