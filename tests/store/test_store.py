"""One suite for every store backend: SQLite (a file) and PostgreSQL (a real server)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import JSON, Column, DateTime, Float, ForeignKey, Integer, MetaData, String, Table, Text, create_engine, insert, text

from efimero.errors import StoreError
from efimero.registry.traffic import LIVE_ARM as TRAFFIC_LIVE_ARM
from efimero.serve.metrics import StoreMetrics
from efimero.store import (
    KINDS, LIVE_ARM, InteractionRecord, InteractionStore, PredictionRecord, RecordRefusedError, forget_user,
    end_after_newest_visit, latest_event_time, load_pepper, open_engine, prediction_errors, predictions,
    prune_older_than, recent_alerts, record_alert, record_delivery, sessions,
)
from efimero.store.engine import LEGACY_SALT_KEY
from efimero.store.models import SCHEMA_VERSION
from efimero.store.keys import user_hash

PEPPER = b"test-pepper-0123456789"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def store(store_url: str) -> Iterator[InteractionStore]:
    engine = open_engine(store_url)
    store = InteractionStore(engine, pepper=PEPPER)
    store.start()
    yield store
    store.close()
    engine.dispose()


def prediction_row(prediction_id: str, created_at: datetime = NOW) -> dict[str, Any]:
    return {"prediction_id": prediction_id, "created_at": created_at, "event_time": created_at, "model_version": "v",
            "context": {}, "features": {}, "css_classes": {}, "css_variables": {}, "confidences": {}}


def interaction_row(prediction_id: str, session_id: str = "s-1", **changes: Any) -> dict[str, Any]:
    row = {"prediction_id": prediction_id, "received_at": NOW, "session_id": session_id, "user_hash": None,
           "session_duration_ms": 1000, "interactions_count": 1, "bounce_rate": 0.0, "scroll_depth": 0.5,
           "click_through_rate": 0.1, "user_satisfaction": None, "ui_preference_feedback": None,
           "page_load_time_ms": 1.0, "rendering_time_ms": 1.0, "device_info": None, "network_conditions": None}
    return row | changes


def test_an_interaction_is_committed_when_its_future_completes(store: InteractionStore) -> None:
    pending = [store.record_interaction(interaction_row(f"p-{n}")) for n in range(50)]
    for done in pending:
        done.result(timeout=10)  # no flush: completion alone means committed
    assert store.counts()["interactions"] == 50
    assert store.stats.batches < 50  # group commit: many logs share a transaction


def test_predictions_linger_for_company_but_an_interaction_commits_at_once(store_url: str) -> None:
    engine = open_engine(store_url)
    store = InteractionStore(engine, pepper=PEPPER, linger_s=5.0)
    store.start()
    try:
        for n in range(20):
            store.record_prediction(prediction_row(f"p-{n}"))
        started = time.monotonic()
        store.record_interaction(interaction_row("p-0")).result(timeout=4)  # well inside the 5 s linger
        assert time.monotonic() - started < 4
        assert store.counts() == {"predictions": 20, "interactions": 1}
        assert store.stats.batches == 1  # the predictions waited and shared the interaction's transaction
        store.record_prediction(prediction_row("p-late"))
        assert store.counts()["predictions"] == 20  # a lone prediction waits for company ...
    finally:
        store.close()  # ... and closing writes it all the same
    assert InteractionStore(engine, pepper=PEPPER).counts()["predictions"] == 21
    engine.dispose()


def test_a_replayed_log_is_stored_once(store: InteractionStore) -> None:
    for _ in range(5):
        store.record_interaction(interaction_row("p-1")).result(timeout=10)
    store.record_interaction(interaction_row("p-1", session_id="s-2")).result(timeout=10)
    assert store.counts()["interactions"] == 2


def test_one_refused_row_fails_alone(store: InteractionStore) -> None:
    good = [store.record_interaction(interaction_row(f"p-{n}")) for n in range(5)]
    bad = store.record_interaction(interaction_row("p-bad", session_id=None))  # NOT NULL in every database
    more = [store.record_interaction(interaction_row(f"q-{n}")) for n in range(5)]
    for done in good + more:
        done.result(timeout=10)
    with pytest.raises(RecordRefusedError, match="refused"):
        bad.result(timeout=10)
    assert store.counts()["interactions"] == 10
    registry = CollectorRegistry()
    StoreMetrics(store, registry)
    exported = {sample.name: sample.value for family in registry.collect() for sample in family.samples
                if sample.labels.get("kind", "interaction") == "interaction"}
    assert exported["efimero_store_records_failed_total"] == 1
    assert exported["efimero_store_records_written_total"] == 10


def test_an_interaction_may_arrive_before_its_prediction(store: InteractionStore) -> None:
    store.record_interaction(interaction_row("p-later")).result(timeout=10)
    store.record_prediction(prediction_row("p-later"))
    assert store.flush() and store.counts() == {"predictions": 1, "interactions": 1}


def test_signed_ids_verify_across_stores_on_one_database(store: InteractionStore, store_url: str) -> None:
    other_engine = open_engine(store_url)
    other = InteractionStore(other_engine, pepper=PEPPER)
    issued = store.ids.issue()
    assert other.ids.verify(issued)
    assert not other.ids.verify(issued[:-2] + ("AA" if not issued.endswith("AA") else "BB"))
    assert not other.ids.verify(str(uuid.uuid4()))
    other_engine.dispose()


def test_user_ids_hash_under_the_pepper_not_anything_in_the_database(store: InteractionStore) -> None:
    hashed = store.hash_user("alice@example.com")
    with store.engine.connect() as connection:
        stored_values = [value for (value,) in connection.execute(text("SELECT value FROM efimero_meta"))]
    assert all(user_hash(value.encode(), "alice@example.com") != hashed for value in stored_values)
    assert hashed == user_hash(PEPPER, "alice@example.com")


def test_forget_deletes_every_row_of_one_visitor(store: InteractionStore) -> None:
    for n, user in enumerate(["alice", "alice", "bob"]):
        store.record_prediction(prediction_row(f"p-{n}"))
        store.record_interaction(interaction_row(f"p-{n}", user_hash=store.hash_user(user))).result(timeout=10)
    assert store.flush()
    deleted = forget_user(store.engine, "alice", pepper=PEPPER, batch_size=1)
    assert (deleted.predictions, deleted.interactions) == (2, 2)
    assert store.counts() == {"predictions": 1, "interactions": 1}


def test_prune_deletes_old_logs_in_batches_while_writes_go_on(store: InteractionStore) -> None:
    old = NOW - timedelta(days=100)
    for n in range(30):
        store.record_prediction(prediction_row(f"old-{n}", created_at=old))
        store.record_interaction(interaction_row(f"old-{n}", received_at=old))
    store.record_prediction(prediction_row("new"))
    store.record_interaction(interaction_row("new")).result(timeout=10)
    assert store.flush()
    deleted = prune_older_than(store.engine, timedelta(days=90), batch_size=7, now=NOW)
    assert (deleted.predictions, deleted.interactions, deleted.batches) == (30, 30, 5)
    store.record_interaction(interaction_row("after-prune")).result(timeout=10)  # the writer was never locked out
    assert store.counts() == {"predictions": 1, "interactions": 2}


def test_readers_never_create_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "efimero.db"
    with pytest.raises(StoreError, match="does not exist"):
        open_engine(f"sqlite:///{missing}", create=False)
    assert not missing.parent.exists()
    empty = tmp_path / "empty.db"
    create_engine(f"sqlite:///{empty}").connect().close()
    with pytest.raises(StoreError, match="holds no efimero store"):
        open_engine(f"sqlite:///{empty}", create=False)


def test_readers_refuse_an_empty_postgres_schema(postgres_url: str) -> None:
    with pytest.raises(StoreError, match="holds no efimero store"):
        open_engine(postgres_url, create=False)


def test_the_pepper_comes_from_the_environment_or_a_file_never_from_nothing(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        load_pepper(tmp_path / "pepper")
    created = load_pepper(tmp_path / "pepper", create=True)
    assert load_pepper(tmp_path / "pepper") == created and (tmp_path / "pepper").stat().st_mode & 0o077 == 0
    monkeypatch.setenv("EFIMERO_USER_ID_PEPPER", "short")
    with pytest.raises(StoreError, match="at least 16"):
        load_pepper(tmp_path / "pepper")


def _schema_1(url: str) -> None:
    """The tables as efimero 0.1 (schema 1) created them, with a duplicated log and a salt."""
    metadata = MetaData()
    meta = Table("efimero_meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text))
    predictions = Table(
        "predictions", metadata, Column("prediction_id", String(36), primary_key=True),
        Column("created_at", DateTime(timezone=True), index=True), Column("event_time", DateTime(timezone=True)),
        Column("model_version", String(64)), *(Column(name, JSON) for name in
                                              ("context", "features", "css_classes", "css_variables", "confidences")),
    )
    interactions = Table(
        "interactions", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
        Column("prediction_id", ForeignKey("predictions.prediction_id"), index=True),
        Column("received_at", DateTime(timezone=True), index=True), Column("session_id", String(128), index=True),
        Column("user_hash", String(64)), Column("session_duration_ms", Integer), Column("interactions_count", Integer),
        *(Column(name, Float) for name in ("bounce_rate", "scroll_depth", "click_through_rate", "page_load_time_ms",
                                            "rendering_time_ms")),
        Column("user_satisfaction", Integer), Column("ui_preference_feedback", String(500)),
        Column("device_info", JSON), Column("network_conditions", JSON),
    )
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    metadata.create_all(engine)
    pid = str(uuid.uuid4())
    with engine.begin() as connection:
        connection.execute(insert(meta), [{"key": "schema_version", "value": "1"}, {"key": LEGACY_SALT_KEY, "value": "salt"}])
        connection.execute(insert(predictions), [prediction_row(pid)])
        log = {k: v for k, v in interaction_row(pid).items()} | {"user_hash": user_hash(b"salt", "alice")}
        connection.execute(insert(interactions), [log, log, interaction_row(pid, session_id="s-2")])
    engine.dispose()
    return pid


def test_a_schema_1_store_migrates_keeping_every_distinct_log(store_url: str) -> None:
    pid = _schema_1(store_url)
    engine = open_engine(store_url)
    store = InteractionStore(engine, pepper=PEPPER)
    store.start()
    assert store.counts() == {"predictions": 1, "interactions": 2}  # the duplicate is collapsed
    store.record_interaction(interaction_row(pid)).result(timeout=10)  # a replay stays one row
    signed = store.ids.issue()  # 53 characters: the widened column takes it
    store.record_interaction(interaction_row(signed)).result(timeout=10)  # no foreign key any more
    assert store.counts()["interactions"] == 3
    deleted = forget_user(engine, "alice", pepper=PEPPER)  # rows hashed with the old salt are found
    # alice's log, her page view (the prediction and its context) and every log of that page view
    assert (deleted.predictions, deleted.interactions) == (1, 2)
    store.close()
    engine.dispose()
    open_engine(store_url, create=False).dispose()  # readers accept the migrated store


def test_predictions_carry_their_arm_and_latency_and_sessions_show_them(store: InteractionStore) -> None:
    store.record_prediction(prediction_row("p-live"))  # written before arms existed: the live arm
    store.record_prediction(prediction_row("p-canary") | {"arm": "canary", "latency_ms": 3.5})
    for pid in ("p-live", "p-canary"):
        store.record_interaction(interaction_row(pid, session_id=pid)).result(timeout=10)
    assert store.flush()
    found = sessions(store.engine, start=NOW, end=NOW + timedelta(seconds=1)).set_index("prediction_id")
    assert found.loc["p-live", "arm"] == LIVE_ARM == TRAFFIC_LIVE_ARM and pd.isna(found.loc["p-live", "latency_ms"])
    assert (found.loc["p-canary", "arm"], found.loc["p-canary", "latency_ms"]) == ("canary", 3.5)


def test_prediction_errors_go_through_the_writer_and_are_counted_per_kind(store: InteractionStore) -> None:
    earlier = NOW - timedelta(days=3)
    store.record_prediction_error({"created_at": NOW, "model_version": "v", "arm": "canary", "error": "x" * 500})
    store.record_prediction_error({"created_at": NOW, "event_time": earlier, "model_version": "v", "arm": LIVE_ARM,
                                   "error": "ValueError: boom"})
    store.record_prediction_error({"created_at": NOW, "model_version": "v", "arm": LIVE_ARM, "error": "?", "id": "x"})
    assert store.flush()
    assert store.stats.written["prediction_error"] == 2 and store.stats.failed["prediction_error"] == 1
    assert set(KINDS) >= set(store.stats.written) | set(store.stats.failed)
    now = prediction_errors(store.engine, start=NOW, end=NOW + timedelta(seconds=1))
    assert now.to_dict("records") == [{"event_time": now.loc[0, "event_time"], "model_version": "v", "arm": "canary",
                                       "error": "x" * 200}]  # event time defaults to created_at; error cut to 200
    assert len(prediction_errors(store.engine, start=earlier, end=earlier + timedelta(seconds=1))) == 1


def test_an_alert_is_committed_once_per_window_rule_version_and_arm(store: InteractionStore) -> None:
    alert = {"created_at": NOW, "window_start": NOW - timedelta(minutes=5), "window_end": NOW, "severity": "high",
             "rule": "accuracy_drop", "model_version": "v", "arm": "canary", "value": 0.7, "baseline": 0.8,
             "threshold": 0.05, "action": "rollback", "message": "m" * 900}
    first = record_alert(store.engine, alert)
    again = record_alert(store.engine, alert | {"value": 0.1})
    other = record_alert(store.engine, alert | {"arm": LIVE_ARM})
    assert first.created and not again.created and again.id == first.id and other.id != first.id
    record_delivery(store.engine, first.id, error="ConnectError: refused")
    record_delivery(store.engine, other.id, delivered_at=NOW)
    stored = {row["id"]: row for row in recent_alerts(store.engine)}
    assert len(stored) == 2 and stored[first.id]["value"] == 0.7 and len(stored[first.id]["message"]) == 500
    assert (stored[first.id]["delivered_at"], stored[first.id]["delivery_error"]) == (None, "ConnectError: refused")
    assert stored[other.id]["delivered_at"] is not None and stored[other.id]["delivery_error"] is None


def _as_schema_4(url: str) -> None:
    """Take a new store back to schema 4: predictions without their decisions."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(text("ALTER TABLE predictions DROP COLUMN decisions"))
        connection.execute(text("UPDATE efimero_meta SET value = '4' WHERE key = 'schema_version'"))
    engine.dispose()


