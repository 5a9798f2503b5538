"""The visitor simulator: behaviour model, hidden preferences, contexts, drift, a live run, the CLI."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import typer
from scipy.stats import ks_2samp
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from efimero.cli.simulate import simulate as simulate_command
from efimero.context import BrowserContext, event_time, features_of
from efimero.data.generate import preferred_style
from efimero.schema import CSS_TASK, FEATURE_NAMES
from efimero.css import class_key, css_variables
from efimero.simulate import (
    DRIFT_PREFERENCE,
    SHIFTED_FEATURES,
    SimulationError,
    behave,
    browser_contexts,
    draw_visits,
    engaged,
    intended_features,
    match_score,
    preferences,
    served_style,
    simulate,
)
from efimero.simulate.visitors import is_night
from efimero.store import PredictionRecord
from tests.serve.conftest import free_port

START = date(2026, 11, 1)
CLASS_TARGETS = CSS_TASK.class_target_names
VARIABLES = CSS_TASK.regression_target_names


def as_response(style: dict) -> dict:
    """A /v1/predict-shaped body serving ``style`` (class labels and values by target name)."""
    return {
        "css_classes": {class_key(t): style[t] for t in CLASS_TARGETS},
        "css_variables": css_variables({t: float(style[t]) for t in VARIABLES}),
    }


@pytest.fixture(scope="module")
def two_weeks() -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    rng = np.random.default_rng(11)
    visits = draw_visits(rng, visits=12_000, days=14, drift_day=7, start_date=START)
    return visits, intended_features(visits), browser_contexts(visits, rng)


def test_served_css_parses_back_to_the_values_in_target_units() -> None:
    values = {"font_size_base": 17.6, "line_height_base": 1.55, "spacing_base": 12.0, "border_radius_base": 8.5,
              "color_primary_h": 255.0, "color_primary_s": 60.5, "color_primary_l": 65.0, "animation_duration": 140.0}
    style = served_style({"css_classes": {"density": "densidad-baja"}, "css_variables": css_variables(values)})
    assert style == pytest.approx({"css_class_density": "densidad-baja", **values}, abs=1e-3)


def test_behaviour_improves_with_the_match_score(two_weeks) -> None:
    _, features, _ = two_weeks
    preferred = preferences(features.head(1), after_drift=False).iloc[0].to_dict()
    mismatch = dict(preferred)
    for target in CLASS_TARGETS:
        labels = next(t.labels for t in CSS_TASK.class_targets if t.name == target)
        mismatch[target] = next(label for label in labels if label != preferred[target])
    mismatch |= {"font_size_base": preferred["font_size_base"] + 6, "spacing_base": preferred["spacing_base"] + 8,
                 "animation_duration": preferred["animation_duration"] + 300,
                 "color_primary_h": (preferred["color_primary_h"] + 180) % 360}
    perfect, wrong = as_response(preferred), as_response(mismatch)
    assert match_score(perfect, preferred) == pytest.approx(1.0, abs=0.01)
    assert match_score(wrong, preferred) == 0.0

    def averages(served: dict) -> dict[str, float]:
        logs = [behave(served, preferred, np.random.default_rng([7, i])) for i in range(600)]
        rated = [log["user_satisfaction"] for log in logs if log["user_satisfaction"] is not None]
        return {
            "session": np.mean([log["session_duration"] for log in logs]),
            "scroll": np.mean([log["scroll_depth"] for log in logs]),
            "interactions": np.mean([log["interactions_count"] for log in logs]),
            "bounce": np.mean([log["bounce_rate"] for log in logs]),
            "rating": np.mean(rated),
            "engaged": np.mean([engaged(log) for log in logs]),
            "feedback": np.mean([log["ui_preference_feedback"] is not None for log in logs]),
        }

    good, bad = averages(perfect), averages(wrong)
    assert good["session"] > 3 * bad["session"] and good["scroll"] > bad["scroll"] + 0.4
    assert good["interactions"] > bad["interactions"] + 5 and bad["bounce"] > good["bounce"] + 0.4
    assert good["rating"] > bad["rating"] + 2.5 and good["engaged"] > bad["engaged"] + 0.5
    assert good["feedback"] == 0 and 0.15 < bad["feedback"] < 0.35
    assert behave(wrong, preferred, np.random.default_rng(3)) == behave(wrong, preferred, np.random.default_rng(3))


def test_feedback_names_a_preferred_label_of_a_mismatching_group() -> None:
    preferred = {"css_class_density": "densidad-alta", "css_class_font": "fuente-sans", "css_class_theme": "tema-claro",
                 "font_size_base": 15.0, "spacing_base": 5.0, "animation_duration": 280.0, "color_primary_h": 195.0}
    served = as_response(preferred | {"css_class_density": "densidad-baja", "line_height_base": 1.5,
                                      "border_radius_base": 6.0, "color_primary_s": 70.0, "color_primary_l": 45.0})
    feedback = {behave(served, preferred, np.random.default_rng(i))["ui_preference_feedback"] for i in range(200)}
    assert feedback == {None, "densidad-alta"}


def test_preferences_follow_the_design_rules_until_the_drift_then_change_at_night(two_weeks) -> None:
    visits, features, _ = two_weeks
    pd.testing.assert_frame_equal(preferences(features, after_drift=False), preferred_style(features))
    before, after = preferences(features, after_drift=False), preferences(features, visits["after_drift"].to_numpy())
    changed = visits["after_drift"].to_numpy() & is_night(features["hour_of_day"])
    assert changed.sum() > 2000
    pd.testing.assert_frame_equal(after[~changed], before[~changed])
    for target, label in DRIFT_PREFERENCE.items():
        assert (after.loc[changed, target] == label).all()
    differs = (after[changed] != before[changed]).any()
    assert set(differs[differs].index) == {
        "css_class_density", "css_class_font", "font_size_base", "line_height_base", "spacing_base",
    }
    denser = changed & (before["css_class_density"] != "densidad-alta").to_numpy()
    assert (after.loc[denser, "spacing_base"] < before.loc[denser, "spacing_base"]).all()
    assert (after.loc[denser, "font_size_base"] < before.loc[denser, "font_size_base"]).all()


def test_contexts_validate_and_give_the_intended_features(two_weeks) -> None:
    visits, features, contexts = two_weeks
    for i in range(0, len(contexts), 12):  # 1000 visits
        context = BrowserContext(**contexts[i])
        assert features_of(context) == pytest.approx(features.iloc[i][FEATURE_NAMES].to_dict()), i
        assert event_time(context).date() == START + timedelta(days=int(visits.loc[i, "day"]))
    assert visits["local_time"].is_monotonic_increasing
    assert visits["visitor_id"].is_unique and visits["session_id"].is_unique


def test_the_drift_moves_only_the_hour_features(two_weeks) -> None:
    visits, features, _ = two_weeks
    after = visits["after_drift"].to_numpy()
    assert 0.45 < after.mean() < 0.55
    night = is_night(features["hour_of_day"])
    assert 0.15 < night[~after].mean() < 0.3 and 0.65 < night[after].mean() < 0.75
    for name in FEATURE_NAMES:
        p_value = ks_2samp(features.loc[~after, name], features.loc[after, name]).pvalue
        if name in SHIFTED_FEATURES:
            assert p_value < 1e-10, name
        else:
            assert p_value > 0.01, name
    weekend = features["is_weekend"]
    assert weekend[~after].mean() == pytest.approx(2 / 7, abs=0.02)
    assert weekend[after].mean() == pytest.approx(2 / 7, abs=0.02)


def test_a_live_run_logs_every_visit_on_its_simulated_day(live_server) -> None:
    steps: list[int] = []
    result = simulate(live_server.url, visitors=300, days=4, drift_day=2, seed=3, concurrency=4,
                      progress=lambda description, n: steps.append(n))
    assert result.failures == 0 and result.errors == [] and sum(steps) == 300
    assert result.overall.visits == 300
    assert sum(phase.visits for phase in result.phases.values()) == 300
    assert result.shifted_features == list(SHIFTED_FEATURES)
    assert list(result.per_day) == [(START + timedelta(days=d)).isoformat() for d in range(4)]
    assert result.phases["after_drift"].night_share > result.phases["before_drift"].night_share + 0.3
    assert result.phases["before_drift"].match_rate > result.phases["after_drift"].match_rate
    assert sum(result.model_versions.values()) == 300
    store = live_server.app.state.store
    store.flush()
    assert store.counts() == {"predictions": 300, "interactions": 300}
    with Session(store.engine) as session:
        times = session.scalars(select(PredictionRecord.event_time)).all()
    assert {t.date() for t in times} == {START + timedelta(days=d) for d in range(4)}
    json.dumps(result.to_dict())


def test_cli_prints_json_and_reports_an_unreachable_service(live_server) -> None:
    app = typer.Typer()
    app.command()(simulate_command)
    runner = CliRunner()
    args = ["--visitors", "40", "--days", "2", "--drift-day", "1", "--concurrency", "2", "--seed", "5"]
    result = runner.invoke(app, [*args, "--url", live_server.url, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["failures"] == 0 and body["overall"]["visits"] == 40
    assert set(body["phases"]) == {"before_drift", "after_drift"}
    table = runner.invoke(app, [*args, "--url", live_server.url])
    assert table.exit_code == 0 and "after drift" in table.stdout
    down = runner.invoke(app, [*args, "--url", f"http://127.0.0.1:{free_port()}"])
    assert down.exit_code == 1 and "cannot reach the efimero service" in down.stderr
    assert runner.invoke(app, ["--days", "3", "--drift-day", "3"]).exit_code == 2
    with pytest.raises(ValueError, match="drift_day must be between"):
        simulate(live_server.url, visitors=10, days=3, drift_day=3)
    with pytest.raises(SimulationError):
        simulate(f"http://127.0.0.1:{free_port()}", visitors=5, days=1)
