"""Incremental retraining on Dask: the same continuation (xgb_model=) through xgboost.dask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import efimero
from efimero.retrain import incremental
from efimero.training import DaskEngine
from tests.retrain.test_incremental import ACCEPT_ANY_GAIN, new_rows

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.mark.slow
def test_incremental_on_dask_appends_trees_like_the_local_path(registry_copy, tmp_path) -> None:
    from efimero.config import IncrementalParameters

    settings = IncrementalParameters(**ACCEPT_ANY_GAIN, max_new_trees=4)
    data = new_rows(tmp_path, seed=21)
    local_root, (_, live) = registry_copy()
    dask_root, _ = registry_copy()
    local = incremental([data], models=local_root, settings=settings)
    on_dask = incremental([data], models=dask_root, settings=settings, engine=DaskEngine(processes=False))
    assert local.status == on_dask.status == "success", (local.reason, on_dask.reason)
    before = efimero.load(local_root, live)
    a, b = efimero.load(local_root, local.version), efimero.load(dask_root, on_dask.version)
    for name, model in b.models.items():
        grown = model.booster.num_boosted_rounds() - before.models[name].booster.num_boosted_rounds()
        assert grown == a.models[name].booster.num_boosted_rounds() - before.models[name].booster.num_boosted_rounds()
        assert grown == 4
        assert model.booster.feature_names is None
    rows = efimero.generate(300, output=tmp_path / "fresh.csv", seed=8).output
    frame = pd.read_csv(rows)
    left, right = a.predict_frame(frame), b.predict_frame(frame)
    assert (left.css_class_theme == right.css_class_theme).mean() > 0.95
    np.testing.assert_allclose(left.font_size_base, right.font_size_base, atol=0.5)
    assert b.metadata["engine"]["name"] == "dask" and a.metadata["engine"] == {"name": "local"}


@pytest.mark.slow
def test_a_dask_versions_test_rows_are_rebuilt_for_the_forgetting_check_of_the_next_retraining(tmp_path) -> None:
    from efimero._api import generate_partitioned, train
    from efimero.config import IncrementalParameters
    from efimero.registry import Registry
    from efimero.retrain._common import original_test_rows
    from efimero.schema import CSS_TASK
    from efimero.training import train_dask
    from tests.conftest import fast_config

    data = generate_partitioned(900, output=tmp_path / "parts", seed=3, chunk_rows=300).output
    engine = DaskEngine(workers=2, processes=False)
    config = fast_config()
    run = train(data, output=tmp_path / "models", config=config, engine=engine)
    live = efimero.load(tmp_path / "models")
    assert live.metadata["split"] == "dask"
    held_out = train_dask(data, task=CSS_TASK, settings=config.training, engine=engine, keep_test_rows=True).test_rows
    rebuilt = original_test_rows(Registry(tmp_path / "models"), live)
    assert rebuilt is not None and len(rebuilt) == run.result.n_rows["test"]
    # the very rows the Dask training scored, in its order (read back from Parquet, some with narrower dtypes)
    pd.testing.assert_frame_equal(rebuilt, held_out[CSS_TASK.columns].reset_index(drop=True), check_dtype=False)

    settings = IncrementalParameters(**ACCEPT_ANY_GAIN, max_new_trees=2)
    result = incremental([new_rows(tmp_path, seed=21)], models=tmp_path / "models", settings=settings)
    assert result.scores["forgetting_check"]["ran"], result.scores["forgetting_check"]
    if result.version:  # kept by the incremental version, for the run after it
        assert efimero.load(tmp_path / "models", result.version).metadata["split"] == "dask"
