"""Drive simulated visitors against a live service over HTTP and sum up how they fared.

Each visit is what the browser client does: ``POST /v1/predict`` with its context, apply
the style, then ``POST /v1/interactions`` with the session's log. Visits run on a bounded
thread pool over one keep-alive ``httpx.Client``; a request that fails on the network or
with a 5xx/429 is retried twice before the visit counts as failed. The behaviour of a visit
draws from its own generator seeded by ``(seed, visit index)``, so a run is deterministic for
a seed whatever the thread interleaving, given the same served predictions.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from efimero.errors import SimulationError
from efimero.simulate.behaviour import behave, engaged, match_score, mismatched_groups
from efimero.simulate.visitors import (
    SHIFTED_FEATURES,
    browser_contexts,
    draw_visits,
    intended_features,
    is_night,
    preferences,
)

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int], None]
"""Called as ``progress(description, steps_done_since_last_call)``, one step per visit."""

ATTEMPTS = 3
TIMEOUT_S = 10.0
MAX_ERRORS_KEPT = 5


@dataclass(frozen=True)
class Aggregate:
    """Engagement of a set of visits (a day, a phase or the whole run); failed visits excluded."""

    visits: int
    failures: int
    night_share: float
    mean_session_s: float
    bounce_rate: float
    mean_rating: float | None
    ratings: int
    feedback: int
    match_rate: float
    mean_match_score: float
    online_accuracy: float

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Aggregate:
        ok = frame[frame["ok"]]
        rated = ok["rating"].dropna()

        def mean(column: str) -> float:
            return round(float(ok[column].mean()), 4) if len(ok) else 0.0

        return cls(
            visits=len(ok), failures=int((~frame["ok"]).sum()), night_share=mean("night"),
            mean_session_s=round(float(ok["session_s"].mean()), 2) if len(ok) else 0.0,
            bounce_rate=mean("bounce"), mean_rating=round(float(rated.mean()), 3) if len(rated) else None,
            ratings=len(rated), feedback=int(ok["feedback"].sum()), match_rate=mean("matched"),
            mean_match_score=mean("score"), online_accuracy=mean("engaged"),
        )


@dataclass(frozen=True)
class SimulationResult:
    """What a simulation did and how engaged its visitors were, per phase and per day."""

    url: str
    visitors: int
    days: int
    drift_day: int | None
    seed: int
    start_date: date
    concurrency: int
    elapsed_s: float
    shifted_features: list[str]
    model_versions: dict[str, int]
    overall: Aggregate
    phases: dict[str, Aggregate]
    per_day: dict[str, Aggregate]
    errors: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        return self.overall.failures

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (dates as ISO strings)."""
        data = asdict(self)
        data["start_date"] = self.start_date.isoformat()
        data["failures"] = self.failures
        return data


