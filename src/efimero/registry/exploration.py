"""How a deployment explores: ``exploration.json`` beside ``current``.

A deployment that always serves its model's best guess learns nothing about the styles it
never shows, and no log of it can say how another model would have done. Exploring serves,
now and then, another label of a class slot, and logs the probability with which each label
was chosen (its propensity), which is what off-policy evaluation needs.

The file holds the policy's settings; :mod:`efimero.bandit.explore` applies them. Without
the file the deployment serves greedily (every label with propensity 1), as before.
The file is per registry, so per deployment target: production can explore at 5 % while
staging does not. Servers follow it at their next poll, like the traffic split.

Guardrails are declared, not coded: for visitors whose context matches ``when`` (say
``prefers_contrast: more``), a slot never serves a label ranked below the greedy one (a
lower contrast). A holdout share of visitors, by a stable hash, is never explored at all.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from efimero._io import read_model, write_or_remove_model

EXPLORATION = "exploration.json"
ExplorationMode = Literal["greedy", "epsilon_greedy", "softmax"]


class Guardrail(BaseModel):
    """Never explore a slot toward a lower-ranked label for visitors whose context matches ``when``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    slot: str = Field(..., min_length=1, description="The class target it guards, e.g. css_class_theme")
    when: dict[str, str | bool | int | float] = Field(
        ..., min_length=1, description="Context fields and the values that turn it on, e.g. {prefers_contrast: more}"
    )
    rank: dict[str, int] = Field(
        ..., min_length=1, description="Label → rank (higher: more of what the visitor asked for); "
        "exploration never serves a label ranked below the greedy one. Unlisted labels rank lowest.",
    )

    def applies(self, context: dict[str, object]) -> bool:
        return all(context.get(field) == value for field, value in self.when.items())


class ExplorationPolicy(BaseModel):
    """The exploration settings of one deployment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: ExplorationMode = Field(
        "greedy", description="greedy: always the model's label; epsilon_greedy: a uniform label with probability "
        "epsilon; softmax: a label drawn from the model's probabilities sharpened by 1/temperature",
    )
    epsilon: float = Field(0.1, ge=0, le=1, allow_inf_nan=False, description="Share of explored slot choices")
    temperature: float = Field(1.0, gt=0, le=100, allow_inf_nan=False, description="Softmax temperature")
    holdout_share: float = Field(
        0.05, ge=0, lt=1, allow_inf_nan=False, description="Share of visitors never explored (a stable hash)"
    )
    salt: str = Field(..., min_length=1, max_length=64, description="Seeds the draws and the holdout")
    guardrails: tuple[Guardrail, ...] = ()
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @model_validator(mode="after")
    def _one_guardrail_per_slot_and_context(self) -> ExplorationPolicy:
        keys = [(rail.slot, json.dumps(rail.when, sort_keys=True)) for rail in self.guardrails]
        if len(set(keys)) != len(keys):
            raise ValueError("guardrails must not repeat a (slot, when) pair.")
        return self

    @property
    def policy_id(self) -> str:
        """A short digest of everything that shapes the choices: logged with each decision."""
        settings = self.model_dump(mode="json", exclude={"updated_at"})
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def read_exploration(root: Path) -> ExplorationPolicy | None:
    """The exploration policy of the registry at ``root``, or None when it serves greedily.

    Raises:
        RegistryFormatError: the file exists but is not a valid policy (named, with the field).
    """
    return read_model(root / EXPLORATION, ExplorationPolicy, "a valid exploration policy")


def write_exploration(root: Path, policy: ExplorationPolicy | None) -> None:
    """Replace the policy atomically; None removes it (greedy serving)."""
    write_or_remove_model(root / EXPLORATION, policy)
