"""The pure helpers of bench/bench_bandit.py (the bench itself runs servers for minutes: not a test)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

from efimero.data.generate import generate_dataset
from efimero.schema import CSS_TASK
from efimero.simulate import DRIFT_PREFERENCE
from efimero.simulate.visitors import is_night

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("bench_bandit")
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("how", ["noisy", "night", "night-density"])
def test_relabelling_keeps_what_the_regressors_and_the_split_see(bench: ModuleType, how: str) -> None:
    frame = generate_dataset(400, seed=3)
    changed = bench.relabelled(frame, how, seed=3)
    kept = [c for c in CSS_TASK.columns if c not in DRIFT_PREFERENCE]
    pd.testing.assert_frame_equal(changed[kept], frame[kept])  # features, theme (the strata), variables' targets
    assert (changed["css_class_density"] != frame["css_class_density"]).any()
    if how != "noisy":
        night = is_night(frame["hour_of_day"])
        assert (changed.loc[night, "css_class_density"] == "densidad-alta").all()
        assert (changed.loc[night, "css_class_font"] == "fuente-serif").all() == (how == "night")
        pd.testing.assert_frame_equal(changed[~night], frame[~night])


@pytest.mark.parametrize("source", ["simulated", "simulated-drifted"])
def test_simulated_training_rows_have_the_task_columns(bench: ModuleType, source: str) -> None:
    rows = bench.training_rows(bench.Spec("x", "", 50, 1, source=source))
    assert list(rows.columns) == CSS_TASK.columns
    assert len(rows) == 50
    assert rows[CSS_TASK.columns].notna().all().all()


def test_paired_differences_match_visits_by_session(bench: ModuleType) -> None:
    a = pd.DataFrame({"session_id": ["s1", "s2", "s3"], "reward": [0.5, 0.6, 0.7]})
    b = pd.DataFrame({"session_id": ["s3", "s1", "s9"], "reward": [0.9, 0.4, 0.0]})
    diff, matched = bench.paired(a, b, "reward")
    assert matched == 2
    assert sorted(np.round(diff, 6)) == [-0.1, 0.2]


def test_mean_ci_and_welch(bench: ModuleType) -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0])
    mean, low, high = bench.mean_ci(values)
    assert mean == 2.5
    assert low < mean < high
    assert high - mean == pytest.approx(1.959964 * values.std(ddof=1) / 2, rel=1e-5)
    diff, low, high = bench.welch(values, values + 1)
    assert diff == 1.0
    assert low < 1.0 < high


def test_calendar_hands_out_disjoint_weeks(bench: ModuleType) -> None:
    calendar = bench.Calendar(date(2026, 11, 2))
    first, second, third = calendar.weeks(7), calendar.weeks(8), calendar.weeks(1)
    assert first == date(2026, 11, 2)
    assert second >= first + pd.Timedelta(days=7)
    assert third >= second + pd.Timedelta(days=14)
    assert {d.weekday() for d in (first, second, third)} == {0}  # whole weeks: the visitors keep their weekdays


def test_quick_sizes(bench: ModuleType) -> None:
    args = bench.parse_args(["--quick"])
    assert (args.log_visits, args.eval_visits, args.day_visits) == (1500, 1000, 150)
    assert len(bench.candidate_specs(args)) >= 5
    full = bench.parse_args(["--log-visits", "10"])
    assert (full.log_visits, full.eval_visits) == (10, 4000)
    assert len(bench.candidate_specs(full)) > len(bench.candidate_specs(args))