def _post(client: httpx.Client, path: str, payload: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """POST with retries on network errors, 5xx and 429; the JSON body or why it failed."""
    import httpx

    problem = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(0.1 * 2**attempt)
        try:
            response = client.post(path, json=payload)
        except httpx.TransportError as exc:
            problem = f"{path}: {type(exc).__name__}: {exc}"
            continue
        if response.is_success:
            return response.json(), None
        problem = f"{path}: HTTP {response.status_code}: {response.text[:200]}"
        if response.status_code < 500 and response.status_code != 429:
            break
    return None, problem


def _visit(
    client: httpx.Client, index: int, context: dict[str, Any], visit: dict[str, Any], preferred: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """One visitor's page view: predict, behave, log. Returns the outcome row for aggregation."""
    outcome: dict[str, Any] = {
        "index": index, "day": visit["day"], "after_drift": visit["after_drift"],
        "night": bool(is_night(np.array([visit["local_hour"]]))[0]), "ok": False,
    }
    served, problem = _post(client, "/v1/predict",
                            {**context, "session_id": visit["session_id"], "visitor_id": visit["visitor_id"]})
    if served is None:
        return outcome | {"error": problem}
    rng = np.random.default_rng([seed, index])
    log = behave(served, preferred, rng, downlink_mbps=float(visit["downlink_mbps"]))
    body = {"prediction_id": served["prediction_id"], "session_id": visit["session_id"],
            "user_id": visit["visitor_id"], **log,
            "device_info": {"device_type": visit["device_type"], "simulated": True},
            "network_conditions": {"downlink_mbps": float(visit["downlink_mbps"]),
                                   "effective_type": context["connection_effective_type"]}}
    accepted, problem = _post(client, "/v1/interactions", body)
    if accepted is None:
        return outcome | {"error": problem}
    return outcome | {
        "ok": True, "model_version": served["model_version"], "score": match_score(served, preferred),
        "matched": not mismatched_groups(served, preferred), "engaged": engaged(log),
        "session_s": log["session_duration"] / 1000, "bounce": log["bounce_rate"],
        "rating": log["user_satisfaction"], "feedback": log["ui_preference_feedback"] is not None,
    }


def _check_service(client: httpx.Client, url: str) -> None:
    import httpx

    for attempt in range(ATTEMPTS):
        try:
            response = client.get("/readyz")
        except httpx.TransportError as exc:
            if attempt == ATTEMPTS - 1:
                raise SimulationError(
                    f"cannot reach the efimero service at {url} ({type(exc).__name__}). "
                    "Start it with `efimero serve` or pass the right --url."
                ) from None
            time.sleep(0.5)
            continue
        if response.is_success:
            return
        if attempt == ATTEMPTS - 1:
            raise SimulationError(
                f"the service at {url} must be ready before simulating. Got HTTP {response.status_code} "
                f"from /readyz instead ({response.text[:200]}); check that a model is deployed and the store answers."
            )
        time.sleep(0.5)


def _check(visitors: int, days: int, drift_day: int | None, concurrency: int) -> None:
    if visitors < 1:
        raise ValueError(f"visitors must be at least 1. Got {visitors} instead.")
    if days < 1:
        raise ValueError(f"days must be at least 1. Got {days} instead.")
    if drift_day is not None and not 0 <= drift_day < days:
        raise ValueError(f"drift_day must be between 0 and days - 1 ({days - 1}). Got {drift_day} instead.")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1. Got {concurrency} instead.")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts keyed by its (string) column names."""
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def _summarise(outcomes: pd.DataFrame, drift_day: int | None, start_date: date) -> tuple[
    Aggregate, dict[str, Aggregate], dict[str, Aggregate]
]:
    for column, empty in (("score", np.nan), ("matched", False), ("engaged", False), ("session_s", np.nan),
                          ("bounce", np.nan), ("rating", None), ("feedback", False)):
        if column not in outcomes:
            outcomes[column] = empty
    outcomes["rating"] = pd.to_numeric(outcomes["rating"], errors="coerce")
    for column in ("matched", "engaged", "feedback"):
        outcomes[column] = outcomes[column].fillna(False).astype(bool)
    if drift_day is None:
        phases = {"all": Aggregate.of(outcomes)}
    else:
        after = outcomes["after_drift"].astype(bool)
        phases = {name: Aggregate.of(outcomes[mask])
                  for name, mask in (("before_drift", ~after), ("after_drift", after)) if mask.any()}
    per_day: dict[str, Aggregate] = {}
    day: Any  # a value of the integer column ``day``
    for day, group in outcomes.groupby("day", sort=True):
        per_day[(start_date + timedelta(days=int(day))).isoformat()] = Aggregate.of(group)
    return Aggregate.of(outcomes), phases, per_day


def simulate(
    url: str,
    *,
    visitors: int,
    days: int,
    drift_day: int | None = None,
    seed: int = 1,
    start_date: date = date(2026, 11, 1),
    concurrency: int = 8,
    progress: ProgressCallback | None = None,
) -> SimulationResult:
    """Run ``visitors`` synthetic visits over ``days`` simulated days against a live service.

    Args:
        url: base URL of ``efimero serve`` (``http://127.0.0.1:8000``).
        visitors: number of visits (each a different visitor), spread over the days.
        days: simulated days from ``start_date``; the visits' contexts and the stored event
            times carry the simulated time, so weeks run in minutes.
        drift_day: first day (0-based) on which traffic moves to the night and night visitors
            prefer dense, serif pages (see :mod:`efimero.simulate.visitors`); ``None``: no drift.
        seed: seeds the visits and every visitor's behaviour.
        start_date: the date of day 0.
        concurrency: visits in flight at once.
        progress: called with a description and 1 after each visit.

    Returns:
        Per-phase and per-day engagement, served model versions and failures.

    Raises:
        SimulationError: the service cannot be reached or is not ready.
        ValueError: an argument is out of range.

    Example:
        >>> result = simulate("http://127.0.0.1:8000", visitors=500, days=14, drift_day=7)  # doctest: +SKIP
        >>> result.phases["after_drift"].mean_session_s                                      # doctest: +SKIP
        96.4
    """
    import httpx

    _check(visitors, days, drift_day, concurrency)
    rng = np.random.default_rng(seed)
    visits = draw_visits(rng, visits=visitors, days=days, drift_day=drift_day, start_date=start_date,
                         id_prefix=f"sim{seed}")
    contexts = browser_contexts(visits, rng)
    preferred = _records(preferences(intended_features(visits), visits["after_drift"].to_numpy()))
    rows = _records(visits.drop(columns=["local_time"]))
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    outcomes = []
    with httpx.Client(base_url=url, timeout=TIMEOUT_S, limits=limits) as client:
        _check_service(client, url)
        with ThreadPoolExecutor(concurrency, thread_name_prefix="efimero-visitor") as pool:
            futures = [pool.submit(_visit, client, i, contexts[i], rows[i], preferred[i], seed)
                       for i in range(visitors)]
            for future in as_completed(futures):
                outcome = future.result()
                outcomes.append(outcome)
                if progress is not None:
                    progress(f"simulated day {outcome['day'] + 1}/{days}", 1)
    elapsed = time.perf_counter() - started
    frame = pd.DataFrame(outcomes).sort_values("index").reset_index(drop=True)
    errors = frame["error"].dropna().tolist() if "error" in frame else []
    for problem in errors[:MAX_ERRORS_KEPT]:
        logger.warning("visit failed: %s", problem)
    overall, phases, per_day = _summarise(frame, drift_day, start_date)
    versions = Counter(frame["model_version"].dropna()) if "model_version" in frame else Counter()
    return SimulationResult(
        url=url, visitors=visitors, days=days, drift_day=drift_day, seed=seed, start_date=start_date,
        concurrency=concurrency, elapsed_s=round(elapsed, 2),
        shifted_features=list(SHIFTED_FEATURES) if drift_day is not None else [],
        model_versions=dict(sorted(versions.items())), overall=overall, phases=phases, per_day=per_day,
        errors=errors[:MAX_ERRORS_KEPT],
    )
