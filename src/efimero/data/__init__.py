"""Data: generation, validation (pandera, imported on use), tables by suffix, and provenance."""

from efimero.data._tables import SUPPORTED_SUFFIXES, read_table, write_table
from efimero.data.provenance import DataFile, check_training_files, data_metadata, training_files

__all__ = [
    "SUPPORTED_SUFFIXES", "DataFile", "check_training_files", "data_metadata", "read_table", "training_files",
    "write_table",
]
