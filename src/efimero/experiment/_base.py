"""Shared by the experiment modules: the input checks and the base of the result objects."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from efimero.errors import ExperimentInputError, format_list


def sample(values: ArrayLike, name: str, *, minimum: int = 2) -> np.ndarray:
    """``values`` as a 1-D float array, refused when not numeric, too short or not finite.

    Two values are the least a variance (and so any readout) can be computed from.
    """
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ExperimentInputError(f"{name} must be an array of numbers. Got {values!r:.80} instead.") from None
    if array.ndim != 1:
        raise ExperimentInputError(
            f"{name} must be a 1-D array, one value per session. Got shape {array.shape} instead."
        )
    if array.size < minimum:
        raise ExperimentInputError(f"{name} must hold at least {minimum} values. Got {array.size} instead.")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ExperimentInputError(
            f"{name} must hold only finite numbers. Got {array[bad[0]]} at position(s) {format_list(bad.tolist())} "
            "instead. Drop or impute those sessions before the readout."
        )
    return array


def level(value: float, name: str) -> float:
    """A probability setting (alpha, power) that must lie strictly between 0 and 1."""
    if not 0.0 < value < 1.0:
        raise ExperimentInputError(f"{name} must lie strictly between 0 and 1. Got {value} instead.")
    return float(value)


def positive(value: float, name: str) -> float:
    """A setting (a standard deviation, a ratio, a planned size) that must be a finite number above 0."""
    if not (np.isfinite(value) and value > 0):
        raise ExperimentInputError(f"{name} must be a finite number above 0. Got {value} instead.")
    return float(value)


class JsonResult:
    """``to_dict`` for the frozen result dataclasses: their fields plus the properties in ``derived``."""

    __dataclass_fields__: ClassVar[dict[str, Any]]  # set by @dataclass on each subclass
    derived: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready mapping, derived properties included."""
        return {**asdict(self), **{name: getattr(self, name) for name in self.derived}}
