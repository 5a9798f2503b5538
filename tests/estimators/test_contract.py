"""The shared contract every (algorithm, task kind) must keep, in the spirit of scikit-learn's check_estimator.

Each case is fitted once per module (``fitted``) on a small dataset; the checks then read it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

from efimero.errors import EstimatorError, PredictionInputError, TrainingError
from efimero.estimators import (
    ALGORITHMS,
    SIDECAR,
    TRUSTED_TYPES,
    Estimator,
    TaskKind,
    load_estimator,
    make_estimator,
)
from tests.estimators._cases import CASES, FAST_PARAMS, NO_IMPORTANCE, Split, dataset

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

PICKLE_PROTOCOL_2_PLUS = b"\x80"
"""Every pickle since protocol 2 starts with the PROTO opcode."""


def build(name: str, task: TaskKind, seed: int = 7, **params: object) -> Estimator:
    return make_estimator(name, task, params={**FAST_PARAMS.get(name, {}), **params}, seed=seed)


def fit(estimator: Estimator, split: Split) -> Estimator:
    return estimator.fit(split.x, split.y, X_val=split.x_val, y_val=split.y_val)


@pytest.fixture(scope="module", params=CASES, ids=[f"{name}-{task}" for name, task in CASES])
def fitted(request: pytest.FixtureRequest) -> tuple[Estimator, Split]:
    name, task = request.param
    split = dataset(task)
    return fit(build(name, task), split), split


def test_predictions_have_one_row_per_input_in_the_tasks_shape_and_dtype(fitted: tuple[Estimator, Split]) -> None:
    estimator, split = fitted
    predictions = estimator.predict(split.x_val)
    n = len(split.x_val)
    if estimator.task.is_classification:
        assert split.y is not None
        assert predictions.shape == (n,)
        assert predictions.dtype == split.y.dtype
        assert set(predictions) <= set(split.y)
    elif estimator.task is TaskKind.MULTI_OUTPUT:
        assert split.y is not None
        assert predictions.shape == (n, split.y.shape[1])
        assert predictions.dtype == np.float64
    elif estimator.task is TaskKind.REGRESSION:
        assert predictions.shape == (n,)
        assert predictions.dtype == np.float64
    else:
        assert predictions.shape == (n,)
        assert predictions.dtype == np.int64
        assert predictions.min() >= -1
    assert np.isfinite(predictions.astype(np.float64)).all()


def test_probabilities_sum_to_one_and_their_argmax_is_the_prediction(fitted: tuple[Estimator, Split]) -> None:
    estimator, split = fitted
    if not estimator.task.is_classification:
        with pytest.raises(EstimatorError, match="no class probabilities"):
            estimator.predict_proba(split.x_val)
        return
    assert estimator.labels is not None
    proba = estimator.predict_proba(split.x_val)
    assert proba.shape == (len(split.x_val), len(estimator.labels))
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(estimator.labels[proba.argmax(axis=1)], estimator.predict(split.x_val))


def test_the_same_seed_gives_the_same_model(fitted: tuple[Estimator, Split]) -> None:
    estimator, split = fitted
    again = fit(build(estimator.algorithm, estimator.task), split)
    np.testing.assert_array_equal(again.predict(split.x_val), estimator.predict(split.x_val))
    if estimator.task.is_classification:
        np.testing.assert_array_equal(again.predict_proba(split.x_val), estimator.predict_proba(split.x_val))


def test_a_saved_estimator_loads_back_and_predicts_the_same(fitted: tuple[Estimator, Split], tmp_path: Path) -> None:
    estimator, split = fitted
    files = estimator.save(tmp_path)
    assert sorted(files) == sorted(path.name for path in tmp_path.iterdir())
    loaded = load_estimator(tmp_path)
    assert type(loaded) is type(estimator)
    assert (loaded.task, loaded.n_features, loaded.iterations) == (estimator.task, estimator.n_features,
                                                                   estimator.iterations)
    np.testing.assert_array_equal(loaded.predict(split.x_val), estimator.predict(split.x_val))
    if estimator.task.is_classification:
        np.testing.assert_array_equal(loaded.predict_proba(split.x_val), estimator.predict_proba(split.x_val))
    sidecar = json.loads((tmp_path / SIDECAR).read_text())
    assert sidecar["algorithm"] == estimator.algorithm
    assert sidecar["task"] == estimator.task.value
    assert sidecar["n_features"] == split.x.shape[1]
    assert sidecar["params"] == json.loads(json.dumps(estimator.params))
    assert (sidecar["labels"] is None) == (not estimator.task.is_classification)


def test_saved_files_hold_no_pickle_and_only_trusted_types(fitted: tuple[Estimator, Split], tmp_path: Path) -> None:
    estimator, _ = fitted
    for name in estimator.save(tmp_path):
        path = tmp_path / name
        assert not path.read_bytes().startswith(PICKLE_PROTOCOL_2_PLUS), name
        if path.suffix != ".skops":
            continue
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
            assert {Path(member).suffix for member in members} <= {".json", ".npy"}, members
            for member in members:
                if member.endswith(".npy"):
                    with archive.open(member) as handle:
                        np.load(handle, allow_pickle=False)
        assert set(sio.get_untrusted_types(file=path)) <= TRUSTED_TYPES


def test_importance_is_one_share_per_feature_or_none_where_documented(fitted: tuple[Estimator, Split]) -> None:
    estimator, split = fitted
    importance = estimator.importance()
    if estimator.algorithm in NO_IMPORTANCE:
        assert importance is None
        return
    assert importance is not None
    assert importance.shape == (split.x.shape[1],)
    assert (importance >= 0).all()
    assert importance.sum() == pytest.approx(1.0)


def test_a_wrong_feature_count_is_refused_at_predict(fitted: tuple[Estimator, Split]) -> None:
    estimator, split = fitted
    with pytest.raises(PredictionInputError, match=rf"must have {split.x.shape[1]} feature\(s\), as at fit"):
        estimator.predict(split.x_val[:, :-1])


def test_missing_values_are_learned_or_refused_clearly(fitted: tuple[Estimator, Split]) -> None:
    estimator, split = fitted
    holes = split.x.copy()
    holes[::7, 0] = np.nan
    fresh = build(estimator.algorithm, estimator.task)
    if not estimator.allows_nan:
        with pytest.raises(TrainingError, match=r"must not hold missing values \(NaN\).*column\(s\) 0"):
            fresh.fit(holes, split.y)
        with pytest.raises(PredictionInputError, match="must not hold missing values"):
            estimator.predict(holes[:5])
        return
    fresh.fit(holes, split.y)
    assert len(fresh.predict(holes[:5])) == 5


def test_a_target_that_cannot_be_learned_is_refused(fitted: tuple[Estimator, Split]) -> None:
    estimator, split = fitted
    fresh = build(estimator.algorithm, estimator.task)
    if estimator.task is TaskKind.CLUSTERING:
        with pytest.raises(TrainingError, match="must be a 2-D table"):
            fresh.fit(split.x[:, 0])
        return
    assert split.y is not None
    if estimator.task.is_classification:
        bad, message = np.full(len(split.x), split.y[0]), "at least two classes"
    else:
        bad, message = split.y.astype(float), "finite numbers"
        bad[3] = np.nan
    with pytest.raises(TrainingError, match=message):
        fresh.fit(split.x, bad)


def test_row_weights_are_used_or_refused_clearly(fitted: tuple[Estimator, Split]) -> None:
    estimator, split = fitted
    fresh = build(estimator.algorithm, estimator.task)
    weights = np.linspace(0.5, 2.0, len(split.x))
    x, x_val = split.x[:, :4], split.x_val[:, :4]  # histogram boosting bins weighted rows slowly, per feature
    if not estimator.accepts_sample_weight:
        with pytest.raises(TrainingError, match="cannot weight rows"):
            fresh.fit(x, split.y, sample_weight=weights)
        return
    fresh.fit(x, split.y, sample_weight=weights)
    assert len(fresh.predict(x_val)) == len(x_val)


def test_an_unfitted_estimator_neither_predicts_nor_saves(fitted: tuple[Estimator, Split], tmp_path: Path) -> None:
    estimator, split = fitted
    fresh = build(estimator.algorithm, estimator.task)
    with pytest.raises(EstimatorError, match="not fitted"):
        fresh.predict(split.x_val)
    with pytest.raises(EstimatorError, match="not fitted"):
        fresh.save(tmp_path)


STOPPING_CASES = [(name, task) for name, task in CASES if ALGORITHMS[name].stopping_param]


@pytest.mark.parametrize(("name", "task"), STOPPING_CASES, ids=[f"{n}-{t}" for n, t in STOPPING_CASES])
def test_early_stopping_stops_well_before_the_cap_on_a_noisy_easy_problem(name: str, task: TaskKind) -> None:
    """One informative feature plus as much noise: validation loss bottoms out within a few dozen rounds."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    signal = x[:, 0] + rng.normal(size=len(x))
    targets = {
        TaskKind.BINARY: (signal > 0).astype(int),
        TaskKind.MULTICLASS: np.digitize(signal, [-0.5, 0.5]),
        TaskKind.REGRESSION: signal,
        TaskKind.MULTI_OUTPUT: np.column_stack([signal, rng.normal(size=len(x)) - signal]),
    }
    y = targets[task]
    cap = 500
    fast = {"learning_rate_init": 0.01} if name == "mlp" else {"learning_rate": 0.3}
    estimator = make_estimator(name, task, params={ALGORITHMS[name].stopping_param: cap, **fast}, seed=1)
    estimator.fit(x[:300], y[:300], X_val=x[300:], y_val=y[300:])
    assert estimator.iterations is not None
    assert 1 <= estimator.iterations < cap / 5
