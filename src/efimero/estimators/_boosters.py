"""XGBoost and LightGBM behind the estimator contract, saved in their own formats (never pickled).

Both train through their native APIs (``xgboost.train``, ``lightgbm.train``) with early
stopping on the validation rows given to ``fit`` and keep only the rounds up to the best one,
so the booster in memory is exactly the one saved. Hyperparameters use the libraries' own
names; ``n_estimators`` caps the rounds and ``early_stopping_rounds`` is the patience.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np
import xgboost as xgb

from efimero._io import atomic_write_bytes, atomic_write_text
from efimero.estimators._base import Estimator, normalised
from efimero.estimators._checks import FitData
from efimero.estimators._task import TaskKind

_SUPERVISED = frozenset({TaskKind.BINARY, TaskKind.MULTICLASS, TaskKind.REGRESSION})


_ROUNDS = {"n_estimators": 300, "early_stopping_rounds": 20, "learning_rate": 0.1}
"""Both boosters' defaults: at most 300 rounds, stopping after 20 without a better validation loss."""


class _BoosterEstimator(Estimator):
    """What XGBoost and LightGBM share: missing values learned natively, a round cap with a patience,
    and one raw output per row that is a probability or a value."""

    stopping_param = "n_estimators"
    allows_nan = True
    booster: Any = None

    @abstractmethod
    def _output(self, matrix: np.ndarray) -> np.ndarray:
        """The booster's prediction: P(positive) for binary, (rows × labels) or (rows × outputs) otherwise."""

    def _predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        output = self._output(matrix)
        return np.column_stack([1.0 - output, output]) if self.task is TaskKind.BINARY else output

    def _predict_values(self, matrix: np.ndarray) -> np.ndarray:
        return self._output(matrix)

    def _is_fitted(self) -> bool:
        return self.booster is not None

    def _native(self, objective: str, **settings: Any) -> tuple[dict[str, Any], int, int]:
        """The library's parameters (objective, class count, ``settings``), the round cap and the patience."""
        native = dict(self.params)
        rounds, patience = int(native.pop("n_estimators")), int(native.pop("early_stopping_rounds"))
        native |= {"objective": objective, **settings}
        if self.task is TaskKind.MULTICLASS:
            assert self.labels is not None
            native["num_class"] = len(self.labels)
        return native, rounds, patience


class XGBoostEstimator(_BoosterEstimator):
    """XGBoost (``hist``) for classification and single- or multi-output regression; saved as UBJSON.

    Importance: each feature's share of the total split gain (``total_gain``). Missing values
    are learned natively.
    """

    algorithm = "xgboost"
    tasks = _SUPERVISED | {TaskKind.MULTI_OUTPUT}
    default_params: ClassVar[dict[str, Any]] = {**_ROUNDS, "max_depth": 6}
    default_grid: ClassVar[dict[str, list[Any]]] = {
        "max_depth": [3, 6, 9], "learning_rate": [0.03, 0.1, 0.3], "subsample": [0.8, 1.0],
    }
    _FILE = "model.ubj"
    _OBJECTIVES: ClassVar[dict[TaskKind, str]] = {
        TaskKind.BINARY: "binary:logistic",
        TaskKind.MULTICLASS: "multi:softprob",
        TaskKind.REGRESSION: "reg:squarederror",
        TaskKind.MULTI_OUTPUT: "reg:squarederror",
    }

    booster: xgb.Booster | None = None

    def _fit(self, data: FitData) -> None:
        native, rounds, patience = self._native(
            self._OBJECTIVES[self.task], tree_method="hist", seed=self.seed, nthread=self.n_jobs
        )
        train = xgb.DMatrix(data.x, label=data.y, weight=data.weight, nthread=self.n_jobs)
        if data.x_val is None:
            booster = xgb.train(native, train, num_boost_round=rounds)
        else:
            val = xgb.DMatrix(data.x_val, label=data.y_val, nthread=self.n_jobs)
            booster = xgb.train(native, train, num_boost_round=rounds, evals=[(val, "validation")],
                                early_stopping_rounds=patience, verbose_eval=False)
            booster = booster[: booster.best_iteration + 1]
        booster.set_param({"nthread": 1})  # predictions are mostly a few rows: threads cost more than they save
        self.booster = booster
        self.iterations = booster.num_boosted_rounds()

    def _output(self, matrix: np.ndarray) -> np.ndarray:
        assert self.booster is not None
        return np.asarray(self.booster.inplace_predict(matrix), dtype=np.float64)

    def _importance(self) -> np.ndarray | None:
        assert self.booster is not None and self.n_features is not None
        gains = self.booster.get_score(importance_type="total_gain")
        values = np.zeros(self.n_features)
        for name, gain in gains.items():
            values[int(name.removeprefix("f"))] = float(np.sum(gain))
        return normalised(values)

    def _save_model(self, directory: Path) -> list[str]:
        assert self.booster is not None
        atomic_write_bytes(directory / self._FILE, bytes(self.booster.save_raw(raw_format="ubj")))
        return [self._FILE]

    def _load_model(self, directory: Path) -> None:
        booster = xgb.Booster(params={"nthread": 1})
        booster.load_model(bytearray((directory / self._FILE).read_bytes()))
        self.booster = booster


