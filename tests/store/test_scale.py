"""The store at scale: the bulk loader, windows streamed in chunks, retention in batches, writers never locked out.

Every test runs on SQLite and (marked postgres) on a real PostgreSQL server, through ``store_url``.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from efimero.cli.main import app
from efimero.collect import collect
from efimero.config import DataCollection, load_retraining_config
from efimero.errors import ConfigError, StoreError
from efimero.store import (
    InteractionRecord,
    InteractionStore,
    PredictionRecord,
    iter_sessions,
    open_engine,
    prune_older_than,
    sessions,
)
from efimero.store.load import INTERACTION_COLUMNS, PREDICTION_COLUMNS, _json_rows, load_simulated, plan, probe_log

END = date(2026, 11, 27)
NOW = datetime(2026, 11, 27, tzinfo=UTC)
PEPPER = b"test-pepper-0123456789"
runner = CliRunner()


def loaded(url: str, rows: int = 300, *, seed: int = 7, days: int = 10, chunk_size: int = 50,
           **options: Any) -> Engine:
    engine = open_engine(url)
    load_simulated(engine, rows, seed=seed, days=days, end=END, chunk_size=chunk_size, **options)
    return engine


def contents(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every prediction and interaction (without the database's interaction ids), times in UTC, JSON parsed."""
    def plain(value: Any) -> Any:
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        return value

    with Session(engine) as session:
        predictions = [tuple(map(plain, row)) for row in session.execute(
            select(*(getattr(PredictionRecord, name) for name in PREDICTION_COLUMNS))
            .order_by(PredictionRecord.prediction_id))]
        interactions = [tuple(map(plain, row)) for row in session.execute(
            select(*(getattr(InteractionRecord, name) for name in INTERACTION_COLUMNS))
            .order_by(InteractionRecord.prediction_id))]
    return predictions, interactions


# -- the loader ---------------------------------------------------------------------------------------

def test_plan_spreads_rows_evenly_over_days_in_bounded_chunks() -> None:
    chunks = plan(1003, 4, 100)
    assert sum(size for _, _, size in chunks) == 1003
    assert max(size for _, _, size in chunks) == 100
    per_day = pd.DataFrame(chunks, columns=["day", "part", "size"]).groupby("day")["size"].sum().tolist()
    assert per_day == [251, 251, 251, 250]


def test_json_rows_write_what_json_dumps_writes() -> None:
    columns: dict[str, list[Any]] = {"a": [1, 2], "b": [0.1, 2.5e-07], "c": ['x"y\\', "é\n"], "d": [True, False],
                                     "h.visits": [3, 4], "h.first": ["2026-01-01", "2026-02-02"]}
    rows = _json_rows(columns)
    expected = [{"a": 1, "b": 0.1, "c": 'x"y\\', "d": True, "h": {"visits": 3, "first": "2026-01-01"}},
                {"a": 2, "b": 2.5e-07, "c": "é\n", "d": False, "h": {"visits": 4, "first": "2026-02-02"}}]
    assert [json.loads(row) for row in rows] == expected
    assert rows == [json.dumps(row, separators=(",", ":"), ensure_ascii=False) for row in expected]


def test_loader_writes_every_log_inside_its_days(store_url: str) -> None:
    engine = loaded(store_url, 300, days=10)
    try:
        predictions, interactions = contents(engine)
        assert len(predictions) == len(interactions) == 300
        assert {row[0] for row in predictions} == {row[0] for row in interactions}  # every log answers a prediction
        events = [row[2] for row in predictions]
        assert min(events) >= NOW - timedelta(days=10) and max(events) < NOW
        days = pd.Series([event.date() for event in events]).value_counts()
        assert len(days) == 10 and set(days) == {30}
        first = json.loads(predictions[0][6]) if isinstance(predictions[0][6], str) else predictions[0][6]
        assert first["timezone_offset_min"] == 0 and "history" in first
    finally:
        engine.dispose()


