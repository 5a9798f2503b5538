"""Monitoring: drift between reference and current data (see :mod:`efimero.monitor.drift`).

Example:
    >>> from efimero.data.generate import generate_dataset
    >>> from efimero.monitor import detect_drift
    >>> detect_drift(generate_dataset(500, seed=1), generate_dataset(500, seed=2)).verdict
    'no drift'
"""

from __future__ import annotations

from efimero.monitor.drift import (
    DATASET_DRIFT,
    DEFAULT_SHARE_THRESHOLD,
    DRIFT_RULE,
    FEATURE_DRIFT,
    NO_DRIFT,
    PREDICTION_DRIFT,
    STATISTICS,
    ColumnDrift,
    DriftReport,
    DriftStatistic,
    StatResult,
    detect_drift,
    export_report,
    get_statistic,
    statistics_for,
)

__all__ = [
    "DATASET_DRIFT",
    "DEFAULT_SHARE_THRESHOLD",
    "DRIFT_RULE",
    "FEATURE_DRIFT",
    "NO_DRIFT",
    "PREDICTION_DRIFT",
    "STATISTICS",
    "ColumnDrift",
    "DriftReport",
    "DriftStatistic",
    "StatResult",
    "detect_drift",
    "export_report",
    "get_statistic",
    "statistics_for",
]
