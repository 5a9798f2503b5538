"""The serving contract of a version: what clients send it and what it answers.

Clients of a target send the features the live version reads and render the classes and CSS
variables it returns. A candidate that reads other features, drops a class the frontend styles
or renames a variable breaks them even when it is more accurate, so a deployment compares the
candidate's contract with the live one before copying anything.

A version records its feature order (``preprocessing.json``), its targets and each class
target's labels (``models.json``) and the task it was trained for (``metadata.json``). Feature
kinds and the units of the regression targets belong to the task's schema, so they are
compared through the task name.
"""

from __future__ import annotations

from dataclasses import dataclass

from efimero.bundle import ModelBundle
from efimero.errors import format_list


@dataclass(frozen=True)
class Contract:
    """Feature order, class labels per class target and regression targets of one version."""

    version: str | None
    task: str | None
    features: tuple[str, ...]
    classes: dict[str, tuple[str, ...]]
    regression: tuple[str, ...]

    @classmethod
    def of(cls, bundle: ModelBundle) -> Contract:
        classes = {m.targets[0]: tuple(m.labels) for m in bundle.models.values() if m.labels is not None}
        regression = tuple(t for m in bundle.models.values() if m.labels is None for t in m.targets)
        return cls(bundle.version, bundle.metadata.get("task"), tuple(bundle.feature_names), classes, regression)


def _named(what: tuple[str, str], items: set[str]) -> str:
    """``class 'a'`` or ``classes 'a', 'b'``: the singular or plural noun, then the quoted names."""
    return f"{what[len(items) > 1]} {format_list([repr(item) for item in sorted(items)])}"


def _removed_and_added(what: tuple[str, str], live: Contract, candidate: Contract, old: set[str], new: set[str],
                       *, of: str = "") -> list[str]:
    changes = []
    if old - new:
        changes.append(f"candidate {candidate.version} drops {_named(what, old - new)}{of} "
                       f"that the live {live.version} serves")
    if new - old:
        changes.append(f"candidate {candidate.version} adds {_named(what, new - old)}{of} "
                       f"that the live {live.version} does not serve")
    return changes


def contract_changes(live: Contract, candidate: Contract) -> list[str]:
    """Every difference of ``candidate`` from ``live`` that a client would notice; empty when none.

    Example:
        >>> contract_changes(Contract.of(live_bundle), Contract.of(new_bundle))  # doctest: +SKIP
        ["candidate v_X drops class 'tema-rosa' of css_class_theme that the live v_Y serves"]
    """
    changes = []
    if live.task != candidate.task:
        changes.append(f"candidate {candidate.version} is trained for task {candidate.task!r}, the live "
                       f"{live.version} for {live.task!r} (feature kinds and target units differ)")
    if set(live.features) != set(candidate.features):
        changes += _removed_and_added(("feature", "features"), live, candidate,
                                      set(live.features), set(candidate.features))
    elif live.features != candidate.features:
        position = next(i for i, (a, b) in enumerate(zip(live.features, candidate.features, strict=True)) if a != b)
        changes.append(f"candidate {candidate.version} orders its features differently from the live {live.version}: "
                       f"position {position} must be {live.features[position]!r}. "
                       f"Got {candidate.features[position]!r} instead")
    changes += _removed_and_added(("class target", "class targets"), live, candidate,
                                  set(live.classes), set(candidate.classes))
    for target in sorted(set(live.classes) & set(candidate.classes)):
        changes += _removed_and_added(("class", "classes"), live, candidate, set(live.classes[target]),
                                      set(candidate.classes[target]), of=f" of {target}")
    changes += _removed_and_added(("regression target", "regression targets"), live, candidate, set(live.regression),
                                  set(candidate.regression))
    return changes
