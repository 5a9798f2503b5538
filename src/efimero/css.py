"""A site's style tokens, and model outputs as CSS: class names for ``<html>`` and custom properties with units.

A frontend team adopting efimero has design tokens of its own. It declares them in one YAML
file (:class:`StyleTokens`): class groups, each a set of mutually exclusive class names of
which one goes on ``<html>``, and CSS custom properties, each a range in a unit. The tokens
become the targets of a :class:`~efimero.schema.TabularTask` (one classifier per group, one
regressor for the variables) and travel inside every version trained on them
(``metadata["style_tokens"]``), so serving, the JS client and collection follow the version
they serve, with no code of their own per site.

efimero ships the design guide's tokens, ``efimero/tokens/efimero.yaml`` (:data:`DEFAULT_TOKENS`:
3 groups, 8 variables); a version without tokens in its metadata was trained on them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from efimero.errors import ConfigError

if TYPE_CHECKING:
    from efimero.schema import TabularTask

ROOT_FONT_PX = 16.0
"""Pixels per rem: sizes that should scale with the user's root font size become rem."""

CLASS_TARGET_PREFIX = "css_class_"
"""A class group ``theme`` is learnt as the target ``css_class_theme``."""

Unit = Literal["", "px", "rem", "em", "ch", "%", "deg", "ms", "s", "vw", "vh"]

RENDERINGS: dict[tuple[str, str], float] = {("px", "rem"): ROOT_FONT_PX, ("ms", "s"): 1000.0}
"""(unit learnt, unit written) → divisor: the conversions a variable may declare with ``css_unit``."""

_GROUP = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
RESERVED_GROUPS = ("groups", "version", "prediction", "hide")
"""Names the client already uses beside the groups' (``--efimero-groups``, ``data-efimero-version`` ...)."""
_CSS_CLASS = re.compile(r"^-?[_a-zA-Z][_a-zA-Z0-9-]{0,63}$")
_PROPERTY = re.compile(r"^--[a-z][a-z0-9-]{0,62}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _spelt(pattern: re.Pattern[str], what: str) -> AfterValidator:
    """A check that a name matches ``pattern``, whose error says what it must be."""
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"must be {what}. Got {value!r} instead.")
        return value
    return AfterValidator(check)


GroupName = Annotated[str, _spelt(_GROUP, "lower-case letters, digits and underscores, starting with a letter "
                                          "(at most 32)")]
ClassName = Annotated[str, _spelt(_CSS_CLASS, "a CSS class name (letters, digits, - and _, not starting with a digit)")]
PropertyName = Annotated[str, _spelt(_PROPERTY, "a CSS custom property: -- then lower-case letters, digits and -")]
TokensName = Annotated[str, _spelt(_NAME, "lower-case letters, digits, - and _ (at most 64)")]


class ClassGroup(BaseModel):
    """One group of mutually exclusive classes: the model picks one option per visitor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: GroupName = Field(description="Short name, used in API responses and as --efimero-<group>")
    options: tuple[ClassName, ...] = Field(min_length=2, description="The class names, each a CSS identifier")
    description: str = ""

    @field_validator("group")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_GROUPS:
            raise ValueError(f"must not be one of {', '.join(RESERVED_GROUPS)} (the client's own names). "
                             f"Got {value!r} instead.")
        return value

    @field_validator("options")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"options must differ. Got {', '.join(value)} instead.")
        return value

    @property
    def target(self) -> str:
        return f"{CLASS_TARGET_PREFIX}{self.group}"


class Variable(BaseModel):
    """One CSS custom property: learnt as a number in ``unit`` within [min, max], written in ``css_unit``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    property: PropertyName = Field(description="The custom property, e.g. --font-size-base")
    target: str = Field("", description="Its column in training data; default: the property's name in snake case")
    min: float
    max: float
    unit: Unit = ""
    css_unit: Unit = Field("", description="Unit written in CSS (px → rem, ms → s); default: unit")
    decimals: int = Field(2, ge=0, le=6, description="Decimals written in CSS")
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        """``target`` from the property's name and ``css_unit`` from ``unit`` when not given."""
        if isinstance(data, Mapping) and isinstance(data.get("property"), str):
            data = dict(data)
            if not data.get("target"):
                data["target"] = data["property"].removeprefix("--").replace("-", "_")
            if data.get("css_unit") is None:
                data["css_unit"] = data.get("unit", "")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Variable:
        if not self.min < self.max:
            raise ValueError(f"min must be below max. Got min {self.min:g}, max {self.max:g} instead.")
        if self.css_unit != self.unit and (self.unit, self.css_unit) not in RENDERINGS:
            known = ", ".join(f"{a} → {b}" for a, b in RENDERINGS)
            raise ValueError(f"css_unit may only convert {known}. Got {self.unit or 'none'} → {self.css_unit} instead.")
        return self

    @cached_property
    def _divisor(self) -> float:
        return RENDERINGS.get((self.unit, self.css_unit), 1.0)

    def format(self, value: float) -> str:
        """The value, clipped to [min, max], as CSS: ``16.8`` px → ``1.050rem``."""
        clipped = min(max(value, self.min), self.max)
        return f"{clipped / self._divisor:.{self.decimals}f}{self.css_unit}"

    def parse(self, text: str) -> float:
        """The inverse of :meth:`format`: ``1.050rem`` → 16.8 (px)."""
        number = text.strip().removesuffix(self.css_unit)
        try:
            return float(number) * self._divisor
        except ValueError:
            raise ValueError(f"{self.property}: expected a number in {self.css_unit or 'no unit'}. "
                             f"Got {text!r} instead.") from None


