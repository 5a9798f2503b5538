"""Off-policy evaluation of a registry version on logged decisions: against a reward whose truth is known."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from efimero._api import train
from efimero.bandit.evaluate import evaluate_offline, offline_precheck, offline_verdict
from efimero.bandit.explore import decide
from efimero.bandit.reward import RewardFunction
from efimero.bundle import ModelBundle
from efimero.cli.main import app
from efimero.css import css_variables
from efimero.data import write_table
from efimero.data.generate import generate_dataset
from efimero.errors import DataError
from efimero.registry import ExplorationPolicy, Registry
from efimero.schema import FEATURE_NAMES
from efimero.store import InteractionStore, open_engine
from efimero.store.keys import load_pepper
from tests.conftest import fast_config

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
REWARD = RewardFunction()
LOGGING = ExplorationPolicy(mode="epsilon_greedy", epsilon=0.5, holdout_share=0.0, salt="log")


def expected_reward(features: dict[str, float], labels: dict[str, str]) -> float:
    """The simulated world: visitors like high density on wide screens and the dark theme at night."""
    wide = features["viewport_diagonal"] >= 1200
    density = 0.35 if labels["css_class_density"] == ("densidad-alta" if wide else "densidad-baja") else 0.05
    night = features["hour_of_day"] >= 19 or features["hour_of_day"] < 7
    theme = 0.3 if labels["css_class_theme"] == ("tema-oscuro" if night else "tema-claro") else 0.1
    return 0.2 + density + theme


def session_with_reward(reward: float) -> dict[str, float | None]:
    """A log whose reward under the default function is exactly ``reward`` (no rating)."""
    return {"session_duration_ms": reward * 300_000, "scroll_depth": reward, "bounce_rate": 1 - reward,
            "user_satisfaction": None}


def logged_frame(bundle: ModelBundle, n: int, *, seed: int, policy: ExplorationPolicy | None = LOGGING) -> pd.DataFrame:
    """``n`` visits served by ``bundle`` under ``policy``, each with a noisy reward around :func:`expected_reward`."""
    rng = np.random.default_rng(seed)
    features = generate_dataset(n, seed=seed)[FEATURE_NAMES]
    predictions = bundle.predict_rows(features)
    rows = []
    for i, (row, prediction) in enumerate(zip(features.to_dict("records"), predictions, strict=True)):
        decision = decide({t: c.probabilities for t, c in prediction.classes.items()}, policy,
                          context={}, visitor_key=f"v{i}", decision_key=f"p{seed}-{i}")
        served = {slot: choice.label for slot, choice in decision.slots.items()}
        reward = expected_reward(row, served) + rng.uniform(-0.1, 0.1)
        created = NOW - timedelta(hours=2) + timedelta(seconds=i)
        rows.append({"prediction_id": f"p{seed}-{i}", "created_at": created, "event_time": created,
                     "model_version": bundle.version, "arm": "live", "context": {}, "features": row,
                     "decisions": decision.to_record(), "received_at": created + timedelta(minutes=3),
                     "css_variables": css_variables(prediction.values)}
                    | session_with_reward(reward))
    return pd.DataFrame(rows)


def true_value(bundle: ModelBundle, n: int, seed: int) -> float:
    """What ``bundle``'s greedy labels really earn on the same visitors (the noise has mean 0)."""
    features = generate_dataset(n, seed=seed)[FEATURE_NAMES]
    frame = bundle.predict_frame(features)
    return float(np.mean([expected_reward(row, frame.iloc[i].to_dict())
                          for i, row in enumerate(features.to_dict("records"))]))


@pytest.fixture(scope="module")
def bundles(tiny_registry) -> tuple[ModelBundle, ModelBundle]:
    root, (older, live) = tiny_registry
    return Registry(root).load(older), Registry(root).load(live)


def test_the_logging_policy_evaluated_on_its_own_logs_is_its_realised_reward(bundles) -> None:
    _, live = bundles
    logged = logged_frame(live, 400, seed=1)
    result = evaluate_offline(logged, live, reward=REWARD, now=NOW, exploration=LOGGING)
    realised = result.realised["live"]
    assert result.estimates["ips"].value == pytest.approx(realised.value)
    assert result.estimates["snips"].value == pytest.approx(realised.value)
    assert result.effective_sample_size == pytest.approx(400)
    explored = logged["decisions"].map(lambda d: any(c["label"] != c["greedy"] for c in d["slots"].values()))
    assert result.agreement == pytest.approx(1 - explored.mean())
    assert (result.logged, result.pending, result.reward_version) == (400, 0, REWARD.version)


