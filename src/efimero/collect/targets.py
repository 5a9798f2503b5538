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

A site's own style tokens (:mod:`efimero.css`) get the same verdicts; the heuristics fill only
the groups and variables they know (the default tokens'), so a rejected session whose other
groups nobody named in feedback has no target and is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from efimero.css import CLASS_TARGET_PREFIX, DEFAULT_TOKENS, StyleTokens

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



@lru_cache(maxsize=16)
def _labels(tokens: StyleTokens) -> tuple[dict[str, str], re.Pattern[str]]:
    """Every class label of the tokens → its group, and a pattern finding labels in free text (longest first)."""
    to_group = {label: group.group for group in tokens.classes for label in group.options}
    return to_group, re.compile("|".join(sorted(map(re.escape, to_group), key=len, reverse=True)) or "(?!)")


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


def feedback_labels(text: str | None, tokens: StyleTokens = DEFAULT_TOKENS) -> dict[str, str]:
    """Class labels named in free-text feedback, by group (the last mention of a group wins)."""
    to_group, pattern = _labels(tokens)
    return {to_group[label]: label for label in pattern.findall(text or "")}


def _rating(session: dict[str, Any]) -> int | None:
    rating = session.get("user_satisfaction")
    return None if rating is None or rating != rating else int(rating)


def negative_feedback(session: dict[str, Any], tokens: StyleTokens = DEFAULT_TOKENS) -> bool:
    """Whether the visitor said the served style was wrong: rated 1–2, or named another class of a group."""
    rating = _rating(session)
    if rating is not None and rating <= DISSATISFIED_MAX_RATING:
        return True
    served = session["css_classes"]
    named = feedback_labels(session.get("ui_preference_feedback"), tokens)
    return any(served.get(group) != label for group, label in named.items())


def judge(session: dict[str, Any], tokens: StyleTokens = DEFAULT_TOKENS) -> Verdict:
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
    return Verdict(status, feedback_labels(session.get("ui_preference_feedback"), tokens))


def _heuristic_classes(features: dict[str, float], tokens: StyleTokens) -> dict[str, str]:
    """The guidelines' fallback label per group, for the groups (and labels) the tokens have."""
    hour = features["hour_of_day"]
    access = features["accessibility_needs"] == 1
    night = hour >= 18 or hour < 6
    rules = {
        "density": "densidad-media",
        "theme": "tema-alto-contraste" if access else ("tema-oscuro" if night else "tema-claro"),
        "font": "fuente-grande" if access else "fuente-sans",
    }
    return {group.group: rules[group.group] for group in tokens.classes
            if group.group in rules and rules[group.group] in group.options}


def targets(session: dict[str, Any], features: dict[str, float], verdict: Verdict,
            tokens: StyleTokens = DEFAULT_TOKENS) -> tuple[dict[str, Any], float] | None:
    """The target columns and sample weight of one usable session; None when a rejected group has no other label."""
    classes = {group: session["css_classes"][group] for group in tokens.groups}
    values = tokens.parse_variables(session["css_variables"])
    if verdict.status == "rejected":
        fallback = _heuristic_classes(features, tokens)
        if set(fallback) | set(verdict.feedback) != set(classes):
            return None
        classes.update(fallback)
        if session["rendering_time_ms"] > SLOW_RENDERING_MS and "animation_duration" in values:
            values["animation_duration"] = min(values["animation_duration"], SLOW_RENDERING_MS)
        if features["accessibility_needs"] == 1 and "font_size_base" in values:
            values["font_size_base"] = max(values["font_size_base"], 19.0)
    classes.update(verdict.feedback)
    weight = (WEIGHTS["feedback"] if verdict.feedback
              else WEIGHTS["heuristic" if verdict.status == "rejected" else "confirmed"])
    row: dict[str, Any] = {f"{CLASS_TARGET_PREFIX}{group}": label for group, label in classes.items()}
    for variable in tokens.variables:
        row[variable.target] = round(min(max(values[variable.target], variable.min), variable.max), 3)
    return row, weight