class StyleTokens(BaseModel):
    """A site's style tokens: class groups and variables the models predict, one file per site."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: TokensName = Field(description="Short name of the token set")
    description: str = ""
    classes: tuple[ClassGroup, ...] = ()
    variables: tuple[Variable, ...] = ()
    stratify_on: str | None = Field(None, description="Class group that splits are stratified on; default: the first")

    @model_validator(mode="after")
    def _consistent(self) -> StyleTokens:
        from efimero._config_reader import KeyedError

        if not self.classes and not self.variables:
            raise ValueError("declare at least one class group or variable.")
        declared = {"group": self.groups, "property": self.properties, "target": [v.target for v in self.variables]}
        for kind, names in declared.items():
            twice = sorted({name for name in names if names.count(name) > 1})
            if twice:
                key = "classes" if kind == "group" else "variables"
                raise KeyedError((key,), f"each {kind} must be declared once. Got {', '.join(twice)} twice.")
        if self.stratify_on is not None and self.stratify_on not in self.groups:
            raise KeyedError(("stratify_on",), f"must name a class group ({', '.join(self.groups) or 'none'}). "
                             f"Got {self.stratify_on!r} instead.")
        return self

    @property
    def groups(self) -> list[str]:
        return [group.group for group in self.classes]

    @property
    def properties(self) -> list[str]:
        return [variable.property for variable in self.variables]

    @cached_property
    def _by_target(self) -> dict[str, Variable]:
        return {variable.target: variable for variable in self.variables}

    @cached_property
    def _by_property(self) -> dict[str, Variable]:
        return {variable.property: variable for variable in self.variables}

    @cached_property
    def task(self) -> TabularTask:
        """The tabular task the tokens define: the visitor-context features in, one target per group and variable."""
        from efimero.schema import CSS_FEATURES, ClassTarget, RegressionTarget, TabularTask

        stratify = self.stratify_on or (self.groups[0] if self.classes else None)
        return TabularTask(
            name="css",
            features=CSS_FEATURES,
            class_targets=tuple(ClassTarget(c.target, c.options, c.description) for c in self.classes),
            regression_targets=tuple(RegressionTarget(v.target, v.min, v.max, v.unit, v.description)
                                     for v in self.variables),
            stratify_on=None if stratify is None else f"{CLASS_TARGET_PREFIX}{stratify}",
            regression_model="css_variables",
        )

    def format_variables(self, values: Mapping[str, float]) -> dict[str, str]:
        """Predicted values by target (clipped to their ranges) as CSS custom properties."""
        return {self._by_target[target].property: self._by_target[target].format(value)
                for target, value in values.items()}

    def parse_variables(self, variables: Mapping[str, str]) -> dict[str, float]:
        """The inverse of :meth:`format_variables`: CSS values back to target values in their units.

        Raises:
            ValueError: a property the tokens do not declare (a log served from other tokens), or an unreadable value.
        """
        values = {}
        for name, text in variables.items():
            variable = self._by_property.get(name)
            if variable is None:
                raise ValueError(f"{name} is not a variable of the style tokens {self.name!r} "
                                 f"({', '.join(self.properties)}).")
            values[variable.target] = variable.parse(text)
        return values

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as stored in a version's metadata (targets and units filled in)."""
        return self.model_dump(mode="json")


def load_tokens(path: str | Path) -> StyleTokens:
    """Read and validate a site's style token file.

    Raises:
        ConfigError: naming the file and each dotted key at fault, e.g.
            ``tokens.yaml: variables.1.min: min must be below max``.
    """
    from efimero._config_reader import load_strict

    tokens = load_strict(path, StyleTokens, "style tokens")
    try:
        tokens.task  # noqa: B018  (a target named like a feature shows only once the task is built)
    except ValueError as exc:
        raise ConfigError(f"{path}: variables: {exc}") from None
    return tokens


DEFAULT_TOKENS = StyleTokens.model_validate(
    yaml.safe_load(resources.files("efimero").joinpath("tokens/efimero.yaml").read_text(encoding="utf-8")))
"""The design guide's tokens: density, font and theme classes and 8 variables."""

METADATA_KEY = "style_tokens"
"""Where a version's metadata holds the tokens it was trained on."""

_parsed: dict[int, tuple[Mapping[str, Any], StyleTokens]] = {}


def tokens_of(metadata: Mapping[str, Any]) -> StyleTokens:
    """The style tokens a version was trained on (:data:`DEFAULT_TOKENS` when its metadata has none).

    Parsed once per metadata mapping: the entry keeps the mapping alive, so its id is not reused.
    """
    spec = metadata.get(METADATA_KEY)
    if spec is None:
        return DEFAULT_TOKENS
    hit = _parsed.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    if len(_parsed) > 64:
        _parsed.clear()
    tokens = StyleTokens.model_validate(spec)
    _parsed[id(spec)] = (spec, tokens)
    return tokens


def css_variables(values: Mapping[str, float], tokens: StyleTokens = DEFAULT_TOKENS) -> dict[str, str]:
    """Format predicted values (clipped to their ranges) as CSS custom properties."""
    return tokens.format_variables(values)


def parse_css_variables(variables: Mapping[str, str], tokens: StyleTokens = DEFAULT_TOKENS) -> dict[str, float]:
    """The inverse of :func:`css_variables`."""
    return tokens.parse_variables(variables)


def class_key(target: str) -> str:
    """``css_class_theme`` → ``theme``: the short name used in API responses."""
    return target.removeprefix(CLASS_TARGET_PREFIX)
