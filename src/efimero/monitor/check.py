"""One monitoring check: the window ending now, every rule on every version and arm in it.

`efimero monitor` runs it once; the service runs the same check in a background loop, with
``now`` on the clock its traffic uses (the visits' time, which a simulation sets).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from efimero.monitor.online import VersionWindow, window_metrics
from efimero.monitor.rules import ANOMALY, INCONCLUSIVE, RuleResult, evaluate

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from efimero.config import MonitoringRules
    from efimero.registry import Registry


@dataclass(frozen=True)
class MonitorReport:
    """A window's metrics per version and arm, and every rule's result on them."""

    start: datetime
    end: datetime
    versions: list[VersionWindow]
    results: list[RuleResult]

    @property
    def anomalies(self) -> list[RuleResult]:
        return [result for result in self.results if result.outcome == ANOMALY]

    @property
    def inconclusive(self) -> list[RuleResult]:
        """Rules that could not be checked (too few sessions or predictions, no baseline), with the reason."""
        return [result for result in self.results if result.outcome == INCONCLUSIVE]

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": {"start": self.start.isoformat(), "end": self.end.isoformat(),
                       "minutes": (self.end - self.start).total_seconds() / 60},
            "versions": [version.to_dict() for version in self.versions],
            "checks": [result.to_dict() for result in self.results],
            "anomalies": [result.to_dict() for result in self.anomalies],
            "inconclusive": [result.to_dict() for result in self.inconclusive],
        }


def check(engine: Engine, rules: MonitoringRules, *, now: datetime, registry: Registry | None = None) -> MonitorReport:
    """Measure the window [now − window, now) per version and arm and apply every anomaly rule.

    The live arm is compared with its own previous window, which is measured too (without drift).

    Args:
        engine: the interaction store.
        rules: ``retraining.monitoring`` of the retraining config.
        now: the window's end; a naive time is taken as UTC.
        registry: where versions' training data is found, for prediction drift (else not measured).

    Raises:
        StoreError: the store cannot be read.

    Example:
        >>> rules = load_retraining_config().retraining.monitoring
        >>> report = check(open_engine("sqlite:///data/efimero.db", create=False), rules,
        ...                now=datetime.now(UTC), registry=Registry("models"))  # doctest: +SKIP
        >>> [(a.rule, a.model_version, a.action) for a in report.anomalies]  # doctest: +SKIP
        [('accuracy_drop', 'v_20261126_091500', 'rollback')]
    """
    end = now if now.tzinfo else now.replace(tzinfo=UTC)
    length = timedelta(minutes=rules.window_minutes)
    start = end - length
    current, previous = (
        window_metrics(engine, start=begin, end=begin + length, min_sessions=rules.min_sessions,
                       min_predictions=rules.min_predictions, registry=reference)
        for begin, reference in ((start, registry), (start - length, None))
    )
    return MonitorReport(start, end, current, evaluate(current, previous, rules))
