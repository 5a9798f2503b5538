"""Learning from rewards: served labels weighted by reward / propensity, per class head."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from efimero.cli.main import app
from efimero.collect import collect
from efimero.collect import rewards as reward_labels
from efimero.data.generate import generate_dataset
from efimero.errors import DataValidationError, TrainingError
from efimero.registry import Registry
from efimero.schema import CSS_TASK
from efimero.store import InteractionRecord, PredictionRecord, decisions, iter_decisions, open_engine
from efimero.training import row_weights, train
from tests.bandit.test_evaluate import REWARD, stored_logs
from tests.conftest import fast_config

THEME = "css_class_theme"


def test_every_due_decision_becomes_a_row_labelled_with_the_best_label_by_its_doubly_robust_score(
    registry_copy, tmp_path
) -> None:
    """The logs of :func:`stored_logs` reward the dense layout on wide screens and the dark theme at night."""
    root, (_, live) = registry_copy()
    url = stored_logs(root, live, tmp_path)
    result = collect(url, labels="reward", reward=REWARD, output=tmp_path / "rewarded.csv")
    frame = result.frame
    assert (len(frame), result.labels, result.pending_rewards) == (300, "reward", 0)
    assert result.reward_version == REWARD.version
    assert list(frame.columns) == [*CSS_TASK.columns, *CSS_TASK.weight_columns]
    best = pd.DataFrame([{"css_class_density": "densidad-alta" if row["viewport_diagonal"] >= 1200 else "densidad-baja",
                          THEME: "tema-oscuro" if row["hour_of_day"] >= 19 or row["hour_of_day"] < 7 else "tema-claro"}
                         for row in frame.to_dict("records")])
    assert (frame["css_class_density"] == best["css_class_density"]).mean() > 0.8
    assert (frame[THEME] == best[THEME]).mean() > 0.8
    engine = open_engine(url, create=False)
    logged = decisions(engine, start=result.start, end=result.end)
    engine.dispose()
    served = logged["decisions"].map(lambda d: d["slots"][THEME]["label"])
    assert (frame[THEME] != served).mean() > 0.2  # not the served labels learned back
    assert (frame[[f"sample_weight__{t}" for t in (THEME, "css_class_density")]] >= 0).all().all()
    rewards, _ = REWARD.of_decisions(logged, now=pd.Timestamp.now(tz="UTC").to_pydatetime())
    assert np.allclose(frame["sample_weight"], np.maximum(rewards, 1e-3))
    assert result.to_dict()["labels"] == "reward"


def test_a_rarely_explored_label_that_earns_more_wins_over_the_label_served_most() -> None:
    """Heuristic-free: the greedy label is served 90 % of the time and earns 0.2; the explored one 0.9."""
    rows = generate_dataset(600, seed=5).reset_index(drop=True)
    rng = np.random.default_rng(0)
    explored = rng.random(len(rows)) < 0.1
    rows[THEME] = np.where(explored, "tema-alto-contraste", "tema-claro")
    propensity = np.where(explored, 0.1, 0.9)
    reward = np.where(explored, 0.9, 0.2)
    rows[f"sample_weight__{THEME}"] = reward / propensity
    unweighted = train(rows.drop(columns=[f"sample_weight__{THEME}"]), task=CSS_TASK,
                       settings=fast_config().training)
    weighted = train(rows, task=CSS_TASK, settings=fast_config().training)
    features = rows[CSS_TASK.feature_names]
    assert (unweighted.bundle.predict_frame(features)[THEME] == "tema-claro").mean() > 0.9
    # Weighted, the better label is what the head predicts for most visitors (explored rows are only 10 %,
    # so some regions of the feature space hold none and keep the served label).
    assert (weighted.bundle.predict_frame(features)[THEME] == "tema-alto-contraste").mean() > 0.6


def test_a_heads_own_weights_replace_the_row_weights_only_for_that_head() -> None:
    rows = pd.DataFrame({"sample_weight": [1.0, 2.0], f"sample_weight__{THEME}": [0.0, 5.0]})
    assert row_weights(CSS_TASK, rows, [THEME]).tolist() == [0.0, 5.0]
    assert row_weights(CSS_TASK, rows, ["css_class_font"]).tolist() == [1.0, 2.0]
    assert row_weights(CSS_TASK, rows, ["font_size_base", "spacing_base"]).tolist() == [1.0, 2.0]
    assert row_weights(CSS_TASK, rows.drop(columns="sample_weight"), ["css_class_font"]) is None


def test_a_negative_head_weight_is_refused_naming_the_column(tmp_path) -> None:
    from efimero.data.validate import validate_frame

    rows = generate_dataset(60, seed=2).assign(**{f"sample_weight__{THEME}": -1.0})
    with pytest.raises(DataValidationError, match=f"sample_weight__{THEME}"):
        validate_frame(rows, source="rewarded.csv")


def test_the_cli_collects_reward_rows_and_train_reads_their_weights(registry_copy, tmp_path) -> None:
    root, (_, live) = registry_copy()
    url = stored_logs(root, live, tmp_path)
    output = tmp_path / "rewarded.csv"
    result = CliRunner().invoke(app, ["collect", "--db", url, "--labels", "reward", "--output", str(output),
                                      "--min-session-duration", "0", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["rows"], report["labels"], report["reward_version"]) == (300, "reward", REWARD.version)
    trained = CliRunner().invoke(app, ["train", "--data", str(output), "--output", str(tmp_path / "models"),
                                       "--cv-folds", "0", "--n-jobs", "1", "--json"])
    assert trained.exit_code == 0, trained.output
    assert Registry(tmp_path / "models").current() is not None
    wrong = CliRunner().invoke(app, ["collect", "--db", url, "--labels", "bandit"])
    assert wrong.exit_code == 1 and "--labels must be heuristic or reward" in wrong.output


def test_a_head_whose_every_reward_is_zero_is_a_clear_training_error() -> None:
    rows = generate_dataset(200, seed=4).assign(**{f"sample_weight__{THEME}": 0.0})
    with pytest.raises(TrainingError, match=f"the weights of {THEME} sum to 0 over the training rows"):
        train(rows, task=CSS_TASK, settings=fast_config().training)


@pytest.fixture
def messy_logs(registry_copy, tmp_path, store_url) -> str:
    """:func:`stored_logs` plus what a real store also holds: later logs of a logged visit (the first one counts),
    visits that never reported back (due: the default reward), recent ones (pending) and predictions without
    decisions (left out). On SQLite, then (marked postgres) on PostgreSQL's server-side cursor."""
    root, (_, live) = registry_copy()
    url = stored_logs(root, live, tmp_path, store_url)
    engine = open_engine(url, create=False)
    now = datetime.now(UTC)
    with Session(engine) as session:
        logged = session.scalars(select(PredictionRecord).order_by(PredictionRecord.event_time)).all()
        for i, prediction in enumerate(logged[::4]):
            for again in range(1 + i % 3):  # 1 to 3 more logs, so some straddle any chunk boundary
                session.add(InteractionRecord(
                    prediction_id=prediction.prediction_id, session_id=f"again-{again}", user_hash=None,
                    received_at=prediction.created_at + timedelta(minutes=4 + again), session_duration_ms=1000,
                    interactions_count=1, bounce_rate=1.0, scroll_depth=0.0, click_through_rate=0.0,
                    page_load_time_ms=100.0, rendering_time_ms=10.0, device_info=None, network_conditions=None))
        for i, prediction in enumerate(logged[:15]):
            kind = ("silent", "recent", "undecided")[i % 3]
            created = now - timedelta(minutes={"silent": 120, "recent": 5, "undecided": 60}[kind])
            session.add(PredictionRecord(
                prediction_id=f"{kind}-{i}", created_at=created, event_time=prediction.event_time,
                model_version=prediction.model_version, arm="live", latency_ms=1.0, context={},
                features=prediction.features, css_classes={}, css_variables=prediction.css_variables,
                confidences={}, decisions=None if kind == "undecided" else prediction.decisions))
        session.commit()
    engine.dispose()
    return url


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def test_decisions_stream_in_chunks_and_reward_rows_do_not_depend_on_the_chunk_size(messy_logs) -> None:
    engine = open_engine(messy_logs, create=False)
    window = {"start": datetime(2000, 1, 1, tzinfo=UTC), "end": datetime(2100, 1, 1, tzinfo=UTC)}
    now = datetime.now(UTC)
    try:
        whole = decisions(engine, **window)
        assert len(whole) == 310 and whole["prediction_id"].is_unique  # 300 logged, 5 silent, 5 recent
        assert not whole["prediction_id"].str.startswith("undecided").any()
        parts = list(iter_decisions(engine, **window, chunk_rows=2))  # some chunks hold only later logs: skipped
        assert len(parts) > 100 and all(0 < len(part) <= 2 for part in parts)
        assert [record for part in parts for record in _records(part)] == _records(whole)

        expected, pending = reward_labels.reward_rows(engine, CSS_TASK, REWARD, **window, now=now, chunk_rows=10_000)
        rewards, ready = REWARD.of_decisions(whole, now=now)  # in one read, as before chunks
        assert (len(expected), pending) == (305, 5) == (ready.sum(), (~ready).sum())
        assert np.array_equal(expected["sample_weight"], np.maximum(rewards[ready], 1e-3))
        features = pd.DataFrame(list(whole.loc[ready, "features"]))[CSS_TASK.feature_names]
        pd.testing.assert_frame_equal(expected[CSS_TASK.feature_names], features)
        chunked, waiting = reward_labels.reward_rows(engine, CSS_TASK, REWARD, **window, now=now, chunk_rows=3)
        pd.testing.assert_frame_equal(chunked, expected, check_exact=True)
        assert waiting == pending
    finally:
        engine.dispose()


def test_collect_reads_the_decisions_in_its_own_chunks(messy_logs, monkeypatch) -> None:
    sizes: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        for part in iter_decisions(*args, **kwargs):
            sizes.append(len(part))
            yield part

    monkeypatch.setattr(reward_labels, "iter_decisions", counted)
    result = collect(messy_logs, labels="reward", reward=REWARD, chunk_rows=64)
    assert len(sizes) > 4 and max(sizes) <= 64
    assert (len(result.frame), result.pending_rewards) == (305, 5)