def test_same_seed_gives_the_same_rows_another_seed_others(store_url: str, tmp_path: Path) -> None:
    first = loaded(store_url, 200, seed=11)
    again = loaded(f"sqlite:///{tmp_path}/again.db", 200, seed=11)
    other = loaded(f"sqlite:///{tmp_path}/other.db", 200, seed=12)
    try:
        assert contents(first) == contents(again)
        assert contents(other)[0][0][0] != contents(first)[0][0][0]
    finally:
        for engine in (first, again, other):
            engine.dispose()


def test_every_loaded_log_is_a_valid_session_for_collect(store_url: str) -> None:
    loaded(store_url, 200, days=5).dispose()
    result = collect(store_url, start_date=END - timedelta(days=5), end_date=END)
    assert result.quality.total == 200 and result.quality.valid == 200
    assert len(result.frame) > 0 and 0 < result.online_accuracy < 1  # type: ignore[operator]


def test_loading_the_same_seed_twice_is_refused_clearly(store_url: str) -> None:
    engine = loaded(store_url, 100)
    try:
        with pytest.raises(StoreError, match=r"already has.*Use another --seed"):
            load_simulated(engine, 100, seed=7, days=10, end=END, chunk_size=50)
        assert len(contents(engine)[0]) == 100
    finally:
        engine.dispose()


def test_copy_needs_postgresql(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path}/s.db")
    with pytest.raises(StoreError, match="'copy' needs PostgreSQL"):
        load_simulated(engine, 10, seed=1, method="copy")
    engine.dispose()


@pytest.mark.postgres
def test_copy_and_row_inserts_write_the_same_rows_and_indexes_come_back(postgres_url: str, tmp_path: Path) -> None:
    copied = loaded(postgres_url, 150, method="copy", defer_indexes=True)
    inserted = loaded(f"sqlite:///{tmp_path}/rows.db", 150, method="insert")
    try:
        assert contents(copied) == contents(inserted)
        names = {index["name"] for index in inspect(copied).get_indexes("interactions")}
        assert {"ix_interactions_prediction_id", "ix_interactions_received_at"} <= names
        assert "ix_predictions_event_time" in {index["name"] for index in inspect(copied).get_indexes("predictions")}
        unique = {constraint["name"] for constraint in inspect(copied).get_unique_constraints("interactions")}
        assert "uq_interactions_prediction_session" in unique
    finally:
        copied.dispose()
        inserted.dispose()


@pytest.mark.postgres
def test_a_failed_deferred_load_rebuilds_the_indexes(postgres_url: str) -> None:
    engine = loaded(postgres_url, 100)
    try:
        with pytest.raises(StoreError, match="already has"):
            load_simulated(engine, 100, seed=7, days=10, end=END, chunk_size=50, defer_indexes=True)
        assert "ix_predictions_event_time" in {index["name"] for index in inspect(engine).get_indexes("predictions")}
        with engine.begin() as connection:  # a load killed before rebuilding: the owner's next open does it
            connection.execute(text("DROP INDEX ix_predictions_event_time"))
        open_engine(postgres_url).dispose()
        assert "ix_predictions_event_time" in {index["name"] for index in inspect(engine).get_indexes("predictions")}
    finally:
        engine.dispose()


