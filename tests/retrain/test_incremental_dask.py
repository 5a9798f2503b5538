"""Incremental retraining on Dask: the same continuation (xgb_model=) through xgboost.dask."""

from __future__ import annotations

import numpy as np
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
    frame = __import__("pandas").read_csv(rows)
    left, right = a.predict_frame(frame), b.predict_frame(frame)
    assert (left.css_class_theme == right.css_class_theme).mean() > 0.95
    np.testing.assert_allclose(left.font_size_base, right.font_size_base, atol=0.5)
    assert b.metadata["engine"]["name"] == "dask" and a.metadata["engine"] == {"name": "local"}
