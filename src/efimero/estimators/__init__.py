"""Many algorithms, one contract: every supported algorithm behind the same small estimator API.

Each algorithm (``ALGORITHMS``: xgboost, lightgbm, random_forest, logistic_regression,
linear_regression, gradient_boosting, mlp, kmeans, dbscan, agglomerative) fits, predicts,
reports its importances and saves itself without pickle: boosters in their native formats,
scikit-learn models through skops with an allow-list of types, each with a JSON sidecar.

Example:
    >>> from sklearn.datasets import load_wine
    >>> from efimero.estimators import make_estimator
    >>> X, y = load_wine(return_X_y=True)
    >>> model = make_estimator("lightgbm", "multiclass", params={"n_estimators": 20}).fit(X, y)
    >>> model.predict(X[:3]).tolist()
    [0, 0, 0]
"""

from efimero.estimators._base import SIDECAR, Estimator
from efimero.estimators._metrics import ClusteringReport, clustering_metrics
from efimero.estimators._registry import (
    ALGORITHMS,
    algorithm_class,
    algorithms_for,
    default_grid,
    load_estimator,
    make_estimator,
)
from efimero.estimators._skops import TRUSTED_TYPES
from efimero.estimators._task import TaskKind

__all__ = [
    "ALGORITHMS",
    "SIDECAR",
    "TRUSTED_TYPES",
    "ClusteringReport",
    "Estimator",
    "TaskKind",
    "algorithm_class",
    "algorithms_for",
    "clustering_metrics",
    "default_grid",
    "load_estimator",
    "make_estimator",
]
