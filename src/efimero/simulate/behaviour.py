"""How a simulated visitor reacts to the style it was served.

The whole model hangs on one number, the match score ``m`` in [0, 1]: how well the served
style agrees with the visitor's hidden preference. Agreement on each class group counts with
a weight (density 0.3, theme 0.25, font 0.15), closeness of four variables the visitor can
see (font size, spacing, animation duration, hue) shares the remaining 0.3. From ``m`` and
seeded randomness come the interaction log fields the browser client would send:

* bounce with probability ``0.6 (1 - m)²`` — then no interactions and a few seconds' stay;
* otherwise a session of median ``30 s + 200 s · m`` (lognormal), ``Poisson(1 + 10 m)``
  interactions and a scroll depth from ``Beta(1 + 5m, 1 + 5(1 - m))``;
* a 1–5 rating ``≈ 1 + 4 m`` from 30 % of the visitors;
* explicit feedback from 25 % of those served a class they do not prefer: the preferred
  labels of every mismatching group (``"densidad-alta fuente-serif"``), which data collection
  reads as labels;
* page load and rendering times that grow on slow networks.

So the better a model predicts the hidden preference, the longer and deeper the sessions —
the signal retraining has to recover.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from efimero.collect.targets import judge
from efimero.css import parse_css_variables

CLASS_WEIGHTS: dict[str, float] = {"css_class_density": 0.3, "css_class_theme": 0.25, "css_class_font": 0.15}
"""Weight of agreeing on each class group in the match score."""

VARIABLE_TOLERANCE: dict[str, float] = {
    "font_size_base": 4.0, "spacing_base": 6.0, "animation_duration": 250.0, "color_primary_h": 90.0,
}
"""Distance (px, px, ms, degrees) at which a variable stops counting as close at all."""

VARIABLES_WEIGHT = 0.3
"""Weight of the variables together in the match score, split equally."""

RATING_SHARE = 0.3
FEEDBACK_SHARE = 0.25
MAX_SESSION_S = 7200.0


def served_style(served: Mapping[str, Any]) -> dict[str, Any]:
    """A ``/v1/predict`` response as class labels and variable values keyed by target name."""
    style: dict[str, Any] = {f"css_class_{group}": label for group, label in served["css_classes"].items()}
    return style | parse_css_variables(served["css_variables"])


def _closeness(target: str, served: float, preferred: float) -> float:
    distance = abs(served - preferred)
    if target == "color_primary_h":
        distance = min(distance % 360, 360 - distance % 360)
    return max(0.0, 1.0 - distance / VARIABLE_TOLERANCE[target])


def match_score(served: Mapping[str, Any], preferred: Mapping[str, Any]) -> float:
    """How well a served style fits a preference, 0 (nothing) to 1 (exactly).

    Args:
        served: a ``/v1/predict`` response (``css_classes`` and ``css_variables``).
        preferred: class labels and variable values by target name (a row of
            :func:`efimero.simulate.preferences`).

    Example:
        >>> served = {"css_classes": {"density": "densidad-alta", "theme": "tema-claro",
        ...     "font": "fuente-sans"}, "css_variables": {"--font-size-base": "1.000rem",
        ...     "--spacing-base": "0.500rem", "--animation-duration": "280ms",
        ...     "--color-primary-h": "195deg"}}
        >>> preferred = {"css_class_density": "densidad-alta", "css_class_theme": "tema-claro",
        ...     "css_class_font": "fuente-sans", "font_size_base": 16.0, "spacing_base": 8.0,
        ...     "animation_duration": 280.0, "color_primary_h": 195.0}
        >>> match_score(served, preferred)
        1.0
    """
    style = served_style(served)
    score = sum(w for target, w in CLASS_WEIGHTS.items() if style[target] == preferred[target])
    per_variable = VARIABLES_WEIGHT / len(VARIABLE_TOLERANCE)
    score += sum(
        per_variable * _closeness(t, float(style[t]), float(preferred[t])) for t in VARIABLE_TOLERANCE
    )
    return round(float(score), 6)


def mismatched_groups(served: Mapping[str, Any], preferred: Mapping[str, Any]) -> list[str]:
    """Class targets (``css_class_*``) whose served label is not the preferred one."""
    style = served_style(served)
    return [target for target in CLASS_WEIGHTS if style[target] != preferred[target]]


def behave(
    served: Mapping[str, Any], preferred: Mapping[str, Any], rng: np.random.Generator, *, downlink_mbps: float = 10.0
) -> dict[str, Any]:
    """The interaction log a visitor with this preference produces after being served this style.

    Args:
        served: a ``/v1/predict`` response (``css_classes`` and ``css_variables``).
        preferred: the visitor's hidden preference by target name.
        rng: the visit's own source of randomness (same state, same log).
        downlink_mbps: the visitor's network speed, for load and rendering times.

    Returns:
        The fields of :class:`efimero.serve.schemas.InteractionRequest` that describe the
        session (no prediction, session or user id).

    Example:
        >>> log = behave(served, preferred, np.random.default_rng(0))  # doctest: +SKIP
        >>> log["session_duration"]                                     # doctest: +SKIP
        231874
    """
    m = match_score(served, preferred)
    bounced = bool(rng.random() < 0.6 * (1 - m) ** 2)
    if bounced:
        duration_s = rng.lognormal(np.log(6.0), 0.6)
        interactions = 0
        scroll = 0.3 * rng.beta(1.0, 6.0)
    else:
        duration_s = rng.lognormal(np.log(30.0 + 200.0 * m), 0.5)
        interactions = int(rng.poisson(1.0 + 10.0 * m))
        scroll = rng.beta(1.0 + 5.0 * m, 1.0 + 5.0 * (1.0 - m))
    rating = None
    if rng.random() < RATING_SHARE:
        rating = int(np.clip(round(1.0 + 4.0 * m + rng.normal(0.0, 0.6)), 1, 5))
    feedback = None
    wrong = mismatched_groups(served, preferred)
    if wrong and rng.random() < FEEDBACK_SHARE:
        feedback = " ".join(str(preferred[group]) for group in wrong)
    slowness = 1.0 / (downlink_mbps + 1.0)
    return {
        "session_duration": round(min(float(duration_s), MAX_SESSION_S) * 1000),
        "interactions_count": interactions,
        "bounce_rate": 1.0 if bounced else 0.0,
        "scroll_depth": round(float(np.clip(scroll, 0.0, 1.0)), 4),
        "click_through_rate": round(min(1.0, interactions / 20), 4),
        "user_satisfaction": rating,
        "ui_preference_feedback": feedback,
        "page_load_time": round(min(float(rng.lognormal(np.log(250.0 + 4000.0 * slowness), 0.35)), 60_000.0), 1),
        "rendering_time": round(min(float(rng.lognormal(np.log(12.0 + 250.0 * slowness), 0.4)), 60_000.0), 1),
    }


def engaged(log: Mapping[str, Any]) -> bool:
    """Whether a session confirms the served style: data collection's rule, on a client log."""
    return judge({
        "session_duration_ms": log["session_duration"], "interactions_count": log["interactions_count"],
        "scroll_depth": log["scroll_depth"], "bounce_rate": log["bounce_rate"],
        "user_satisfaction": log.get("user_satisfaction"),
    }).status == "confirmed"