def _as_schema_3(url: str) -> None:
    """Take a new store back to schema 3: interactions without the paint timings."""
    _as_schema_4(url)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        for column in ("first_styled_paint_ms", "hidden_ms"):
            connection.execute(text(f"ALTER TABLE interactions DROP COLUMN {column}"))
        connection.execute(text("UPDATE efimero_meta SET value = '3' WHERE key = 'schema_version'"))
    engine.dispose()


def _as_schema_2(url: str) -> None:
    """Take a new store back to schema 2: predictions without arm and latency, no errors or alerts tables."""
    _as_schema_3(url)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        for column in ("arm", "latency_ms"):
            connection.execute(text(f"ALTER TABLE predictions DROP COLUMN {column}"))
        connection.execute(text("DROP TABLE prediction_errors"))
        connection.execute(text("DROP TABLE alerts"))
        connection.execute(text("UPDATE efimero_meta SET value = '2' WHERE key = 'schema_version'"))
    engine.dispose()


def test_a_schema_4_store_gains_the_decisions_keeping_its_predictions(store_url: str) -> None:
    engine = open_engine(store_url)
    with engine.begin() as connection:
        connection.execute(insert(PredictionRecord), [prediction_row("p-0")])
    engine.dispose()
    _as_schema_4(store_url)
    with pytest.raises(StoreError, match=f"has schema version 4; this efimero reads version {SCHEMA_VERSION}"):
        open_engine(store_url, create=False)
    store = InteractionStore(open_engine(store_url), pepper=PEPPER)
    store.start()
    decisions = {"policy_id": "greedy", "mode": "greedy", "holdout": False, "propensity": 1.0, "slots": {}}
    store.record_prediction(prediction_row("p-1") | {"decisions": decisions})
    assert store.flush()
    with store.engine.connect() as connection:
        rows = connection.execute(text("SELECT prediction_id, decisions FROM predictions ORDER BY prediction_id")).all()
    stored = [(row[0], json.loads(row[1]) if isinstance(row[1], str) else row[1]) for row in rows]
    assert stored == [("p-0", None), ("p-1", decisions)]
    store.close()
    store.engine.dispose()


