"""q̂(x, a): a model of the reward of serving labels ``a`` in context ``x``, cross-fitted.

Off-policy evaluation (the DR and DM estimates) and learning from rewards (doubly robust labels)
both need to guess what a visitor would have earned under labels they were not served. One
XGBoost regressor on the context columns and the one-hot served labels of every slot learns it
from the log. It is cross-fitted: the rows are split in two folds and each row is scored by the
model fitted on the other fold, so no row's own reward leaks into its prediction (the bias that
makes an in-sample DR estimate look better than it is).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

REWARD_MODEL = {"n_estimators": 150, "max_depth": 4, "learning_rate": 0.1, "subsample": 0.8, "n_jobs": 1}
"""The regressor's XGBoost settings: small, as it sees a few dozen columns."""

FOLDS = 2


class CrossFittedRewardModel:
    """q̂ fitted on logged (context, served labels, reward); each row predicted by the fold that left it out.

    Args:
        context: one row per logged decision (features, and whatever else shapes the reward).
        slots: per class slot, its labels in a fixed order (the one-hot columns).
        served: per slot, the label served in each row.
        rewards: the reward of each row.
        seed: decides the folds and the boosters' subsampling.
    """

    def __init__(self, context: np.ndarray, slots: Mapping[str, Sequence[str]], served: Mapping[str, Sequence[str]],
                 rewards: np.ndarray, *, seed: int = 0) -> None:
        import xgboost as xgb

        self.context, self.slots = context, slots
        self.folds = np.random.default_rng(seed).permutation(len(rewards)) % FOLDS
        self.models = []
        for fold in range(FOLDS):
            fitted = np.flatnonzero(self.folds != fold)
            if not len(fitted):  # a single row: score it with a model of itself rather than with none
                fitted = np.flatnonzero(self.folds == fold)
            model = xgb.XGBRegressor(**REWARD_MODEL, random_state=seed)
            model.fit(self._design(fitted, served), rewards[fitted])
            self.models.append(model)

    def predict(self, actions: Mapping[str, Sequence[str]], context: np.ndarray | None = None) -> np.ndarray:
        """q̂ of every row under ``actions`` (a label per row per slot), in the logged ``context`` or another one
        (the same rows with other columns, e.g. the variables a candidate would serve)."""
        predicted = np.zeros(len(self.folds))
        for fold, model in enumerate(self.models):
            rows = np.flatnonzero(self.folds == fold)
            if len(rows):
                predicted[rows] = model.predict(self._design(rows, actions, context))
        return predicted

    def _design(self, rows: np.ndarray, actions: Mapping[str, Sequence[str]],
                context: np.ndarray | None = None) -> np.ndarray:
        one_hot = [np.asarray(actions[slot], dtype=object)[rows, None] == np.asarray(labels, dtype=object)[None, :]
                   for slot, labels in self.slots.items()]
        return np.hstack([(self.context if context is None else context)[rows], *one_hot]).astype(float)
