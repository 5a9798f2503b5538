"""The visitor simulator: synthetic traffic against a live service, with drift on demand.

There is no production traffic here, so :func:`simulate` makes it: visitors drawn from the
training data's distributions, each with a hidden preference, visit the real service over
HTTP on simulated days and behave according to how well the served style fits them. After
a drift day traffic moves to the night and night visitors' taste changes, which the drift
report and the retrained model must both notice.

Example:
    >>> from efimero.simulate import simulate                                    # doctest: +SKIP
    >>> simulate("http://127.0.0.1:8000", visitors=2000, days=14, drift_day=7)   # doctest: +SKIP
"""

from efimero.simulate.behaviour import behave, engaged, match_score, mismatched_groups, served_style
from efimero.simulate.run import Aggregate, SimulationError, SimulationResult, simulate
from efimero.simulate.visitors import (
    DRIFT_NIGHT_SHARE,
    DRIFT_PREFERENCE,
    SHIFTED_FEATURES,
    browser_contexts,
    draw_visits,
    intended_features,
    preferences,
)

__all__ = [
    "DRIFT_NIGHT_SHARE",
    "DRIFT_PREFERENCE",
    "SHIFTED_FEATURES",
    "Aggregate",
    "SimulationError",
    "SimulationResult",
    "behave",
    "browser_contexts",
    "draw_visits",
    "engaged",
    "intended_features",
    "match_score",
    "mismatched_groups",
    "preferences",
    "served_style",
    "simulate",
]