def test_a_candidates_greedy_reward_is_estimated_within_its_interval(bundles, other) -> None:
    _, live = bundles
    older = other
    logged = logged_frame(live, 3000, seed=2)
    truth = true_value(older, 3000, seed=2)
    result = evaluate_offline(logged, older, reward=REWARD, now=NOW)
    assert result.target_policy == "greedy"
    for name in ("ips", "snips", "dr"):
        estimate = result.estimates[name]
        assert estimate.ci_low <= truth <= estimate.ci_high, (name, estimate, truth)
    assert result.estimates["dr"].std_error < result.estimates["ips"].std_error
    assert 0 < result.effective_sample_size < 3000 * 0.5


def test_logs_that_arrive_late_get_the_default_and_recent_silent_ones_wait(bundles) -> None:
    _, live = bundles
    logged = logged_frame(live, 30, seed=3)
    late, silent_due, silent_recent = 0, 1, 2
    logged.loc[late, "received_at"] = logged.loc[late, "created_at"] + timedelta(minutes=REWARD.wait_minutes + 1)
    logged.loc[silent_due, "received_at"] = None
    logged.loc[silent_recent, ["received_at", "created_at"]] = [None, NOW - timedelta(minutes=5)]
    rewards, ready = REWARD.of_decisions(logged, now=NOW)
    assert rewards[late] == rewards[silent_due] == REWARD.default_reward
    assert ready.tolist() == [True, True, False, *[True] * 27]
    assert evaluate_offline(logged, live, reward=REWARD, now=NOW).pending == 1


def test_nothing_to_evaluate_or_another_contract_is_a_clear_error(bundles) -> None:
    older, live = bundles
    logged = logged_frame(live, 10, seed=4)
    with pytest.raises(DataError, match="no logged decision in the window"):
        evaluate_offline(logged.iloc[:0], live, reward=REWARD, now=NOW)
    renamed = logged.assign(decisions=logged["decisions"].map(
        lambda d: d | {"slots": {f"x_{slot}": c for slot, c in d["slots"].items()}}))
    with pytest.raises(DataError, match="but the log holds decisions for"):
        evaluate_offline(renamed, older, reward=REWARD, now=NOW)
    missing = logged.assign(features=logged["features"].map(
        lambda f: {k: v for k, v in f.items() if k != "hour_of_day"}))
    with pytest.raises(DataError, match="needs feature 'hour_of_day'"):
        evaluate_offline(missing, older, reward=REWARD, now=NOW)


def test_the_gate_passes_fails_or_says_it_could_not_run(bundles) -> None:
    older, live = bundles
    result = evaluate_offline(logged_frame(live, 600, seed=5), older, reward=REWARD, now=NOW)
    live_value, estimate = result.realised["live"].value, result.estimates["dr"].value
    shortfall = live_value - estimate
    strict = offline_verdict(result, estimator="dr", margin=max(shortfall, 0) + 0.01, min_effective_sample_size=10)
    assert strict.passed is True and "within the margin" in strict.reason
    if shortfall > 0.001:
        worse = offline_verdict(result, estimator="dr", margin=shortfall / 2, min_effective_sample_size=10)
        assert worse.passed is False
    thin = offline_verdict(result, estimator="dr", margin=1.0, min_effective_sample_size=10_000)
    assert thin.passed is None and "effective sample size" in thin.reason
    nobody_live = offline_verdict(result, estimator="dr", margin=1.0, min_effective_sample_size=1, live_arm="other")
    assert nobody_live.passed is None


