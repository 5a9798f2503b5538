"""Model outputs as CSS: class names for ``<html>`` and custom properties with units."""

from __future__ import annotations

from collections.abc import Callable

from efimero.schema import CSS_TASK

ROOT_FONT_PX = 16.0
"""Pixels per rem: sizes that should scale with the user's root font size become rem."""


def _rem(px: float) -> str:
    return f"{px / ROOT_FONT_PX:.3f}rem"


CSS_VARIABLES: dict[str, tuple[str, Callable[[float], str]]] = {
    "font_size_base": ("--font-size-base", _rem),
    "line_height_base": ("--line-height-base", lambda v: f"{v:.3f}"),
    "spacing_base": ("--spacing-base", _rem),
    "border_radius_base": ("--border-radius-base", lambda v: f"{v:.1f}px"),
    "color_primary_h": ("--color-primary-h", lambda v: f"{v:.0f}deg"),
    "color_primary_s": ("--color-primary-s", lambda v: f"{v:.1f}%"),
    "color_primary_l": ("--color-primary-l", lambda v: f"{v:.1f}%"),
    "animation_duration": ("--animation-duration", lambda v: f"{v:.0f}ms"),
}
"""Regression target → (CSS custom property, formatter of the value in the target's unit)."""

_RANGES = {target.name: (target.minimum, target.maximum) for target in CSS_TASK.regression_targets}


def css_variables(values: dict[str, float]) -> dict[str, str]:
    """Format predicted values (clipped to the schema's ranges) as CSS custom properties."""
    formatted = {}
    for target, value in values.items():
        name, formatter = CSS_VARIABLES[target]
        low, high = _RANGES[target]
        formatted[name] = formatter(min(max(value, low), high))
    return formatted


def class_key(target: str) -> str:
    """``css_class_theme`` → ``theme``: the short name used in API responses."""
    return target.removeprefix("css_class_")


_UNIT_SCALE = {"rem": ROOT_FONT_PX, "px": 1.0, "deg": 1.0, "%": 1.0, "ms": 1.0, "": 1.0}


def parse_css_variables(variables: dict[str, str]) -> dict[str, float]:
    """The inverse of :func:`css_variables`: CSS values back to target values in their units."""
    by_property = {name: target for target, (name, _) in CSS_VARIABLES.items()}
    values = {}
    for name, text in variables.items():
        number = text.rstrip("abcdefghijklmnopqrstuvwxyz%")
        unit = text[len(number):]
        values[by_property[name]] = float(number) * _UNIT_SCALE[unit]
    return values
