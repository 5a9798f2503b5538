"""Full retraining on Dask: several Parquet inputs combined as the local path combines files, the same comparison."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import efimero
from efimero._api import generate_partitioned
from efimero.cli.main import app
from efimero.data import parquet_parts, write_table
from efimero.data.generate import generate_dataset
from efimero.errors import DataError
from efimero.retrain import full
from efimero.schema import CSS_TASK
from efimero.training import DaskEngine
from tests.conftest import fast_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::pandas.errors.Pandas4Warning")
IN_PROCESS = DaskEngine(workers=2, processes=False)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory):
    """A directory of 2 part files (curated, no weights) and a weighted .parquet file (production-like)."""
    root = tmp_path_factory.mktemp("full-dask")
    curated = generate_partitioned(600, output=root / "curated", seed=12, chunk_rows=300).output
    weights = np.random.default_rng(1).uniform(0.5, 2.0, 200)
    production = write_table(generate_dataset(200, seed=13).assign(sample_weight=weights), root / "production.parquet")
    return curated, production


@pytest.mark.slow
def test_full_on_dask_combines_parquet_inputs_and_is_interchangeable_with_a_local_version(inputs,
                                                                                          registry_copy) -> None:
    curated, production = inputs
    dask_root, (_, live) = registry_copy()
    local_root, _ = registry_copy()
    on_dask = full([curated, production], output=dask_root, config=fast_config(), engine=IN_PROCESS)
    local = full([*parquet_parts(curated), production], output=local_root, config=fast_config())

    assert on_dask.strategy == "full" and on_dask.parent_version == live and on_dask.version
    assert on_dask.status in ("success", "not_better") and local.status in ("success", "not_better")
    assert set(on_dask.scores) == set(local.scores) and on_dask.scores["deciding_targets"] == "class targets"
    assert on_dask.reason.startswith(("better than", "compared with")) and f"{on_dask.rows['test']} held-out rows" \
        in on_dask.reason  # the comparison ran on the Dask split's test rows
    assert on_dask.rows["total"] == 800 == sum(on_dask.rows[k] for k in ("train", "early_stopping", "test"))
    metadata = efimero.load(dask_root, on_dask.version).metadata
    assert [(f["path"], f["rows"]) for f in metadata["data_files"]] == [(str(curated), 600), (str(production), 200)]
    assert metadata["engine"]["name"] == "dask" and metadata["strategy"] == "full"
    assert efimero.load(local_root, local.version).metadata["engine"] == {"name": "local"}

    a, b = efimero.load(local_root, local.version), efimero.load(dask_root, on_dask.version)
    assert b.feature_names == a.feature_names
    assert {n: (m.kind, m.targets, m.labels) for n, m in b.models.items()} == \
           {n: (m.kind, m.targets, m.labels) for n, m in a.models.items()}
    fresh = generate_dataset(300, seed=99)
    left, right = a.predict_frame(fresh), b.predict_frame(fresh)
    assert list(right.columns) == list(left.columns)
    for target in CSS_TASK.class_target_names:
        assert (left[target] == right[target]).mean() > 0.7, target


def test_inputs_dask_cannot_combine_are_refused_naming_them_before_a_cluster_starts(inputs, registry_copy,
                                                                                    tmp_path, monkeypatch) -> None:
    import efimero.training._dask as on_dask

    curated, _ = inputs
    root, _ = registry_copy()
    csv = write_table(generate_dataset(60, seed=2), tmp_path / "extra.csv")
    monkeypatch.setattr(on_dask, "dask_client", lambda engine: pytest.fail("a cluster was started"))
    with pytest.raises(DataError, match="must be Parquet") as info:
        full([curated, csv], output=root, config=fast_config(), engine=IN_PROCESS)
    assert str(info.value).startswith(f"{csv}: ") and "Got a .csv file instead" in str(info.value)
    with pytest.raises(DataError, match="no such data directory"):
        full([curated, tmp_path / "missing"], output=root, config=fast_config(), engine=IN_PROCESS)

    result = CliRunner().invoke(app, ["retrain", "full", "--data", str(curated), "--data", str(csv), "--output",
                                      str(root), "--engine", "dask", "--json"])
    assert result.exit_code == 1
    assert f"{csv}: each of several inputs of Dask training must be Parquet" in json.loads(result.output)["message"]
    tuned = CliRunner().invoke(app, ["retrain", "full", "--data", str(curated), "--output", str(root), "--engine",
                                     "dask", "--tune-hyperparams"])
    assert tuned.exit_code == 1 and "tuning runs on the local engine only" in tuned.output


def test_weights_missing_from_some_inputs_are_filled_as_the_local_path_fills_them(inputs) -> None:
    from efimero.retrain._common import combine
    from efimero.training._dask import dask_client
    from efimero.training._dask_read import SPLIT_COLUMN, dask_inputs, read_data

    curated, production = inputs
    with dask_client(IN_PROCESS) as client:
        frame, rows = read_data(client, dask_inputs([curated, production]), CSS_TASK, fast_config().training,
                                partitions=2)
        read = frame.compute().drop(columns=SPLIT_COLUMN).reset_index(drop=True)
    local = combine([pd.read_parquet(path) for path in [*parquet_parts(curated), production]], CSS_TASK)
    assert rows == [600, 200]
    pd.testing.assert_frame_equal(read, local[list(read.columns)], check_dtype=False)
    assert read["sample_weight"].iloc[:600].eq(1.0).all()