def stored_logs(registry_root, version: str, tmp_path, url: str | None = None) -> str:
    """The URL of a store (SQLite unless ``url`` names another) holding 300 logged visits served by ``version``
    under :data:`LOGGING`."""
    url = url or f"sqlite:///{tmp_path}/store.db"
    store = InteractionStore(open_engine(url), pepper=load_pepper(tmp_path / "pepper", create=True))
    store.start()
    logged = logged_frame(Registry(registry_root).load(version), 300, seed=6)
    logged["created_at"] = datetime.now(UTC) - timedelta(hours=1)
    for row in logged.to_dict("records"):
        store.record_prediction({k: row[k] for k in ("prediction_id", "created_at", "event_time", "model_version",
                                                      "arm", "context", "features", "decisions", "css_variables")}
                                | {"latency_ms": 1.0, "css_classes": {}, "confidences": {}})
        store.record_interaction({"prediction_id": row["prediction_id"], "session_id": row["prediction_id"],
                                  "received_at": row["created_at"] + timedelta(minutes=3),
                                  "session_duration_ms": int(row["session_duration_ms"]),
                                  "interactions_count": 1, "bounce_rate": row["bounce_rate"],
                                  "scroll_depth": row["scroll_depth"], "click_through_rate": 0.0,
                                  "page_load_time_ms": 100.0, "rendering_time_ms": 10.0})
    assert store.flush()
    store.close()
    return url


def test_the_cli_reads_the_store_and_reports_estimates_and_the_gate(registry_copy, tmp_path) -> None:
    root, (older, live) = registry_copy()
    url = stored_logs(root, live, tmp_path)
    Registry(root).set_exploration(LOGGING)
    result = CliRunner().invoke(app, ["evaluate-offline", "--candidate", older, "--models", str(root), "--db", url,
                                      "--since", "1d", "--greedy", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["candidate"] == older and report["used"] == 300 and report["target_policy"] == "greedy"
    assert set(report["estimates"]) == {"ips", "snips", "dr", "dm"} and report["realised"]["live"]["n"] == 300
    assert (report["gate"]["passed"] is None) == (report["effective_sample_size"] < 100)  # the shipped minimum
    as_deployed = json.loads(CliRunner().invoke(app, ["evaluate-offline", "--candidate", older, "--models", str(root),
                                                      "--db", url, "--json"]).output)
    assert as_deployed["target_policy"] == LOGGING.policy_id
    bad = CliRunner().invoke(app, ["evaluate-offline", "--candidate", older, "--models", str(root), "--db", url,
                                   "--since", "a week"])
    assert bad.exit_code == 1 and "--since must be a positive duration" in bad.output


def test_the_rollout_precheck_reads_the_store_and_cannot_pass_without_logs(registry_copy, tmp_path) -> None:
    root, (older, live) = registry_copy()
    gate = {"reward": REWARD, "estimator": "dr", "margin": 1.0, "min_effective_sample_size": 10,
            "window": timedelta(days=7)}
    empty = f"sqlite:///{tmp_path}/empty.db"
    open_engine(empty).dispose()
    passed, reason = offline_precheck(empty, **gate)(Registry(root), older, Registry(root))
    assert passed is None and "no logged decision in the window" in reason
    passed, reason = offline_precheck(stored_logs(root, live, tmp_path), **gate)(Registry(root), older, Registry(root))
    assert passed is True and reason.startswith("dr estimate")


@pytest.fixture(scope="module")
def other(tmp_path_factory) -> ModelBundle:
    """A version trained on other rows, so that its labels differ from the tiny registry's on some visitors."""
    data = write_table(generate_dataset(400, seed=11), tmp_path_factory.mktemp("other") / "other.csv")
    root = tmp_path_factory.mktemp("other-models")
    return Registry(root).load(train(data, output=root, config=fast_config()).version)


def test_a_log_that_never_explored_what_the_candidate_would_serve_is_flagged_and_blocks_the_gate(
    bundles, other
) -> None:
    _, live = bundles
    older = other
    greedy_logs = logged_frame(live, 600, seed=7, policy=None)  # propensity 1: nothing else was ever served
    result = evaluate_offline(greedy_logs, older, reward=REWARD, now=NOW)
    assert result.mean_weight == pytest.approx(result.agreement) and result.agreement < 0.95
    assert any(note.startswith("support is missing") for note in result.notes)
    verdict = offline_verdict(result, estimator="dr", margin=1.0, min_effective_sample_size=1)
    assert verdict.passed is None and verdict.reason.startswith("support is missing")
    explored = evaluate_offline(logged_frame(live, 600, seed=7), older, reward=REWARD, now=NOW)
    assert not any(note.startswith("support is missing") for note in explored.notes)
    assert any("variables are not explored" in note for note in explored.notes)
