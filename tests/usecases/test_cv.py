"""Cross-validation of a use case fits the preprocessing inside each fold, never on the fold it scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer

from efimero.estimators import Estimator
from efimero.usecases import train_usecase
from tests.usecases.conftest import WriteUseCase, tiny_binary


def test_no_preprocessing_fitted_for_cv_sees_the_rows_of_the_fold_it_is_scored_on(
        write_usecase: WriteUseCase, models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fitted_on: list[frozenset[Any]] = []
    fit = ColumnTransformer.fit

    def spy(self: ColumnTransformer, X: Any, y: Any = None, **params: Any) -> ColumnTransformer:
        fitted_on.append(frozenset(X.index))
        return fit(self, X, y, **params)

    monkeypatch.setattr(ColumnTransformer, "fit", spy)
    result = train_usecase(write_usecase(tiny_binary()), models=models)  # 3 folds, 2 candidates
    train = max(fitted_on, key=len)
    assert len(train) == result.entry["training_samples"]  # the final preprocessing: the whole training split
    per_fold = set(fitted_on) - {train}
    assert len(per_fold) == 3, f"expected one preprocessing fit per CV fold, got {len(per_fold)}"
    held = [train - rows for rows in per_fold]
    assert all(rows < train for rows in per_fold)  # never a validation or test row either
    assert sum(map(len, held)) == len(train) and frozenset().union(*held) == train  # the held-out folds partition it


def test_every_cv_model_trains_on_rows_standardised_by_their_own_statistics(
        write_usecase: WriteUseCase, models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cv_matrices: list[np.ndarray] = []
    fit = Estimator.fit

    def spy(self: Estimator, X: Any, y: Any = None, **kwargs: Any) -> Estimator:
        if kwargs.get("X_val") is None:  # the final refit early-stops on the validation split; CV fits do not
            cv_matrices.append(np.asarray(X, dtype=np.float64))
        return fit(self, X, y, **kwargs)

    monkeypatch.setattr(Estimator, "fit", spy)
    train_usecase(write_usecase(tiny_binary()), models=models)
    assert len(cv_matrices) == 2 * 3  # 2 candidates × 3 folds
    for matrix in cv_matrices:
        scaled = matrix[:, ~np.isin(matrix, (0.0, 1.0)).all(axis=0)]  # the numeric columns, not the one-hot ones
        assert scaled.shape[1] == 6
        # scaled on the whole training split, k-1 folds' means and stds would be off by a few hundredths
        np.testing.assert_allclose(scaled.mean(axis=0), 0.0, atol=1e-9)
        np.testing.assert_allclose(scaled.std(axis=0), 1.0, atol=1e-9)
