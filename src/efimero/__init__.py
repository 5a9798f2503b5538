"""efimero: the machine-learning lifecycle behind an ephemeral frontend.

Importing the package is cheap; the heavy functions load their libraries on first use::

    import efimero
    efimero.generate(5000, output="data/train.csv", seed=42)
    run = efimero.train("data/train.csv", output="models/")
    efimero.predict(features, models="models/")
    efimero.rollback("staging")

Subpackages keep their stage's functions (``efimero.deploy.deploy``, ``efimero.collect.collect``,
``efimero.simulate.simulate``); the names above are the ones that do not clash with them.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "generate": "efimero._api",
    "validate_data": "efimero._api",
    "train": "efimero._api",
    "load": "efimero._api",
    "predict": "efimero._api",
    "run_validation": "efimero.gate",
    "rollback": "efimero.deploy",
    "analyze": "efimero.analysis.analyze",
    "compare_versions": "efimero.analysis.compare",
    "detect_drift": "efimero.monitor",
    "auto_retrain": "efimero.pipeline",
    "create_app": "efimero.serve",
    "Registry": "efimero.registry",
    "CSS_TASK": "efimero.schema",
    "load_training_config": "efimero.config",
    "load_retraining_config": "efimero.config",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'efimero' has no attribute {name!r}")
