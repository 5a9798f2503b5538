"""The kinds of task an estimator can learn."""

from __future__ import annotations

from enum import StrEnum

from efimero.errors import UnknownAlgorithmError

NOISE = -1
"""The cluster id of rows that belong to no cluster (DBSCAN)."""


class TaskKind(StrEnum):
    """What the target looks like, which decides the objective, the outputs and the metrics."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    REGRESSION = "regression"
    MULTI_OUTPUT = "multi_output"
    """Several numeric targets predicted together: ``y`` and ``predict`` are (rows, outputs)."""
    CLUSTERING = "clustering"
    """No target: ``predict`` returns a cluster id per row, -1 for noise (DBSCAN)."""

    @property
    def is_classification(self) -> bool:
        return self in (TaskKind.BINARY, TaskKind.MULTICLASS)

    @classmethod
    def parse(cls, value: TaskKind | str) -> TaskKind:
        """The task kind named ``value``, or an error listing the valid names."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(kind.value for kind in cls)
            raise UnknownAlgorithmError(f"task kind must be one of {valid}. Got {value!r} instead.") from None
