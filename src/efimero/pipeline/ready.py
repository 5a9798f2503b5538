"""Is there enough good new data to retrain? One check for `auto-retrain`, its cron line and the Airflow DAG.

Ready means both:

* **enough new judged sessions**: the window of ``triggers.data_volume`` (``collection_window_days``)
  holds at least ``min_new_samples`` usable training rows (sessions whose behaviour or feedback gave
  a label) — the number the ``data_volume`` trigger counts;
* **data quality passed**: the collection's quality recommendation is not ``abort`` (no valid
  session, or more than half of the features drifted against the live version's training data).

:func:`readiness_of` judges a collection already made (``auto-retrain`` makes one anyway);
:func:`readiness` collects the window itself, writing nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from efimero.collect import CollectResult
    from efimero.config import RetrainingConfig, RetrainingSettings
    from efimero.monitor.drift import ReferenceData


@dataclass(frozen=True)
class Readiness:
    """Whether a retraining may go on, and every reason it may not (empty when ready)."""

    ready: bool
    reasons: list[str]
    judged_sessions: int
    """Usable new training rows (labelled sessions) in the window."""
    min_sessions: int
    window_days: int
    quality: str
    """The collection's quality recommendation: proceed, caution or abort."""
    live_version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    """The collection's quality report, for the record."""

    @property
    def enough_data(self) -> bool:
        return self.judged_sessions >= self.min_sessions

    @property
    def quality_passed(self) -> bool:
        return self.quality != "abort"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"enough_data": self.enough_data, "quality_passed": self.quality_passed}


def readiness_of(settings: RetrainingSettings, collected: CollectResult, *,
                 live_version: str | None = None) -> Readiness:
    """Judge ``collected`` (a collection of the data-volume window, with ``validate``) against ``settings``."""
    volume = settings.triggers.data_volume
    rows, quality = len(collected.frame), collected.quality.recommendation
    reasons = []
    if rows < volume.min_new_samples:
        reasons.append(f"only {rows} new judged sessions in the last {volume.collection_window_days} days "
                       f"(data_volume.min_new_samples: {volume.min_new_samples})")
    if quality == "abort":
        report = collected.quality
        why = ("no valid session" if not report.valid
               else f"drift share {report.decision_share:.2f} of the features against the live version's data")
        reasons.append(f"data quality says abort: {why}")
    return Readiness(ready=not reasons, reasons=reasons, judged_sessions=rows, min_sessions=volume.min_new_samples,
                     window_days=volume.collection_window_days, quality=quality, live_version=live_version,
                     details=collected.quality.to_dict())


def collect_window(settings: RetrainingSettings, reference: ReferenceData | None, *,
                   output: str | Path | None = None) -> CollectResult:
    """The data-volume window of the store, validated against ``reference``, as ``auto-retrain`` collects it."""
    from efimero.collect import collect

    collection = settings.data_collection
    return collect(collection.db_url, days_back=settings.triggers.data_volume.collection_window_days,
                   min_session_duration_ms=collection.min_session_duration, output=output, validate=True,
                   max_rows=collection.max_samples_per_collection, reference=reference,
                   labels=collection.labels, reward=settings.bandit.reward)


def readiness(config: RetrainingConfig | None = None) -> Readiness:
    """Collect the window (writing nothing) and say whether a retraining may go on.

    Example:
        >>> efimero.pipeline.readiness(load_retraining_config()).ready  # doctest: +SKIP
        True
    """
    from efimero.config import load_retraining_config
    from efimero.monitor.drift import reference_of
    from efimero.registry import Registry

    settings = (config or load_retraining_config()).retraining
    live = Registry(settings.models_dir).load()
    collected = collect_window(settings, reference_of(live))
    return readiness_of(settings, collected, live_version=live.version)
