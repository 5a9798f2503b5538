"""The Dask engine: same registry versions as the local path, exact distributed metrics, clear failures."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import xgboost as xgb
from typer.testing import CliRunner

import efimero
from efimero._api import generate_partitioned, train
from efimero.cli.main import app
from efimero.data import parquet_parts
from efimero.data.generate import generate_dataset
from efimero.errors import DataValidationError, TrainingError
from efimero.gate import run_validation
from efimero.schema import CSS_TASK
from efimero.training import DaskEngine, evaluate
from efimero.training._dask import dask_client, split_rows, standardised
from efimero.training._dask_metrics import combine_stats, partition_stats
from efimero.training._dask_read import split_codes
from tests.conftest import fast_config

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning",
                                        "ignore::pandas.errors.Pandas4Warning")
IN_PROCESS = DaskEngine(workers=2, processes=False)
NO_GPU = not (xgb.build_info().get("USE_CUDA") and __import__("shutil").which("nvidia-smi"))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    return generate_partitioned(4000, output=tmp_path_factory.mktemp("dask") / "visits", seed=11,
                                chunk_rows=1000).output


@pytest.fixture(scope="module")
def both(data, tmp_path_factory: pytest.TempPathFactory):
    """The same data trained locally and on Dask into one registry: (models dir, local run, Dask run)."""
    models = tmp_path_factory.mktemp("registry") / "models"
    local = train(data, output=models, config=fast_config())
    on_dask = train(data, output=models, config=fast_config(), engine=IN_PROCESS)
    return models, local, on_dask


@pytest.mark.slow
def test_versions_are_interchangeable(both) -> None:
    models, local, on_dask = both
    a, b = efimero.load(models, local.version), efimero.load(models, on_dask.version)
    assert b.feature_names == a.feature_names
    assert {n: (m.kind, m.targets, m.labels) for n, m in b.models.items()} == \
           {n: (m.kind, m.targets, m.labels) for n, m in a.models.items()}
    assert all(m.booster.feature_names is None for m in b.models.values())
    np.testing.assert_allclose(b.preprocessor.mean, a.preprocessor.mean, rtol=0.05, atol=0.05)
    np.testing.assert_allclose(b.preprocessor.scale, a.preprocessor.scale, rtol=0.1)
    fresh = generate_dataset(600, seed=99)
    left, right = a.predict_frame(fresh), b.predict_frame(fresh)
    for target in CSS_TASK.class_target_names:
        assert (left[target] == right[target]).mean() > 0.85, target
    for target in CSS_TASK.regression_target_names:
        spread = fresh[target].std()
        assert np.abs(left[target] - right[target]).mean() < 0.35 * spread, target
    row = fresh.iloc[0][CSS_TASK.feature_names].to_dict()
    assert set(b.predict(row).to_dict()["classes"]) == set(a.predict(row).to_dict()["classes"])


@pytest.mark.slow
def test_dask_version_passes_the_gate_and_records_its_engine(both, tmp_path) -> None:
    models, local, on_dask = both
    test_file = efimero.generate(800, output=tmp_path / "test.csv", seed=5).output
    for run in (local, on_dask):
        report = run_validation(models, version=run.version, test_data=test_file)
        assert report.passed, [c for c in report.checks if not c.passed]
    metadata = on_dask.metadata
    assert metadata["engine"] == {"name": "dask", "scheduler": "LocalCluster", "workers": 2,
                                  "worker_memory": "2GiB", "threads_per_worker": 1}
    assert metadata["data_files"][0]["rows"] == 4000 and local.metadata["engine"] == {"name": "local"}
    rows = on_dask.result.n_rows
    assert rows["total"] == 4000 == rows["train"] + rows["early_stopping"] + rows["test"]
    assert abs(rows["test"] - 800) < 100 and abs(rows["early_stopping"] - 320) < 80
    summary = on_dask.result.metrics["summary"]
    assert summary["mean_accuracy"] > 0.75 and summary["mean_r2"] > 0.4
    assert on_dask.result.metrics["cv"] == {}


def test_distributed_metrics_equal_evaluate(tiny_registry) -> None:
    bundle = efimero.load(tiny_registry[0])
    frame = generate_dataset(900, seed=8)
    pieces = [partition_stats(frame.iloc[i:i + 250], bundle) for i in range(0, 900, 250)]
    pieces.append(partition_stats(frame.iloc[:0], bundle))
    combined, expected = combine_stats(pieces, bundle), evaluate(bundle, frame)
    assert combined["n_rows"] == expected["n_rows"] == 900
    for kind in ("classification", "regression"):
        for target, values in expected[kind].items():
            for name, value in values.items():
                tolerance = 1e-6 if name == "log_loss" else 1e-9  # sklearn sums float32 losses
                assert combined[kind][target][name] == pytest.approx(value, rel=tolerance, abs=1e-9), (target, name)


def test_scaler_moments_equal_a_standard_scaler(data) -> None:
    import dask.dataframe as dd
    from sklearn.preprocessing import StandardScaler

    frame = generate_dataset(700, seed=4)
    marked = frame.assign(_efimero_split=split_codes(0, len(frame), fast_config().training))
    with dask_client(IN_PROCESS):
        split = split_rows(dd.from_pandas(marked, npartitions=3), CSS_TASK)
        train_rows = pd.concat([split.fit.compute(), split.early.compute()])
        scaled = standardised(train_rows[["hour_of_day"]].pipe(dd.from_pandas, npartitions=2, sort=False),
                              np.array([12.0]), np.array([2.0])).compute()
    scaler = StandardScaler().fit(train_rows[CSS_TASK.feature_names].to_numpy(dtype=float))
    np.testing.assert_allclose(split.preprocessor.mean, scaler.mean_, rtol=1e-10)
    np.testing.assert_allclose(split.preprocessor.scale, scaler.scale_, rtol=1e-10)
    np.testing.assert_allclose(scaled["hour_of_day"], (train_rows.hour_of_day - 12) / 2)


def test_unreachable_scheduler_names_the_address(data, tmp_path) -> None:
    engine = DaskEngine(scheduler="tcp://127.0.0.1:9", connect_timeout_s=1)
    with pytest.raises(TrainingError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9") as info:
        train(data, output=tmp_path / "models", config=fast_config(), engine=engine)
    assert "dask scheduler" in str(info.value)
    assert not (tmp_path / "models").exists()


@pytest.mark.slow
def test_cli_unreachable_scheduler_exits_1(data, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import efimero.training._dask as on_dask

    connect = on_dask.dask_client  # the CLI's engine, given 1 s to connect instead of its default 10 s

    def within_1_s(engine: DaskEngine):
        return connect(dataclasses.replace(engine, connect_timeout_s=1))

    monkeypatch.setattr(on_dask, "dask_client", within_1_s)
    result = CliRunner().invoke(app, ["train", "--data", str(data), "--output", str(tmp_path / "m"), "--engine",
                                      "dask", "--scheduler", "tcp://127.0.0.1:9", "--json"])
    assert result.exit_code == 1
    assert "tcp://127.0.0.1:9" in json.loads(result.output[result.output.index("{"):])["message"]


def test_a_broken_part_file_is_named(data, tmp_path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for part in parquet_parts(data):
        frame = pd.read_parquet(part)
        if part.name == "part-00002.parquet":
            frame = frame.drop(columns=["viewport_area"])
            frame.loc[3, "hour_of_day"] = -1
        frame.to_parquet(broken / part.name, index=False)
    with pytest.raises(DataValidationError) as info:
        train(broken, output=tmp_path / "models", config=fast_config(), engine=IN_PROCESS)
    assert info.value.source == str(broken / "part-00002.parquet")
    assert {f.column for f in info.value.failures} >= {"viewport_area", "hour_of_day"}
    assert next(f for f in info.value.failures if f.column == "hour_of_day").rows == [4]


def test_tuning_is_refused_on_dask(data, tmp_path) -> None:
    with pytest.raises(TrainingError, match="tuning runs on the local engine only"):
        train(data, output=tmp_path / "m", config=fast_config(), engine=IN_PROCESS, tune_hyperparams=True)


@pytest.mark.slow
def test_a_csv_file_trains_on_dask_too(tmp_path) -> None:
    csv = efimero.generate(600, output=tmp_path / "small.csv", seed=2).output
    run = train(csv, output=tmp_path / "models", config=fast_config(), engine=IN_PROCESS)
    assert run.result.n_rows["total"] == 600 and run.metadata["data_file"] == str(csv)
    assert pq.read_schema is not None  # the directory path and the file path share one engine


@pytest.mark.skipif(not NO_GPU, reason="a GPU is present: the no-GPU message cannot be shown here")
def test_gpu_without_gpu_fails_before_training_on_dask(data, tmp_path) -> None:
    with pytest.raises(TrainingError, match=r"Dask worker .*Drop --gpu"):
        train(data, output=tmp_path / "m", config=fast_config(device="cuda"), engine=IN_PROCESS)
    assert not (tmp_path / "m").exists()


def _recording(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[tuple[dict, xgb.Booster]]:
    """Wrap ``module.name`` (an XGBoost train function) to record the params and the booster it returns."""
    calls: list[tuple[dict, xgb.Booster]] = []
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        params = kwargs.get("params", args[1] if name == "train" and module is not xgb else args[0])
        output = original(*args, **kwargs)
        calls.append((dict(params), output["booster"] if isinstance(output, dict) else output))
        return output

    monkeypatch.setattr(module, name, wrapper)
    return calls


@pytest.mark.filterwarnings("ignore:.*(GPU|CPU).*:UserWarning")
@pytest.mark.parametrize("engine", [None, pytest.param(IN_PROCESS, marks=pytest.mark.slow)], ids=["local", "dask"])
def test_gpu_flag_reaches_the_booster(data, tmp_path, monkeypatch: pytest.MonkeyPatch, engine) -> None:
    """device="cuda" is what XGBoost is given; without a GPU its config then reads "cpu" (its own fallback)."""
    from xgboost import dask as dxgb

    import efimero.training._dask as on_dask
    import efimero.training.fit as local

    monkeypatch.setattr(local, "check_gpu", lambda: None)
    monkeypatch.setattr(on_dask, "gpu_problem", lambda: None)
    calls = _recording(monkeypatch, xgb if engine is None else dxgb, "train")
    run = train(data, output=tmp_path / "m", config=fast_config(device="cuda"), engine=engine)
    assert len(calls) == 4 and all(params["device"] == "cuda" for params, _ in calls)
    devices = {json.loads(b.save_config())["learner"]["generic_param"]["device"] for _, b in calls}
    assert devices == ({"cpu"} if NO_GPU else {"cuda:0"}) or devices == {"cuda"}
    saved = efimero.load(tmp_path / "m", run.version)
    assert {json.loads(m.booster.save_config())["learner"]["generic_param"]["device"]
            for m in saved.models.values()} == {"cpu"}  # serving predicts on the CPU
