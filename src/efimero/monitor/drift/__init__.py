"""Drift statistics, one module each, composed into a reference-vs-current report.

Statistics (each registers itself in :mod:`~efimero.monitor.drift.registry` on import):

==================  ======================  ===========  ==================  ==========
name                module                  accepts      returns             threshold
==================  ======================  ===========  ==================  ==========
``ks``              :mod:`.ks`              numeric      p-value (< drift)   0.05
``psi``             :mod:`.psi`             both         distance (≥ drift)  0.1
``wasserstein``     :mod:`.wasserstein`     numeric      distance (≥ drift)  0.1 σ
``jensen_shannon``  :mod:`.jensen_shannon`  both         distance (≥ drift)  0.1
``chi2``            :mod:`.chi2`            categorical  p-value (< drift)   0.05
==================  ======================  ===========  ==================  ==========

:func:`detect_drift` composes them per column (rule in :data:`DRIFT_RULE`), weighing the
dataset verdict by the model's :func:`feature_importance` when given; :func:`reference_of` reads
every training file of a registry version as the reference; :func:`export_report` writes the
per-feature plots, ``drift.html`` and ``drift.json``.
"""

from __future__ import annotations

from efimero.monitor.drift.registry import (
    STATISTICS,
    DriftStatistic,
    FeatureType,
    ScoreKind,
    StatResult,
    get_statistic,
    register,
    statistics_for,
)

# Registration order is the order statistics appear in reports.
from efimero.monitor.drift.ks import ks_p_value  # isort: skip
from efimero.monitor.drift.psi import PSI_MODERATE, PSI_SIGNIFICANT, psi_band  # isort: skip
from efimero.monitor.drift.wasserstein import wasserstein_score  # isort: skip
from efimero.monitor.drift.jensen_shannon import js_categorical, js_numeric  # isort: skip
from efimero.monitor.drift.chi2 import chi2_p_value  # isort: skip
from efimero.monitor.drift.psi import psi_categorical, psi_numeric  # isort: skip
from efimero.monitor.drift.dataset import (  # isort: skip
    DATASET_DRIFT,
    DEFAULT_SHARE_THRESHOLD,
    DRIFT_RULE,
    FEATURE_DRIFT,
    NO_DRIFT,
    PREDICTION_DRIFT,
    UNWEIGHTED_BASIS,
    WEIGHTED_BASIS,
    ZERO_IMPORTANCE_BASIS,
    ColumnDrift,
    DriftReport,
    column_drifted,
    detect_drift,
    infer_feature_types,
)
from efimero.monitor.drift.report import export_report, plot_drift  # isort: skip
from efimero.monitor.drift.reference import (  # isort: skip
    ReferenceData,
    choose_reference,
    feature_importance,
    reference_from_files,
    reference_of,
)

__all__ = [
    "DATASET_DRIFT",
    "DEFAULT_SHARE_THRESHOLD",
    "DRIFT_RULE",
    "FEATURE_DRIFT",
    "NO_DRIFT",
    "PREDICTION_DRIFT",
    "PSI_MODERATE",
    "PSI_SIGNIFICANT",
    "STATISTICS",
    "UNWEIGHTED_BASIS",
    "WEIGHTED_BASIS",
    "ZERO_IMPORTANCE_BASIS",
    "ColumnDrift",
    "DriftReport",
    "DriftStatistic",
    "FeatureType",
    "ReferenceData",
    "ScoreKind",
    "StatResult",
    "chi2_p_value",
    "choose_reference",
    "column_drifted",
    "detect_drift",
    "export_report",
    "feature_importance",
    "get_statistic",
    "infer_feature_types",
    "js_categorical",
    "js_numeric",
    "ks_p_value",
    "plot_drift",
    "psi_band",
    "psi_categorical",
    "psi_numeric",
    "reference_from_files",
    "reference_of",
    "register",
    "statistics_for",
    "wasserstein_score",
]
