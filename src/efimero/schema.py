"""The feature and target schema, defined once and used everywhere.

A :class:`TabularTask` names the feature columns, the class targets (each with its allowed
labels) and the regression targets (each with its range and unit). Training, the registry,
data validation and prediction only ever see a ``TabularTask``; :data:`CSS_TASK` is the one
efimero ships with: 19 visitor-context features, and the 3 CSS classes and 8 CSS variables
of its default style tokens (:mod:`efimero.css`); a site's own tokens give a task of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FeatureKind = Literal["binary", "integer", "float"]


@dataclass(frozen=True)
class Feature:
    """One input column: its kind, the closed range of valid values and what it means."""

    name: str
    kind: FeatureKind
    minimum: float
    maximum: float
    description: str
    unit: str = ""


@dataclass(frozen=True)
class ClassTarget:
    """A categorical target and the labels it may take."""

    name: str
    labels: tuple[str, ...]
    description: str


@dataclass(frozen=True)
class RegressionTarget:
    """A numeric target, its valid range and the CSS unit it is rendered with."""

    name: str
    minimum: float
    maximum: float
    unit: str
    description: str


@dataclass(frozen=True)
class TabularTask:
    """A supervised tabular problem: features in, class and regression targets out."""

    name: str
    features: tuple[Feature, ...]
    class_targets: tuple[ClassTarget, ...]
    regression_targets: tuple[RegressionTarget, ...]
    stratify_on: str | None = None
    regression_model: str = "regression"
    """Name of the one multi-output model that predicts every regression target."""
    weight_column: str | None = "sample_weight"
    """Optional column of per-row training weights (> 0); absent means every row counts 1."""

    def __post_init__(self) -> None:
        names = [*self.columns, *self.weight_columns]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"every feature and target needs its own column name. Got {', '.join(repeated)} twice.")

    def target_weight_column(self, target: str) -> str | None:
        """The optional column of one class target's own weights (≥ 0), e.g. ``sample_weight__css_class_theme``.

        Where present it replaces :attr:`weight_column` for that target's model: learning from
        rewards weighs each class head by reward / propensity of its own slot's served label.
        """
        return f"{self.weight_column}__{target}" if self.weight_column else None

    @property
    def weight_columns(self) -> list[str]:
        """Every optional weight column: the row weight, then each class target's."""
        if self.weight_column is None:
            return []
        return [self.weight_column, *(f"{self.weight_column}__{t.name}" for t in self.class_targets)]

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]

    @property
    def class_target_names(self) -> list[str]:
        return [target.name for target in self.class_targets]

    @property
    def regression_target_names(self) -> list[str]:
        return [target.name for target in self.regression_targets]

    @property
    def columns(self) -> list[str]:
        """Every column of a training file, in file order."""
        return self.feature_names + self.class_target_names + self.regression_target_names


def _binary(name: str, description: str) -> Feature:
    return Feature(name, "binary", 0, 1, description)


CSS_FEATURES: tuple[Feature, ...] = (
    Feature("hour_of_day", "integer", 0, 23, "Visitor's local hour", "h"),
    _binary("is_weekend", "1 on Saturday and Sunday"),
    _binary("is_business_hours", "1 on weekdays from 09:00 to 17:59"),
    Feature("time_intensity", "float", 0, 1, "Typical traffic at this hour, 1 = daily peak"),
    _binary("is_mobile", "Phone-class device"),
    _binary("is_tablet", "Tablet-class device"),
    _binary("is_desktop", "Desktop or laptop"),
    _binary("touch_enabled", "The device reports touch points"),
    Feature("device_pixel_ratio", "float", 0.25, 8, "window.devicePixelRatio"),
    Feature("viewport_area", "float", 1, 1e8, "Viewport width × height", "CSS px²"),
    Feature("aspect_ratio", "float", 0.05, 20, "Viewport width / height"),
    Feature("viewport_diagonal", "float", 1, 15_000, "Viewport diagonal", "CSS px"),
    Feature("pixel_density", "float", 1, 2_000, "Estimated physical density", "ppi"),
    Feature("avg_session_duration", "float", 0, 86_400, "Mean past session length", "s"),
    Feature("total_interactions", "integer", 0, 10_000_000, "Clicks and taps ever recorded"),
    Feature("days_since_first_visit", "integer", 0, 36_500, "Days since the first visit", "d"),
    Feature("user_density_group", "integer", 0, 2, "0 casual, 1 regular, 2 power user"),
    Feature("estimated_network_speed", "float", 0.01, 10_000, "Estimated downlink", "Mbit/s"),
    _binary("accessibility_needs", "Asked for more contrast, less motion or larger text"),
)

# The task's targets come from the default style tokens (efimero/tokens/efimero.yaml), which build
# it from the classes above: imported last, so that a first import of either module finds them.
from efimero.css import DEFAULT_TOKENS  # noqa: E402

CSS_TASK: TabularTask = DEFAULT_TOKENS.task
"""The ephemeral-frontend task: visitor context → the default tokens' 3 CSS classes and 8 CSS variables."""

CSS_CLASS_TARGETS: tuple[ClassTarget, ...] = CSS_TASK.class_targets
CSS_REGRESSION_TARGETS: tuple[RegressionTarget, ...] = CSS_TASK.regression_targets
FEATURE_NAMES: list[str] = CSS_TASK.feature_names
CLASS_TARGET_NAMES: list[str] = CSS_TASK.class_target_names
REGRESSION_TARGET_NAMES: list[str] = CSS_TASK.regression_target_names
