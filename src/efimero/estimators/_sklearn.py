"""scikit-learn's supervised models behind the estimator contract, saved through skops.

Logistic regression, ridge regression and the MLP are pipelines with a ``StandardScaler`` in
front: their optimisers converge reliably only on standardised features, and coefficients are
comparable as importances only on a common scale. Gradient boosting is scikit-learn's
*histogram* gradient boosting (``HistGradientBoosting*``), not the classic ``GradientBoosting*``:
it handles missing values, is far faster, and early-stops on the validation rows given to
``fit`` (``X_val``, scikit-learn ≥ 1.7); the price is that it keeps no native importance.
"""

from __future__ import annotations

from abc import abstractmethod
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import ThreadpoolController

from efimero._io import atomic_write_bytes
from efimero.errors import TrainingError
from efimero.estimators._base import Estimator, normalised
from efimero.estimators._checks import FitData
from efimero.estimators._skops import dump_trusted, load_trusted
from efimero.estimators._task import TaskKind

_CLASSIFICATION = frozenset({TaskKind.BINARY, TaskKind.MULTICLASS})
_REGRESSION = frozenset({TaskKind.REGRESSION, TaskKind.MULTI_OUTPUT})


@cache
def _threadpools() -> ThreadpoolController:
    """One controller, built on first use (it scans the loaded native libraries, about 10 ms)."""
    return ThreadpoolController()


class SklearnEstimator(Estimator):
    """A scikit-learn model: built by ``_build``, fitted with the checked data, saved as ``model.skops``."""

    model: Any = None
    _FILE = "model.skops"

    @abstractmethod
    def _build(self) -> Any:
        """A fresh, unfitted scikit-learn model for ``self.task`` from ``self.params`` and the seed."""

    def _fit(self, data: FitData) -> None:
        try:
            model = self._build()
        except TypeError as exc:  # scikit-learn's constructors refuse unknown keyword arguments
            raise TrainingError(
                f"{self.algorithm} got a hyperparameter it does not have ({exc}). Fix the names in params."
            ) from exc
        with self._threads():
            model.fit(data.x, data.y, **self._fit_kwargs(model, data))
        self.model = model
        self._fitted(data)

    def _fit_kwargs(self, model: Any, data: FitData) -> dict[str, Any]:
        """``fit``'s keyword arguments: the weights, routed to a pipeline's last step."""
        if data.weight is None:
            return {}
        pipeline = getattr(model, "regressor", model)  # a TransformedTargetRegressor passes them on to its pipeline
        prefix = f"{pipeline.steps[-1][0]}__" if isinstance(pipeline, Pipeline) else ""
        return {f"{prefix}sample_weight": data.weight}

    def _fitted(self, data: FitData) -> None:
        """Derive what prediction needs beyond the model (nothing by default)."""

    def _threads(self) -> Any:
        """Bound OpenMP and BLAS threads (histogram boosting, the MLP's products) to ``n_jobs``.

        On a busy machine, idle threads spin-waiting for their share can make a small fit or a
        prediction of a few rows many times slower (a loaded estimator has ``n_jobs=1``).
        """
        return _threadpools().limit(limits=self.n_jobs if self.n_jobs > 0 else None)

    def _predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        with self._threads():
            return np.asarray(self.model.predict_proba(matrix), dtype=np.float64)

    def _predict_values(self, matrix: np.ndarray) -> np.ndarray:
        with self._threads():
            return np.asarray(self.model.predict(matrix), dtype=np.float64)

    def _state(self) -> dict[str, Any]:
        """What is saved: the model and whatever ``_fitted`` derived."""
        return {"model": self.model}

    def _restore(self, state: dict[str, Any]) -> None:
        self.model = state["model"]

    def _save_model(self, directory: Path) -> list[str]:
        atomic_write_bytes(directory / self._FILE, dump_trusted(self._state()))
        return [self._FILE]

    def _load_model(self, directory: Path) -> None:
        self._restore(load_trusted(directory / self._FILE))

    def _is_fitted(self) -> bool:
        return self.model is not None

    def _by_task(self, classifier: type, regressor: type, **fixed: Any) -> Any:
        """The classifier or regressor class for the task, built from the params and ``fixed``."""
        return (classifier if self.task.is_classification else regressor)(**self._with(**fixed))

    def _with(self, **fixed: Any) -> dict[str, Any]:
        """The params with efimero's own settings (seed, threads) in place of any the caller gave."""
        return {**self.params, **fixed}

    def _coefficient_importance(self) -> np.ndarray | None:
        """Magnitudes of the standardised coefficients, summed over classes or outputs."""
        coef = np.atleast_2d(self.model[-1].coef_)
        return normalised(np.abs(coef).sum(axis=0))


