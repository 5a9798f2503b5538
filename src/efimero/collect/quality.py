"""Data quality of collected interaction logs, and whether to retrain on them.

Per-log rules (the retraining guidelines, completed): the context is a valid browser context
(viewport and screen > 0, DPR > 0, known enum values), session duration, interactions, page
load and rendering times are ≥ 0, bounce rate, scroll depth and click-through rate lie in
[0, 1], a rating is 1–5, and the recomputed features are finite and inside the schema's
ranges. The recommendation comes from the drift of the window's sessions against the training
data of the live model: ``proceed``, ``caution`` above 0.3, ``abort`` above 0.5 (share of drifted
features, weighted by the live model's feature importance when known). When drift was asked
for but could not be measured (``drift_not_run`` says why), the recommendation is ``caution``:
an unchecked window is not a clean one.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from efimero.context import BrowserContext, features_of
from efimero.schema import CSS_TASK

CAUTION_DRIFT = 0.3
ABORT_DRIFT = 0.5

_NON_NEGATIVE = ("session_duration_ms", "interactions_count", "page_load_time_ms", "rendering_time_ms")
_UNIT_INTERVAL = ("bounce_rate", "scroll_depth", "click_through_rate")
_RANGES = {f.name: (f.minimum, f.maximum) for f in CSS_TASK.features}


@dataclass
class QualityReport:
    total: int = 0
    valid: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    drift_share: float | None = None
    """Unweighted share of drifted features (None when drift was not measured)."""
    weighted_drift_share: float | None = None
    """Importance-weighted share (None without the live model's importance); decides when present."""
    drifted_features: list[str] = field(default_factory=list)
    drift_not_run: str | None = None
    """Why drift was asked for but not measured."""

    @property
    def invalid(self) -> int:
        return self.total - self.valid

    @property
    def decision_share(self) -> float | None:
        return self.drift_share if self.weighted_drift_share is None else self.weighted_drift_share

    @property
    def recommendation(self) -> str:
        """proceed / caution / abort from the drift share (caution > 0.3 or unmeasured, abort > 0.5)."""
        if not self.valid:
            return "abort"
        share = self.decision_share
        if share is None:
            return "caution" if self.drift_not_run else "proceed"
        return "abort" if share > ABORT_DRIFT else "caution" if share > CAUTION_DRIFT else "proceed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_logs": self.total, "valid_logs": self.valid, "invalid_logs": self.invalid,
            "invalid_reasons": dict(self.reasons.most_common()), "drift_share": self.drift_share,
            "weighted_drift_share": self.weighted_drift_share, "drifted_features": self.drifted_features,
            "drift_not_run": self.drift_not_run, "recommendation": self.recommendation,
        }


def check_log(session: dict[str, Any]) -> tuple[dict[str, float] | None, list[str]]:
    """Recompute a log's features with the shared processor; return them (or None) and the problems."""
    problems = [f"{name} must be ≥ 0" for name in _NON_NEGATIVE if not session[name] >= 0]
    problems += [f"{name} must lie in [0, 1]" for name in _UNIT_INTERVAL if not 0 <= session[name] <= 1]
    rating = session.get("user_satisfaction")
    if rating is not None and rating == rating and not 1 <= rating <= 5:
        problems.append("user_satisfaction must lie in 1–5")
    context = {k: v for k, v in (session["context"] or {}).items() if k != "session_id"}
    try:
        features = features_of(BrowserContext.model_validate(context))
    except ValidationError as exc:
        first = exc.errors()[0]
        return None, [*problems, f"context.{'.'.join(map(str, first['loc']))}: {first['msg']}"]
    for name, value in features.items():
        low, high = _RANGES[name]
        if not (math.isfinite(value) and low <= value <= high):
            problems.append(f"feature {name} must lie in [{low:g}, {high:g}]")
    return (features if not problems else None), problems
