"""`efimero collect`: production training data from the interaction store.

Two populations come out of one window. The training rows are the sessions whose behaviour or
feedback gave a label (ambiguous ones are left out). Monitoring — online accuracy, negative
feedback, served classes and feature drift — uses every valid session of the window, labelled
or not: which sessions get a label depends on behaviour that depends on the features, so the
labelled rows are a biased sample of the traffic (a window whose labelled rows showed 8 of 19
features drifted showed only the 3 that had moved over all of its sessions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import pandas as pd

from efimero._io import atomic_write_json, sha256_file
from efimero.collect.quality import QualityReport, check_log
from efimero.collect.rewards import reward_rows
from efimero.collect.targets import STATUSES, judge, negative_feedback, targets
from efimero.css import DEFAULT_TOKENS, StyleTokens
from efimero.data import write_table
from efimero.errors import DataError
from efimero.schema import CSS_TASK
from efimero.store import end_after_newest_visit, iter_sessions, open_engine
from efimero.store.read import DEFAULT_CHUNK_ROWS

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from efimero.bandit.reward import RewardFunction
    from efimero.monitor.drift import DriftReport, ReferenceData

Labels = Literal["heuristic", "reward"]


@dataclass
class CollectResult:
    """What a collection found: the window, the rows written, quality and label statistics."""

    start: datetime
    end: datetime
    frame: pd.DataFrame
    quality: QualityReport
    judged: pd.DataFrame = field(default_factory=pd.DataFrame)
    """One row per valid session, labelled or not: event_time, status, negative_feedback, the served
    classes and the 19 features (for monitoring)."""
    drift: DriftReport | None = None
    """The window's sessions against the reference (with ``validate``, when it could be measured)."""
    output: Path | None = None
    metadata_path: Path | None = None
    labels: Labels = "heuristic"
    """How the training rows were labelled: by behaviour heuristics, or by rewards (:mod:`efimero.collect.rewards`)."""
    reward_version: str | None = None
    pending_rewards: int = 0
    """Logged decisions left out with ``labels="reward"`` because their reward was not due yet."""

    @property
    def statuses(self) -> dict[str, int]:
        """Valid sessions per verdict: confirmed, rejected, ambiguous."""
        counts = self.judged["status"].value_counts() if len(self.judged) else pd.Series(dtype=int)
        return {status: int(counts.get(status, 0)) for status in STATUSES}

    @property
    def online_accuracy(self) -> float | None:
        return online_accuracy(self.judged)

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(), "end": self.end.isoformat(), "rows": len(self.frame),
            "sessions": self.statuses, "online_accuracy": self.online_accuracy,
            "quality": self.quality.to_dict(), "labels": self.labels, "reward_version": self.reward_version,
            "pending_rewards": self.pending_rewards,
            "output": str(self.output) if self.output else None,
            "metadata_path": str(self.metadata_path) if self.metadata_path else None,
        }


def online_accuracy(judged: pd.DataFrame) -> float | None:
    """Share of judged sessions whose behaviour confirmed the served style (None without any)."""
    return float((judged["status"] == "confirmed").mean()) if len(judged) else None


def window(engine: Engine, *, start_date: date | None, end_date: date | None,
           days_back: int) -> tuple[datetime, datetime]:
    """[start, end) in UTC: explicit dates (end inclusive), or the ``days_back`` days up to the newest visit."""
    if start_date or end_date:
        if not (start_date and end_date):
            raise DataError("give both --start-date and --end-date, or neither (then --days-back applies).")
        if end_date < start_date:
            raise DataError(f"--end-date must not be before --start-date. Got {start_date} to {end_date}.")
        begin = datetime.combine(start_date, time(), tzinfo=UTC)
        return begin, datetime.combine(end_date + timedelta(days=1), time(), tzinfo=UTC)
    end = end_after_newest_visit(engine) or datetime.now(UTC)
    return end - timedelta(days=days_back), end


def session_drift(reference: ReferenceData | None, judged: pd.DataFrame, quality: QualityReport) -> DriftReport | None:
    """Feature drift of every valid session against ``reference``; records the shares, or why it could not run."""
    from efimero.monitor import detect_drift

    if reference is None or reference.frame is None:
        quality.drift_not_run = reference.problem if reference is not None else "no reference data was given"
        return None
    if judged.empty:
        quality.drift_not_run = "no valid session in the window"
        return None
    features = CSS_TASK.feature_names
    report = detect_drift(reference.frame[features], judged[features], prediction_columns=[],
                          importance=reference.importance)
    quality.drift_share, quality.weighted_drift_share = report.drift_share, report.weighted_drift_share
    quality.drifted_features = report.drifted_features
    return report


