"""Production data collection: training rows from logged behaviour, with quality checks."""

from efimero.collect.collect import CollectResult, collect, online_accuracy
from efimero.collect.quality import QualityReport
from efimero.collect.targets import judge, targets

__all__ = ["CollectResult", "QualityReport", "collect", "judge", "online_accuracy", "targets"]
