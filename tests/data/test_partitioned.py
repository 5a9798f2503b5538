from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from efimero._api import generate_partitioned
from efimero.cli.main import app
from efimero.data import count_rows, parquet_parts, sample_rows, sha256_dataset
from efimero.data._parts import read_for_statistics, read_partitioned
from efimero.data.generate import generate_dataset
from efimero.data.validate import load_training_data, validate_dataset, validated_chunks
from efimero.errors import DataError, DataValidationError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory):
    return generate_partitioned(1200, output=tmp_path_factory.mktemp("parts") / "big", seed=5, chunk_rows=500)


def _rewrite(part, frame: pd.DataFrame) -> None:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), part)


def _copy(source, tmp_path):
    target = tmp_path / "copy"
    target.mkdir()
    for part in parquet_parts(source):
        (target / part.name).write_bytes(part.read_bytes())
    return target


def test_parts_are_chunks_seeded_by_seed_and_index(dataset) -> None:
    parts = parquet_parts(dataset.output)
    assert [p.name for p in parts] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert dataset.rows == count_rows(dataset.output) == 1200
    third = pd.read_parquet(parts[2])
    pd.testing.assert_frame_equal(third, generate_dataset(200, seed=[5, 2]), check_dtype=False)


def test_same_seed_gives_same_bytes_and_other_seed_differs(dataset, tmp_path) -> None:
    again = generate_partitioned(1200, output=tmp_path / "again", seed=5, chunk_rows=500)
    other = generate_partitioned(1200, output=tmp_path / "other", seed=6, chunk_rows=500)
    first = [p.read_bytes() for p in parquet_parts(dataset.output)]
    assert first == [p.read_bytes() for p in parquet_parts(again.output)]
    assert first != [p.read_bytes() for p in parquet_parts(other.output)]
    assert sha256_dataset(again.output) == sha256_dataset(dataset.output) == dataset.metadata["sha256"]


def test_metadata_is_accumulated_over_chunks(dataset) -> None:
    whole = read_partitioned(dataset.output)
    meta = dataset.metadata
    assert meta["size"] == 1200 and meta["partitioned"] and meta["part_files"] == 3
    assert meta["class_frequencies"]["css_class_theme"] == whole.css_class_theme.value_counts().sort_index().to_dict()
    assert meta["columns"]["hour_of_day"]["mean"] == pytest.approx(whole.hour_of_day.mean(), abs=1e-6)
    assert meta["columns"]["viewport_area"]["max"] == whole.viewport_area.max()


def test_rewriting_replaces_the_directory_whole(dataset, tmp_path) -> None:
    target = _copy(dataset.output, tmp_path)
    (target / "part-00009.parquet").write_bytes(b"stale")
    generate_partitioned(300, output=target, seed=1, chunk_rows=500)
    assert [p.name for p in parquet_parts(target)] == ["part-00000.parquet"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_generates_partitioned_parquet_and_validates_it(tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["data", "generate", "--size", "700", "--output", f"{tmp_path / 'big'}/",
                                 "--seed", "3", "--export-metadata", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["rows"] == 700 and payload["metadata"]["partitioned"]
    assert (tmp_path / "big_metadata.json").is_file()
    checked = runner.invoke(app, ["data", "validate", str(tmp_path / "big")])
    assert checked.exit_code == 0, checked.output
    assert "valid (700 rows" in " ".join(checked.output.split())


def test_validation_names_the_part_file_and_row_across_batches(dataset, tmp_path) -> None:
    target = _copy(dataset.output, tmp_path)
    part = target / "part-00001.parquet"
    frame = pd.read_parquet(part)
    frame.loc[249, "hour_of_day"] = 30
    frame.loc[430, "css_class_theme"] = "tema-rosa"
    _rewrite(part, frame)
    with pytest.raises(DataValidationError) as info:
        list(validated_chunks(target, batch_rows=100))
    assert info.value.source == str(part)
    failures = {f.column: f for f in info.value.failures}
    assert failures["hour_of_day"].rows == [250] and failures["hour_of_day"].values == [30]
    assert failures["css_class_theme"].rows == [431]


def test_a_missing_column_names_the_file(dataset, tmp_path) -> None:
    target = _copy(dataset.output, tmp_path)
    part = target / "part-00002.parquet"
    _rewrite(part, pd.read_parquet(part).drop(columns=["estimated_network_speed"]))
    result = CliRunner().invoke(app, ["data", "validate", str(target)], env={"COLUMNS": "400"})
    assert result.exit_code == 1
    assert "part-00002.parquet failed validation" in result.output
    assert "column 'estimated_network_speed': column is missing" in result.output
    assert "Traceback" not in result.output


def test_duplicates_across_part_files_are_found(dataset, tmp_path) -> None:
    target = _copy(dataset.output, tmp_path)
    part = target / "part-00002.parquet"
    frame = pd.read_parquet(part)
    frame.iloc[[10]] = pd.read_parquet(target / "part-00000.parquet").iloc[[3]].to_numpy()
    _rewrite(part, frame)
    with pytest.raises(DataValidationError, match="rows must be unique") as info:
        validate_dataset(target)
    assert info.value.source == str(part) and info.value.failures[0].rows == [11]
    assert validate_dataset(target, allow_duplicates=True).rows == 1200


def test_unreadable_part_and_empty_directory_are_data_errors(dataset, tmp_path) -> None:
    with pytest.raises(DataError, match=r"at least one \*\.parquet part file"):
        validate_dataset((tmp_path / "empty").mkdir() or tmp_path / "empty")
    target = _copy(dataset.output, tmp_path)
    (target / "part-00001.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match=r"part-00001\.parquet: cannot be read as Parquet"):
        validate_dataset(target)


def test_load_training_data_reads_a_directory_whole(dataset) -> None:
    frame, report = load_training_data(dataset.output)
    assert len(frame) == report.rows == 1200
    assert list(frame.columns)[:3] == list(generate_dataset(5).columns)[:3]


def test_sample_is_seeded_uniform_and_bounded(dataset) -> None:
    sample, total = sample_rows(dataset.output, max_rows=300, seed=1, batch_rows=128)
    again, _ = sample_rows(dataset.output, max_rows=300, seed=1)
    whole = read_partitioned(dataset.output)
    assert total == 1200 and len(sample) == 300
    pd.testing.assert_frame_equal(sample, again)
    assert len(sample.merge(whole, how="inner")) == 300  # every sampled row is a row of the data
    shares = [pd.read_parquet(p).merge(sample, how="inner").shape[0] for p in parquet_parts(dataset.output)]
    assert shares[2] < shares[0] and abs(shares[0] - 125) < 40  # in proportion to the files' rows
    small, _ = sample_rows(dataset.output, max_rows=5000)
    assert len(small) == 1200


def test_drift_reads_directories_through_a_sample(dataset, tmp_path) -> None:
    assert len(read_for_statistics(dataset.output, max_rows=400)) == 400
    night = generate_partitioned(1000, output=tmp_path / "night", seed=9, chunk_rows=400)
    frame = read_partitioned(night.output)
    frame["hour_of_day"] = np.where(frame.hour_of_day < 12, frame.hour_of_day + 12, frame.hour_of_day)
    shifted = tmp_path / "shifted"
    shifted.mkdir()
    _rewrite(shifted / "part-00000.parquet", frame)
    result = CliRunner().invoke(app, ["drift", "--reference", str(dataset.output), "--current", str(shifted),
                                      "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["reference_rows"] == 1200 and "hour_of_day" in report["drifted_features"]