def test_a_schema_3_store_gains_the_paint_timings_keeping_its_logs(store_url: str) -> None:
    engine = open_engine(store_url)
    with engine.begin() as connection:
        connection.execute(insert(InteractionRecord), [interaction_row("p-0")])
    engine.dispose()
    _as_schema_3(store_url)
    with pytest.raises(StoreError, match=f"has schema version 3; this efimero reads version {SCHEMA_VERSION}"):
        open_engine(store_url, create=False)
    store = InteractionStore(open_engine(store_url), pepper=PEPPER)
    store.start()
    store.record_interaction(interaction_row("p-1", session_id="s-1") | {"first_styled_paint_ms": 96.0,
                                                                       "hidden_ms": 0.0}).result(timeout=10)
    with store.engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT prediction_id, first_styled_paint_ms, hidden_ms FROM interactions ORDER BY prediction_id")).all()
    assert [tuple(row) for row in rows] == [("p-0", None, None), ("p-1", 96.0, 0.0)]
    store.close()
    store.engine.dispose()


def test_a_schema_2_store_migrates_keeping_every_row_on_the_live_arm(store_url: str) -> None:
    engine = open_engine(store_url)
    with engine.begin() as connection:
        connection.execute(insert(PredictionRecord), [prediction_row(f"p-{n}") for n in range(3)])
        connection.execute(insert(InteractionRecord), [interaction_row("p-0")])
    engine.dispose()
    _as_schema_2(store_url)
    with pytest.raises(StoreError, match=f"has schema version 2; this efimero reads version {SCHEMA_VERSION}"):
        open_engine(store_url, create=False)  # a reader never migrates
    store = InteractionStore(open_engine(store_url), pepper=PEPPER)
    store.start()
    store.record_prediction(prediction_row("p-new") | {"arm": "canary", "latency_ms": 2.0})
    store.record_prediction_error({"created_at": NOW, "model_version": "v", "arm": "canary", "error": "boom"})
    assert store.flush()
    assert store.counts() == {"predictions": 4, "interactions": 1}
    rows = predictions(store.engine, start=NOW, end=NOW + timedelta(seconds=1)).sort_values("arm")
    assert rows["arm"].tolist() == ["canary", *[LIVE_ARM] * 3]
    assert rows["latency_ms"].iloc[0] == 2.0 and rows["latency_ms"].iloc[1:].isna().all()
    assert len(prediction_errors(store.engine, start=NOW, end=NOW + timedelta(seconds=1))) == 1
    store.close()
    store.engine.dispose()
    open_engine(store_url).dispose()  # opening a migrated store again changes nothing
    open_engine(store_url, create=False).dispose()  # readers accept the migrated store


def test_the_newest_visit_is_read_back_in_utc_and_a_window_can_end_just_after_it(store: InteractionStore) -> None:
    assert latest_event_time(store.engine) is None and end_after_newest_visit(store.engine) is None
    for n, hours in enumerate((3, 1, 2)):
        store.record_prediction(prediction_row(f"p-{n}", NOW - timedelta(hours=hours)))
    assert store.flush()
    newest = latest_event_time(store.engine)
    assert newest == NOW - timedelta(hours=1) and newest.utcoffset() == timedelta(0)  # SQLite keeps no offset
    assert end_after_newest_visit(store.engine) == newest + timedelta(microseconds=1)
