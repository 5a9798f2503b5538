"""scikit-learn models to and from skops files, never through pickle, loaded against an allow-list.

skops stores an object tree as JSON plus ``.npy`` arrays in a zip and rebuilds only the types
the caller trusts. It trusts by default builtins, numpy arrays and scikit-learn's estimators;
efimero adds exactly the internal types its own estimators are made of (below). A file naming
any other type is refused before anything in it is constructed, so a tampered or foreign model
file cannot run code when the service loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import skops.io as sio

from efimero.errors import UntrustedModelError

TRUSTED_TYPES: frozenset[str] = frozenset({
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # gradient_boosting's trees
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",  # mlp's optimiser state
    "sklearn.tree._tree.Tree",  # random_forest's trees
})
"""The types efimero's estimators hold beyond those skops trusts by default (scikit-learn's estimators,
numpy arrays, builtins); ``tests/estimators`` checks that every estimator needs no more than these."""


def dump_trusted(state: dict[str, Any]) -> bytes:
    """``state`` (the model and what prediction needs beside it) as skops bytes."""
    return bytes(sio.dumps(state))


def load_trusted(path: Path, *, also_trusted: frozenset[str] = frozenset()) -> Any:
    """Rebuild what :func:`dump_trusted` wrote, refusing any type outside :data:`TRUSTED_TYPES`.

    ``also_trusted`` names the few more types another caller's objects are made of (a use case's
    preprocessing holds ``numpy.dtype``), so every skops file efimero reads goes through this check.

    Raises:
        UntrustedModelError: the file names a type efimero does not trust.
    """
    data = path.read_bytes()
    untrusted = sio.get_untrusted_types(data=data)
    refused = sorted(set(untrusted) - TRUSTED_TYPES - also_trusted)
    if refused:
        raise UntrustedModelError(str(path), refused)
    return sio.loads(data, trusted=untrusted)
