"""Monitoring: drift between reference and current data (see :mod:`efimero.monitor.drift`), and the
per-window check of every served version (:func:`check`: metrics per version and arm in
:mod:`~efimero.monitor.online`, anomaly rules in :mod:`~efimero.monitor.rules`, alerts in
:mod:`~efimero.monitor.alerts`). Nothing here imports the service or deployment: the rollout
controller carries out the actions a report calls for.

Example:
    >>> from efimero.data.generate import generate_dataset
    >>> from efimero.monitor import detect_drift
    >>> detect_drift(generate_dataset(500, seed=1), generate_dataset(500, seed=2)).verdict
    'no drift'
"""

from __future__ import annotations

from efimero.monitor import drift
from efimero.monitor.alerts import Alert, record_and_notify
from efimero.monitor.check import MonitorReport, check
from efimero.monitor.drift import *  # noqa: F403 - the drift package is the monitor's public surface
from efimero.monitor.online import Measure, VersionWindow, window_metrics
from efimero.monitor.rules import RULES, RuleResult, action_for, evaluate

__all__ = [*drift.__all__, "RULES", "Alert", "Measure", "MonitorReport", "RuleResult", "VersionWindow",
           "action_for", "check", "evaluate", "record_and_notify", "window_metrics"]