def _judge(logs: pd.DataFrame, quality: QualityReport, labels: Labels,
           tokens: StyleTokens) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One chunk of sessions: count it in ``quality``; return its training rows and its judged sessions."""
    quality.total += len(logs)
    rows, judged = [], []
    records = logs.astype(object).where(logs.notna(), None).to_dict(orient="records")
    for session in cast(list[dict[str, Any]], records):  # columns are the store's field names
        features, problems = check_log(session)
        quality.reasons.update(problems)
        if features is None:
            continue
        quality.valid += 1
        verdict = judge(session, tokens)
        judged.append({"event_time": session["event_time"], "status": verdict.status,
                       "negative_feedback": negative_feedback(session, tokens),
                       **{f"css_class_{g}": label for g, label in session["css_classes"].items()}, **features})
        target = targets(session, features, verdict, tokens) if verdict.usable and labels == "heuristic" else None
        if target is not None:
            classes, weight = target
            rows.append({**features, **classes, "sample_weight": weight})
    return rows, judged


def collect(
    db_url: str,
    *,
    start_date: date | None = None,
    end_date: date | None = None,
    days_back: int = 7,
    min_session_duration_ms: int = 0,
    output: str | Path | None = None,
    validate: bool = False,
    export_metadata: bool = False,
    reference: ReferenceData | None = None,
    max_rows: int | None = None,
    labels: Labels = "heuristic",
    reward: RewardFunction | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    tokens: StyleTokens = DEFAULT_TOKENS,
) -> CollectResult:
    """Read sessions in a window, recompute features, derive targets, check quality, write rows.

    ``reference`` is the training data of the live model (see
    :func:`efimero.monitor.drift.reference_of`); with ``validate`` every valid session of the
    window is tested for drift against it (proceed / caution / abort), or the quality report says
    why it could not be. ``max_rows`` keeps the newest training rows. With ``labels="reward"`` the
    training rows are every logged decision with its reward (``reward``, default weights), not the
    heuristic labels; quality, online accuracy and drift are measured on the sessions either way.

    The window is read ``chunk_rows`` sessions at a time (:func:`efimero.store.iter_sessions`) and
    each chunk is judged before the next is read, so memory holds one chunk of raw logs plus the
    compact results (the judged sessions' features, the training rows), never the whole window's logs;
    with ``labels="reward"`` the logged decisions are read the same way (:func:`~efimero.collect.rewards.reward_rows`).

    ``tokens`` are the style tokens the logged predictions were served with (those of the live
    version, :func:`efimero.css.tokens_of`); the rows carry their targets.
    """
    from efimero.bandit.reward import RewardFunction

    quality, row_parts, judged_parts = QualityReport(), [], []
    task = tokens.task
    engine = open_engine(db_url, create=False)  # a reader: a mistyped URL must fail, not create a store
    try:
        start, end = window(engine, start_date=start_date, end_date=end_date, days_back=days_back)
        for logs in iter_sessions(engine, start=start, end=end, min_session_duration_ms=min_session_duration_ms,
                                  chunk_rows=chunk_rows):
            rows, judged = _judge(logs, quality, labels, tokens)
            if rows:
                row_parts.append(pd.DataFrame(rows, columns=[*task.columns, "sample_weight"]))
            if judged:
                judged_parts.append(pd.DataFrame(judged))
        reward = reward or RewardFunction()
        rewarded, pending = (reward_rows(engine, task, reward, start=start, end=end, now=datetime.now(UTC),
                                         tokens=tokens, chunk_rows=chunk_rows)
                             if labels == "reward" else (pd.DataFrame(), 0))
    finally:
        engine.dispose()
    heuristic = (pd.concat(row_parts, ignore_index=True) if row_parts
                 else pd.DataFrame([], columns=[*task.columns, "sample_weight"]))
    frame = rewarded if labels == "reward" else heuristic
    if len(frame):
        # pandera loads here, not on import: the service's monitor imports this package's judge rules.
        from efimero.data.validate import validate_frame

        if labels == "heuristic":  # a repeated reward row is another visit's evidence: it stays
            frame = frame.drop_duplicates(subset=task.columns).reset_index(drop=True)
        frame, _ = validate_frame(frame, source=f"rows collected from {db_url}", allow_duplicates=labels == "reward",
                                  task=task)
        if max_rows is not None:
            frame = frame.tail(max_rows).reset_index(drop=True)
    judged_frame = pd.concat(judged_parts, ignore_index=True) if judged_parts else pd.DataFrame()
    drift = session_drift(reference, judged_frame, quality) if validate else None
    result = CollectResult(start, end, frame, quality, judged=judged_frame, drift=drift, labels=labels,
                           reward_version=reward.version if labels == "reward" else None, pending_rewards=pending)
    if output is not None:
        result.output = write_table(frame, output)
        if export_metadata:
            result.metadata_path = result.output.with_name(f"{result.output.stem}_metadata.json")
            atomic_write_json(result.metadata_path, result.to_dict() | {"sha256": sha256_file(result.output)})
    return result