class RandomForestEstimator(SklearnEstimator):
    """Random forest; importance: mean impurity decrease. Handles missing values (scikit-learn ≥ 1.4)."""

    algorithm = "random_forest"
    tasks = _CLASSIFICATION | _REGRESSION
    default_params: ClassVar[dict[str, Any]] = {"n_estimators": 200}
    default_grid: ClassVar[dict[str, list[Any]]] = {
        "n_estimators": [100, 300], "max_depth": [None, 10], "min_samples_leaf": [1, 5],
    }
    allows_nan = True

    def _build(self) -> Any:
        return self._by_task(RandomForestClassifier, RandomForestRegressor, random_state=self.seed, n_jobs=self.n_jobs)

    def _importance(self) -> np.ndarray | None:
        return normalised(self.model.feature_importances_)


class LogisticRegressionEstimator(SklearnEstimator):
    """Standardised features into logistic regression; importance: |coefficients|."""

    algorithm = "logistic_regression"
    tasks = _CLASSIFICATION
    default_params: ClassVar[dict[str, Any]] = {"C": 1.0, "max_iter": 1000}
    default_grid: ClassVar[dict[str, list[Any]]] = {"C": [0.01, 0.1, 1.0, 10.0]}

    def _build(self) -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(**self._with(random_state=self.seed)))

    def _importance(self) -> np.ndarray | None:
        return self._coefficient_importance()


class LinearRegressionEstimator(SklearnEstimator):
    """Standardised features into ridge regression (L2-penalised least squares, ``alpha``); importance: |coef|.

    Ridge rather than ordinary least squares: it stays stable with correlated features and
    gives the grid something to tune; ``alpha=0`` is plain least squares.
    """

    algorithm = "linear_regression"
    tasks = _REGRESSION
    default_params: ClassVar[dict[str, Any]] = {"alpha": 1.0}
    default_grid: ClassVar[dict[str, list[Any]]] = {"alpha": [0.1, 1.0, 10.0, 100.0]}

    def _build(self) -> Any:
        return make_pipeline(StandardScaler(), Ridge(**self.params))

    def _importance(self) -> np.ndarray | None:
        return self._coefficient_importance()


class GradientBoostingEstimator(SklearnEstimator):
    """Histogram gradient boosting; early-stops on ``X_val`` (``max_iter`` caps the rounds).

    Without ``X_val`` it trains every round (no hidden validation split). No native importance:
    ``importance`` is None.
    """

    algorithm = "gradient_boosting"
    tasks = _CLASSIFICATION | {TaskKind.REGRESSION}
    default_params: ClassVar[dict[str, Any]] = {"max_iter": 300, "learning_rate": 0.1, "n_iter_no_change": 10}
    default_grid: ClassVar[dict[str, list[Any]]] = {
        "learning_rate": [0.03, 0.1, 0.3], "max_leaf_nodes": [15, 31], "l2_regularization": [0.0, 1.0],
    }
    stopping_param = "max_iter"
    allows_nan = True

    def _build(self) -> Any:
        return self._by_task(HistGradientBoostingClassifier, HistGradientBoostingRegressor, random_state=self.seed)

    def _fit_kwargs(self, model: Any, data: FitData) -> dict[str, Any]:
        model.set_params(early_stopping=data.x_val is not None)
        validation = {} if data.x_val is None else {"X_val": data.x_val, "y_val": data.y_val}
        return super()._fit_kwargs(model, data) | validation

    def _fitted(self, data: FitData) -> None:
        self.iterations = int(self.model.n_iter_)

    def _importance(self) -> np.ndarray | None:
        return None


class MLPEstimator(SklearnEstimator):
    """Standardised features (and regression targets) into a multi-layer perceptron (adam); ``max_iter`` caps epochs.

    Early stopping is on by default, but on scikit-learn's own terms: the MLP holds out
    ``validation_fraction`` of the training rows and stops after ``n_iter_no_change`` epochs
    without improvement; it cannot score an external set, so ``X_val`` is not used. No native
    importance: ``importance`` is None.
    """

    algorithm = "mlp"
    tasks = _CLASSIFICATION | _REGRESSION
    default_params: ClassVar[dict[str, Any]] = {
        "hidden_layer_sizes": [64], "alpha": 1e-4, "max_iter": 300, "early_stopping": True, "n_iter_no_change": 10,
    }
    default_grid: ClassVar[dict[str, list[Any]]] = {
        "hidden_layer_sizes": [[64], [64, 32]], "alpha": [1e-4, 1e-2], "learning_rate_init": [1e-3, 1e-2],
    }
    stopping_param = "max_iter"

    def _build(self) -> Any:
        network = make_pipeline(StandardScaler(), self._by_task(MLPClassifier, MLPRegressor, random_state=self.seed))
        if self.task.is_classification:
            return network
        # Targets in their own units (hundreds, say) would take adam many epochs: learn standardised ones.
        return TransformedTargetRegressor(network, transformer=StandardScaler())

    def _fitted(self, data: FitData) -> None:
        network = self.model if self.task.is_classification else self.model.regressor_
        self.iterations = int(network[-1].n_iter_)

    def _importance(self) -> np.ndarray | None:
        return None
