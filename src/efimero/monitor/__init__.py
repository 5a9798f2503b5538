"""Monitoring: drift between reference and current data (see :mod:`efimero.monitor.drift`).

Example:
    >>> from efimero.data.generate import generate_dataset
    >>> from efimero.monitor import detect_drift
    >>> detect_drift(generate_dataset(500, seed=1), generate_dataset(500, seed=2)).verdict
    'no drift'
"""

from __future__ import annotations

from efimero.monitor import drift
from efimero.monitor.drift import *  # noqa: F403 - the drift package is the monitor's public surface

__all__ = drift.__all__
