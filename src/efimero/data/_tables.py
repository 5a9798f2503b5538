"""Reading and writing tables by file suffix: CSV, JSON (records) or Parquet."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from efimero._io import atomic_write_bytes
from efimero.errors import DataError

SUPPORTED_SUFFIXES = (".csv", ".json", ".parquet")


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataError(
            f"{path}: the file suffix must be one of {', '.join(SUPPORTED_SUFFIXES)}. "
            f"Got {suffix or 'no suffix'!r} instead."
        )
    return suffix


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, JSON-records or Parquet file into a DataFrame.

    Raises:
        DataError: the file is missing, has an unknown suffix or cannot be parsed.
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise DataError(f"{path}: no such data file. Generate one with `efimero data generate`.")
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix == ".json":
            return pd.read_json(path, orient="records")
        return pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be read as {suffix[1:].upper()}: {exc}") from exc


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` atomically in the format named by the suffix; return the path."""
    path = Path(path)
    suffix = _suffix(path)
    if suffix == ".csv":
        payload = frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    elif suffix == ".json":
        payload = frame.to_json(orient="records", indent=1).encode("utf-8")
    else:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        payload = buffer.getvalue()
    atomic_write_bytes(path, payload)
    return path