def test_load_simulated_command(store_url: str) -> None:
    result = runner.invoke(app, ["store", "load-simulated", "--rows", "120", "--db", store_url, "--seed", "5",
                                 "--days", "3", "--end", "2026-11-27", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["rows"], report["days"], report["end"]) == (120, 3, "2026-11-27T00:00:00+00:00")
    assert report["method"] == ("copy" if store_url.startswith("postgresql") else "insert")


def test_load_simulated_refuses_a_bad_method_and_an_unreachable_store(tmp_path: Path) -> None:
    bad = runner.invoke(app, ["store", "load-simulated", "--rows", "10", "--db", f"sqlite:///{tmp_path}/s.db",
                              "--method", "bulk"])
    assert bad.exit_code == 1 and "--method must be one of auto, copy, insert. Got 'bulk'" in bad.output
    down = runner.invoke(app, ["store", "load-simulated", "--rows", "10", "--db",
                               "postgresql://nobody@127.0.0.1:1/none"])
    assert down.exit_code == 1 and "cannot open the store at" in down.output and "Traceback" not in down.output


# -- windows in chunks ----------------------------------------------------------------------------------

def test_iter_sessions_is_sessions_in_bounded_chunks(store_url: str) -> None:
    engine = loaded(store_url, 250, days=5)
    try:
        window = {"start": NOW - timedelta(days=4), "end": NOW - timedelta(days=1)}
        whole = sessions(engine, **window, min_session_duration_ms=10_000)
        parts = list(iter_sessions(engine, **window, min_session_duration_ms=10_000, chunk_rows=16))
        assert len(parts) > 3 and all(len(part) <= 16 for part in parts)
        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:  # as collect reads them: a chunk's dtypes may
            return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")  # differ (NaN, None)

        assert [record for part in parts for record in records(part)] == records(whole)
        assert list(iter_sessions(engine, start=NOW, end=NOW + timedelta(days=1))) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("labels", ["heuristic", "reward"])
def test_chunked_collect_equals_collect_in_one_read(store_url: str, labels: str) -> None:
    loaded(store_url, 400, days=8).dispose()
    options: dict[str, Any] = {"days_back": 7, "min_session_duration_ms": 5_000, "labels": labels}
    whole = collect(store_url, chunk_rows=1_000_000, **options)
    chunked = collect(store_url, chunk_rows=9, **options)
    pd.testing.assert_frame_equal(chunked.frame, whole.frame)
    pd.testing.assert_frame_equal(chunked.judged, whole.judged)
    assert chunked.to_dict() == whole.to_dict()
    assert chunked.quality.total > 300


# -- retention --------------------------------------------------------------------------------------------

def test_retention_deletes_exactly_the_old_logs_in_batches(store_url: str) -> None:
    engine = loaded(store_url, 300, days=10)
    try:
        with engine.begin() as connection:  # a late log of an old visit, and an old log of a recent one
            connection.execute(text("UPDATE interactions SET received_at = :t WHERE prediction_id = "
                                    "(SELECT MIN(prediction_id) FROM predictions WHERE created_at < :cut)"),
                               {"t": NOW, "cut": NOW - timedelta(days=6)})
            connection.execute(text("UPDATE interactions SET received_at = :t WHERE prediction_id = "
                                    "(SELECT MAX(prediction_id) FROM predictions WHERE created_at >= :cut)"),
                               {"t": NOW - timedelta(days=9), "cut": NOW - timedelta(days=6)})
        predictions, interactions = contents(engine)
        cutoff = NOW - timedelta(days=6)
        old_ids = {row[0] for row in predictions if row[1] < cutoff}
        kept_predictions = [row for row in predictions if row[0] not in old_ids]
        kept_interactions = [row for row in interactions if row[0] not in old_ids and row[1] >= cutoff]
        assert 100 < len(old_ids) < 200 and len(kept_interactions) == len(kept_predictions) - 1

        planned = prune_older_than(engine, timedelta(days=6), now=NOW, dry_run=True)
        assert contents(engine) == (predictions, interactions)  # a dry run deletes nothing
        seen: list[tuple[int, int]] = []
        deleted = prune_older_than(engine, timedelta(days=6), now=NOW, batch_size=40,
                                   progress=lambda p, i: seen.append((p, i)))
        assert (deleted.predictions, deleted.interactions) == (len(old_ids), len(interactions) - len(kept_interactions))
        assert (planned.predictions, planned.interactions) == (deleted.predictions, deleted.interactions)
        assert deleted.batches == len(seen) >= len(old_ids) // 40 and max(p + i for p, i in seen) <= 80
        assert contents(engine) == (kept_predictions, kept_interactions)
        assert prune_older_than(engine, timedelta(days=6), now=NOW).batches == 0
    finally:
        engine.dispose()


def test_retention_age_comes_from_the_config(tmp_path: Path) -> None:
    assert DataCollection().data_retention_days == 90
    config = tmp_path / "retraining.yaml"
    config.write_text("retraining:\n  data_collection:\n    data_retention_days: 0\n")
    with pytest.raises(ConfigError, match="data_retention_days"):
        load_retraining_config(config)


def test_retain_command_uses_the_configured_age_and_reports_a_dry_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    today = datetime.now(UTC).date()
    engine = open_engine(url)
    load_simulated(engine, 100, seed=3, days=10, end=today, chunk_size=50)
    engine.dispose()
    config = tmp_path / "retraining.yaml"
    config.write_text(f"retraining:\n  data_collection:\n    db_url: {url}\n    data_retention_days: 4\n")
    dry = runner.invoke(app, ["store", "retain", "--config", str(config), "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True and 50 <= planned["predictions"] <= 70
    done = runner.invoke(app, ["store", "retain", "--config", str(config), "--batch-size", "7", "--json"])
    deleted = json.loads(done.stdout)
    assert (deleted["predictions"], deleted["interactions"]) == (planned["predictions"], planned["interactions"])
    assert deleted["batches"] >= planned["predictions"] // 7
    again = runner.invoke(app, ["store", "retain", "--config", str(config), "--older-than", "1d"])
    assert again.exit_code == 0 and "deleted logs older than 1d" in again.output


def test_retain_refuses_a_bad_age_and_an_unreachable_store(tmp_path: Path) -> None:
    for age in ("90", "0d", "ninety days", "-5d", "3w"):
        result = runner.invoke(app, ["store", "retain", "--older-than", age, "--db", f"sqlite:///{tmp_path}/s.db"])
        assert result.exit_code == 1 and "--older-than must be a positive whole number" in result.output
        assert f"Got '{age}' instead" in result.output
    missing = runner.invoke(app, ["store", "retain", "--older-than", "9d", "--db", f"sqlite:///{tmp_path}/none.db"])
    assert missing.exit_code == 1 and "does not exist" in missing.output
    down = runner.invoke(app, ["store", "retain", "--older-than", "9d", "--db", "postgresql://nobody@127.0.0.1:1/x",
                               "--json"])
    assert down.exit_code == 1 and "cannot open the store" in json.loads(down.stdout)["message"]


# -- writers are never locked out ----------------------------------------------------------------------------

class Traffic:
    """A thread logging predictions and interactions through the service's writer, as fast as they commit."""

    def __init__(self, engine: Engine) -> None:
        self.store = InteractionStore(engine, pepper=PEPPER)
        self.acknowledged = 0
        self.latencies: list[float] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self.store.start()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)
        self.store.close()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            prediction, interaction = probe_log(f"live-{n:08d}", datetime.now(UTC))
            self.store.record_prediction(prediction)
            began = time.perf_counter()
            try:
                self.store.record_interaction(interaction).result(timeout=10)
            except BaseException as exc:  # every failure is the test's finding
                self.errors.append(exc)
                continue
            self.latencies.append(time.perf_counter() - began)
            self.acknowledged += 1


def test_logs_keep_being_accepted_while_collect_and_retention_run(store_url: str) -> None:
    engine = loaded(store_url, 1500, days=10, chunk_size=500)
    try:
        with Traffic(engine) as traffic:
            time.sleep(0.2)
            before = traffic.acknowledged
            result = collect(store_url, start_date=END - timedelta(days=10), end_date=END, chunk_rows=50)
            during_collect = traffic.acknowledged - before
            before = traffic.acknowledged
            deleted = prune_older_than(engine, timedelta(days=5), now=NOW, batch_size=50)
            during_retention = traffic.acknowledged - before
        assert traffic.errors == []
        assert result.quality.total >= 1500 and deleted.predictions > 500 and deleted.batches > 10
        assert during_collect > 0 and during_retention > 0
        assert max(traffic.latencies) < 5.0
        with Session(engine) as session:  # every acknowledged log is stored; retention kept them (they are new)
            live = session.scalar(select(InteractionRecord.id).where(InteractionRecord.prediction_id.like("live-%"))
                                  .order_by(InteractionRecord.id.desc()).limit(1))
            stored = len(session.scalars(select(InteractionRecord.id)
                                         .where(InteractionRecord.prediction_id.like("live-%"))).all())
        assert live is not None and stored == traffic.acknowledged
    finally:
        engine.dispose()
