"""Each retraining trigger at its threshold, just under and just over it (found by `make mutation`).

The guidelines' numbers (``config/retraining.yaml``, the defaults of :class:`~efimero.config.Triggers`):
time ≥ 30 days, data volume ≥ 500 rows, online accuracy < 0.75 or a relative drop > 5 % against the
24 h before, negative feedback on more than 25 % of the sessions. Shares are chosen exact in binary
floating point, so "exactly at the limit" is exact.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from efimero.bundle import ModelBundle, Preprocessor
from efimero.collect import CollectResult, QualityReport
from efimero.config import NegativeFeedbackTrigger, PerformanceTrigger, Triggers
from efimero.retrain.triggers import Trigger, evaluate

TRAINED = datetime(2026, 11, 1, tzinfo=UTC)
NEWEST = datetime(2026, 11, 20, 12, tzinfo=UTC)


def live_version() -> ModelBundle:
    """A version as the triggers see it: its name and when it was trained (they read nothing else here)."""
    return ModelBundle(preprocessor=Preprocessor([], np.zeros(0), np.zeros(0)), models={}, version="v_20261101_000000",
                       metadata={"created_at": TRAINED.isoformat()})


def sessions(total: int, *, confirmed: int = 0, negative: int = 0, age: timedelta = timedelta(hours=1)) -> pd.DataFrame:
    """``total`` judged sessions ``age`` before the newest: ``confirmed`` of them confirmed (the rest
    rejected), ``negative`` of them with negative feedback."""
    return pd.DataFrame([{"event_time": NEWEST - age, "status": "confirmed" if i < confirmed else "rejected",
                          "negative_feedback": i < negative} for i in range(total)])


def trigger(name: str, *, settings: Triggers | None = None, judged: pd.DataFrame | None = None, rows: int = 0,
            now: datetime = NEWEST) -> Trigger:
    judged = judged if judged is not None else pd.DataFrame()
    collected = CollectResult(NEWEST - timedelta(days=7), NEWEST, pd.DataFrame(index=range(rows)),
                              QualityReport(total=len(judged), valid=len(judged)), judged=judged)
    found = evaluate(settings or Triggers(), bundle=live_version(), collected=collected, reference=None, now=now)
    return next(t for t in found if t.name == name)


@pytest.mark.parametrize(("age", "status"), [
    (timedelta(days=30) - timedelta(seconds=1), "not_fired"),
    (timedelta(days=30), "fired"),
    (timedelta(days=30, seconds=1), "fired"),
])
def test_the_time_trigger_fires_from_30_days_on(age, status) -> None:
    found = trigger("time", now=TRAINED + age)
    assert found.status == status
    assert found.value == pytest.approx(age.total_seconds() / 86_400) and found.threshold == 30
    assert found.detail == f"{found.value:.1f} days since v_20261101_000000 was trained"


def test_a_version_trained_in_the_future_is_0_days_old() -> None:
    found = trigger("time", now=TRAINED - timedelta(days=2))
    assert (found.status, found.value) == ("not_fired", 0.0)


@pytest.mark.parametrize(("rows", "status"), [(499, "not_fired"), (500, "fired"), (501, "fired")])
def test_the_volume_trigger_fires_from_500_new_rows_on(rows, status) -> None:
    found = trigger("data_volume", rows=rows)
    assert (found.status, found.value, found.threshold) == (status, rows, 500)
    assert found.detail == f"{rows} usable new rows in the last 7 days"


@pytest.mark.parametrize(("negative", "status"), [(4, "not_fired"), (5, "not_fired"), (6, "fired")])
def test_negative_feedback_fires_only_above_a_quarter(negative, status) -> None:
    found = trigger("negative_feedback", judged=sessions(20, negative=negative))
    assert found.status == status and found.value == negative / 20 and found.enabled is True
    assert found.measures == {"sessions": 20, "negative": negative}


def test_negative_feedback_with_no_session_is_not_run() -> None:
    found = trigger("negative_feedback")
    assert (found.status, found.value, found.threshold) == ("not_run", None, 0.25)
    assert found.detail == "no valid session in the window"


@pytest.mark.parametrize(("confirmed", "status"), [(15, "not_fired"), (14, "fired")])
def test_the_performance_trigger_fires_below_an_accuracy_of_0_75(confirmed, status) -> None:
    # 15 of 20 is exactly 0.75: not below it
    found = trigger("performance", judged=sessions(20, confirmed=confirmed))
    assert found.status == status and found.value == confirmed / 20 and found.threshold == 0.75
    assert found.detail == f"online accuracy {confirmed / 20:.3f} over the last 24 h (threshold 0.75)"


@pytest.mark.parametrize(("confirmed_now", "status"), [(3, "not_fired"), (2, "fired")])
def test_the_performance_trigger_fires_on_a_relative_drop_over_the_limit(confirmed_now, status) -> None:
    # the 24 h before: 5 of 10 confirmed (0.5); now 3 of 8 (0.375) is a relative drop of exactly 25 %,
    # 2 of 8 (0.25) one of 50 %; both stay above an accuracy threshold of 0.2
    settings = Triggers(performance=PerformanceTrigger(accuracy_threshold=0.2, max_drop_percentage=0.25))
    judged = pd.concat([sessions(8, confirmed=confirmed_now), sessions(10, confirmed=5, age=timedelta(hours=30))])
    found = trigger("performance", settings=settings, judged=judged)
    assert found.status == status
    assert (found.value, found.threshold) == (confirmed_now / 8, 0.2)
    drop = (0.5 - confirmed_now / 8) / 0.5
    assert found.detail == (f"online accuracy {confirmed_now / 8:.3f} over the last 24 h (threshold 0.2), "
                            f"0.500 the 24 h before (drop {drop:+.1%}, max 25%)")


def test_the_windows_are_the_last_24_h_and_the_24_h_before() -> None:
    # newest session confirmed; one exactly 24 h older belongs to the window before, one 48 h older to none
    settings = Triggers(performance=PerformanceTrigger(accuracy_threshold=0.5, max_drop_percentage=0.25))
    judged = pd.concat([sessions(1, confirmed=1, age=timedelta(0)), sessions(1, age=timedelta(hours=24)),
                        sessions(1, confirmed=1, age=timedelta(hours=48))])
    found = trigger("performance", settings=settings, judged=judged)
    assert found.value == 1.0 and "0.000 the 24 h before" in found.detail
    assert found.status == "not_fired"  # 1.0 against 0.0 is no drop


def test_the_windows_compare_instants_whatever_utc_offset_the_sessions_carry() -> None:
    """Guards the 24 h windows of the performance trigger: they are measured between instants, so sessions
    stamped in a local time zone across a change of its UTC offset (+02:00, then +01:00) fall in the same
    windows as in UTC: exactly 24 h before the newest is the window before, 48 h before is in none."""
    settings = Triggers(performance=PerformanceTrigger(accuracy_threshold=0.5, max_drop_percentage=0.25))
    judged = pd.concat([sessions(1, confirmed=1, age=timedelta(0)), sessions(1, age=timedelta(hours=24)),
                        sessions(1, confirmed=1, age=timedelta(hours=48))], ignore_index=True)
    summer, winter = timezone(timedelta(hours=2)), timezone(timedelta(hours=1))
    judged["event_time"] = [t.astimezone(winter if i == 0 else summer) for i, t in enumerate(judged["event_time"])]
    found = trigger("performance", settings=settings, judged=judged)
    assert (found.status, found.value) == ("not_fired", 1.0)
    assert found.detail == ("online accuracy 1.000 over the last 24 h (threshold 0.5), "
                            "0.000 the 24 h before (drop +0.0%, max 25%)")


def test_performance_with_no_session_is_not_run() -> None:
    found = trigger("performance")
    assert (found.status, found.value, found.threshold) == ("not_run", None, 0.75)
    assert found.detail == "no valid session in the window"


def test_a_disabled_trigger_says_so_never_fires_and_still_records_its_measurement() -> None:
    settings = Triggers(negative_feedback=NegativeFeedbackTrigger(enabled=False))
    found = trigger("negative_feedback", settings=settings, judged=sessions(20, negative=10))
    assert (found.name, found.enabled, found.status, found.fired) == ("negative_feedback", False, "disabled", False)
    assert (found.value, found.threshold, found.measures) == (0.5, 0.25, {"sessions": 20, "negative": 10})
    assert found.detail == ("disabled in the config; 10 of 20 sessions gave negative feedback "
                            "(rated 1–2 or named another class)")
