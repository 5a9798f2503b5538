"""Training targets from behaviour: the rules of the retraining guidelines, made sound.

All the rules live here. A session is

* **confirmed** when it was engaged (longer than 2 min, more than 5 interactions, scrolled past
  70 %, bounce under 0.3; the guidelines' "high engagement") or rated 4–5: the style that
  was served is the target;
* **rejected** when behaviour says the served style was wrong: rated 1–2, a bounce (≥ 0.5), or
  under 30 s without a single interaction. Only then do the heuristics fill in: density
  ``densidad-media`` (the guidelines' non-engaged choice), theme by the hour (night is 18:00–05:59;
  the guidelines' ``18 <= hour <= 6`` can never be true), ``tema-alto-contraste`` and
  ``fuente-grande`` with accessibility needs, else ``fuente-sans``; animation at most 100 ms when
  rendering took over 100 ms, font size at least 19 px with accessibility needs;
* **ambiguous** otherwise: no evidence either way, so the session is left out.

Explicit feedback beats all of that: a class label named in ``ui_preference_feedback`` (e.g.
"densidad-alta") is the target of its group in any session, and the row is kept.

**Negative feedback** (the guidelines' ``user_feedback_negative_rate`` trigger) is what the
visitor said, not what behaviour suggests: a rating of 1–2, or feedback naming a class other
than the one served in its group.

Each row gets a ``sample_weight`` by the strength of its evidence: explicit feedback 3,
confirmed 1, heuristic 0.5 (``efimero train`` reads the column when present).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from efimero.css import parse_css_variables
from efimero.schema import CSS_TASK

ENGAGED_MIN_DURATION_MS = 120_000
ENGAGED_MIN_INTERACTIONS = 5
ENGAGED_MIN_SCROLL = 0.7
ENGAGED_MAX_BOUNCE = 0.3
SATISFIED_MIN_RATING = 4
DISSATISFIED_MAX_RATING = 2
BOUNCED_MIN_RATE = 0.5
IDLE_MAX_DURATION_MS = 30_000
SLOW_RENDERING_MS = 100.0
WEIGHTS = {"feedback": 3.0, "confirmed": 1.0, "heuristic": 0.5}
STATUSES = ("confirmed", "rejected", "ambiguous")

_GROUPS = {target.name.removeprefix("css_class_"): target for target in CSS_TASK.class_targets}
_LABEL_TO_GROUP = {label: group for group, target in _GROUPS.items() for label in target.labels}
_LABEL_PATTERN = re.compile("|".join(sorted(map(re.escape, _LABEL_TO_GROUP), key=len, reverse=True)))


@dataclass(frozen=True)
class Verdict:
    """What a session says about the style it was served."""

    status: str  # confirmed | rejected | ambiguous
    feedback: dict[str, str]

    @property
    def usable(self) -> bool:
        return self.status != "ambiguous" or bool(self.feedback)


def engaged(session: dict[str, Any]) -> bool:
    return (
        session["session_duration_ms"] > ENGAGED_MIN_DURATION_MS
        and session["interactions_count"] > ENGAGED_MIN_INTERACTIONS
        and session["scroll_depth"] > ENGAGED_MIN_SCROLL
        and session["bounce_rate"] < ENGAGED_MAX_BOUNCE
    )


def feedback_labels(text: str | None) -> dict[str, str]:
    """Class labels named in free-text feedback, by group (the last mention of a group wins)."""
    return {_LABEL_TO_GROUP[label]: label for label in _LABEL_PATTERN.findall(text or "")}


def _rating(session: dict[str, Any]) -> int | None:
    rating = session.get("user_satisfaction")
    return None if rating is None or rating != rating else int(rating)


def negative_feedback(session: dict[str, Any]) -> bool:
    """Whether the visitor said the served style was wrong: rated 1–2, or named another class of a group."""
    rating = _rating(session)
    if rating is not None and rating <= DISSATISFIED_MAX_RATING:
        return True
    served = session["css_classes"]
    named = feedback_labels(session.get("ui_preference_feedback"))
    return any(served.get(group) != label for group, label in named.items())


def judge(session: dict[str, Any]) -> Verdict:
    """Confirmed, rejected or ambiguous, plus any explicit labels (see the module docstring)."""
    rating = _rating(session)
    if engaged(session) or (rating is not None and rating >= SATISFIED_MIN_RATING):
        status = "confirmed"
    elif (
        (rating is not None and rating <= DISSATISFIED_MAX_RATING)
        or session["bounce_rate"] >= BOUNCED_MIN_RATE
        or (session["session_duration_ms"] < IDLE_MAX_DURATION_MS and session["interactions_count"] == 0)
    ):
        status = "rejected"
    else:
        status = "ambiguous"
    return Verdict(status, feedback_labels(session.get("ui_preference_feedback")))


def _heuristic_classes(features: dict[str, float]) -> dict[str, str]:
    hour = features["hour_of_day"]
    access = features["accessibility_needs"] == 1
    night = hour >= 18 or hour < 6
    return {
        "density": "densidad-media",
        "theme": "tema-alto-contraste" if access else ("tema-oscuro" if night else "tema-claro"),
        "font": "fuente-grande" if access else "fuente-sans",
    }


def targets(session: dict[str, Any], features: dict[str, float], verdict: Verdict) -> tuple[dict[str, Any], float]:
    """The target columns and sample weight of one usable session."""
    served = {group: session["css_classes"][group] for group in _GROUPS}
    values = parse_css_variables(session["css_variables"])
    classes = dict(served)
    if verdict.status == "rejected":
        classes.update(_heuristic_classes(features))
        if session["rendering_time_ms"] > SLOW_RENDERING_MS:
            values["animation_duration"] = min(values["animation_duration"], SLOW_RENDERING_MS)
        if features["accessibility_needs"] == 1:
            values["font_size_base"] = max(values["font_size_base"], 19.0)
    classes.update(verdict.feedback)
    weight = (WEIGHTS["feedback"] if verdict.feedback
              else WEIGHTS["heuristic" if verdict.status == "rejected" else "confirmed"])
    row = {_GROUPS[group].name: label for group, label in classes.items()}
    for target in CSS_TASK.regression_targets:
        row[target.name] = round(min(max(values[target.name], target.minimum), target.maximum), 3)
    return row, weight