class LightGBMEstimator(_BoosterEstimator):
    """LightGBM for classification and regression; saved as LightGBM's text model.

    Trained with ``deterministic`` and row-wise histograms so the same seed gives the same
    trees. Importance: each feature's share of the total split gain. Missing values are learned
    natively. Multi-output regression is not offered: LightGBM fits one target per booster.
    """

    algorithm = "lightgbm"
    tasks = _SUPERVISED
    default_params: ClassVar[dict[str, Any]] = {**_ROUNDS, "num_leaves": 31}
    default_grid: ClassVar[dict[str, list[Any]]] = {
        "num_leaves": [15, 31, 63], "learning_rate": [0.03, 0.1, 0.3], "min_child_samples": [10, 20],
    }
    _FILE = "model.txt"
    _OBJECTIVES: ClassVar[dict[TaskKind, str]] = {
        TaskKind.BINARY: "binary", TaskKind.MULTICLASS: "multiclass", TaskKind.REGRESSION: "regression",
    }

    booster: lgb.Booster | None = None

    def _fit(self, data: FitData) -> None:
        native, rounds, patience = self._native(
            self._OBJECTIVES[self.task], seed=self.seed, deterministic=True, force_row_wise=True,
            num_threads=self.n_jobs, verbosity=-1,
        )
        train = lgb.Dataset(data.x, label=data.y, weight=data.weight, params={"verbosity": -1})
        if data.x_val is None:
            booster = lgb.train(native, train, num_boost_round=rounds)
        else:
            val = lgb.Dataset(data.x_val, label=data.y_val, reference=train)
            booster = lgb.train(native, train, num_boost_round=rounds, valid_sets=[val],
                                callbacks=[lgb.early_stopping(patience, verbose=False)])
        # Keep the trees up to the best round, through the text format: memory then holds what is saved.
        self._use(booster.model_to_string())

    def _use(self, model_text: str) -> None:
        self.booster = lgb.Booster(model_str=model_text)
        self.iterations = self.booster.current_iteration()

    def _output(self, matrix: np.ndarray) -> np.ndarray:
        assert self.booster is not None
        return np.asarray(self.booster.predict(matrix, num_threads=1), dtype=np.float64)

    def _importance(self) -> np.ndarray | None:
        assert self.booster is not None
        return normalised(self.booster.feature_importance(importance_type="gain"))

    def _save_model(self, directory: Path) -> list[str]:
        assert self.booster is not None
        atomic_write_text(directory / self._FILE, self.booster.model_to_string())
        return [self._FILE]

    def _load_model(self, directory: Path) -> None:
        self._use((directory / self._FILE).read_text(encoding="utf-8"))
