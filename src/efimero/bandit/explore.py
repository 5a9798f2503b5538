"""Which label each class slot serves, and the probability with which the policy chose it.

The model gives, per slot, a probability for each label. The deployment's
:class:`~efimero.registry.exploration.ExplorationPolicy` turns that into the distribution the
served label is drawn from:

* greedy (no policy, or a held-out visitor): the model's best label with probability 1;
* epsilon-greedy: ``(1 - ε)`` on the best label plus ``ε`` spread evenly over the allowed labels,
  so every allowed label keeps a propensity of at least ``ε / k`` (Vowpal Wabbit's ``--cb_explore``);
* softmax: the model's probabilities raised to ``1 / temperature`` and renormalised.

A guardrail removes the labels ranked below the greedy one before either rule applies, so a
visitor who asked for more contrast is never explored toward less. Variables (sizes, colours,
animation durations) are never explored: only class labels are.

The draw is a hash of the policy's salt, the decision's id and the slot, so it is the same in
every worker and can be replayed from the log; the propensity of the served label is logged
beside it and is exactly what this module computes for it, which off-policy evaluation of a
candidate (:mod:`efimero.bandit.evaluate`) relies on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from efimero.bandit.policy import slot_distribution
from efimero.registry.exploration import ExplorationPolicy
from efimero.registry.traffic import stable_unit

GREEDY_POLICY_ID = "greedy"


@dataclass(frozen=True)
class SlotChoice:
    """The label served in one slot, the probability it had, and the model's own best label."""

    label: str
    propensity: float
    greedy: str


@dataclass(frozen=True)
class Decision:
    """The served labels of one prediction, as logged for off-policy evaluation."""

    slots: dict[str, SlotChoice]
    policy_id: str
    mode: str
    holdout: bool

    @property
    def propensity(self) -> float:
        """Probability of the whole served combination: the slots are drawn independently."""
        return math.prod(choice.propensity for choice in self.slots.values())

    @property
    def explored(self) -> bool:
        return any(choice.label != choice.greedy for choice in self.slots.values())

    def to_record(self) -> dict[str, Any]:
        """The JSON stored with the prediction (``predictions.decisions``)."""
        return {
            "policy_id": self.policy_id, "mode": self.mode, "holdout": self.holdout,
            "propensity": self.propensity,
            "slots": {slot: {"label": c.label, "propensity": c.propensity, "greedy": c.greedy}
                      for slot, c in self.slots.items()},
        }


def in_holdout(policy: ExplorationPolicy, visitor_key: str) -> bool:
    """Whether this visitor is one of the ``holdout_share`` never explored (stable per visitor)."""
    return stable_unit(policy.salt, "holdout", visitor_key) < policy.holdout_share


def decide(
    probabilities: Mapping[str, Mapping[str, float]], policy: ExplorationPolicy | None, *,
    context: Mapping[str, Any], visitor_key: str, decision_key: str,
) -> Decision:
    """Choose the served label of every slot of one prediction.

    Args:
        probabilities: per class slot (target name), the model's probability of each label.
        policy: the deployment's exploration policy; None serves greedily.
        context: the request's fields, which the guardrails' ``when`` match against.
        visitor_key: stable per visitor: decides the holdout.
        decision_key: unique per prediction (its id): seeds the draws.
    """
    holdout = policy is not None and in_holdout(policy, visitor_key)
    applied = None if holdout else policy
    slots = {}
    for slot, model_probabilities in probabilities.items():
        distribution, greedy = slot_distribution(slot, model_probabilities, applied, context)
        label = greedy if applied is None else _draw(distribution, stable_unit(applied.salt, decision_key, slot))
        slots[slot] = SlotChoice(label=label, propensity=distribution[label], greedy=greedy)
    if policy is None:
        return Decision(slots, GREEDY_POLICY_ID, "greedy", holdout=False)
    return Decision(slots, policy.policy_id, policy.mode, holdout=holdout)


def _draw(distribution: Mapping[str, float], unit: float) -> str:
    """The label whose cumulative range holds ``unit``; rounding never falls off the end."""
    edge = 0.0
    chosen = ""
    for label, probability in distribution.items():
        if probability <= 0:
            continue
        chosen = label
        edge += probability
        if unit < edge:
            break
    return chosen
