"""Data: generation, validation (pandera, imported on use), tables by suffix, and provenance."""

from efimero.data._parts import count_rows, is_partitioned, iter_chunks, parquet_parts, sample_rows, sha256_dataset
from efimero.data._tables import SUPPORTED_SUFFIXES, read_table, write_table
from efimero.data.provenance import DataFile, check_training_files, data_metadata, training_files

__all__ = [
    "SUPPORTED_SUFFIXES", "DataFile", "check_training_files", "count_rows", "data_metadata", "is_partitioned",
    "iter_chunks", "parquet_parts", "read_table", "sample_rows", "sha256_dataset", "training_files", "write_table",
]
