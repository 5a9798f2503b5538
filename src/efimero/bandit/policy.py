"""A serving policy's distribution over one slot's labels: shared by serving and evaluation.

Serving draws the served label from it (:mod:`efimero.bandit.explore`); off-policy evaluation
asks it how likely a candidate would have been to serve the label that was logged
(:mod:`efimero.bandit.evaluate`). One function for both means the propensities a candidate is
judged by are the ones it will serve with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from efimero.registry.exploration import ExplorationPolicy

_FLOOR = 1e-12
"""Smallest model probability the softmax takes a log of."""


def greedy_label(probabilities: Mapping[str, float]) -> str:
    """The most probable label; ties go to the first, as ``argmax`` does when serving."""
    labels = list(probabilities)
    return labels[int(np.argmax([probabilities[label] for label in labels]))]


def allowed_labels(
    slot: str, labels: list[str], greedy: str, policy: ExplorationPolicy, context: Mapping[str, Any]
) -> list[str]:
    """The labels exploration may serve: those no guardrail of this slot and context ranks below ``greedy``."""
    allowed = labels
    for rail in policy.guardrails:
        if rail.slot == slot and rail.applies(dict(context)):
            floor = rail.rank.get(greedy, -1)
            allowed = [label for label in allowed if rail.rank.get(label, -1) >= floor]
    return allowed


def slot_distribution(
    slot: str, probabilities: Mapping[str, float], policy: ExplorationPolicy | None, context: Mapping[str, Any]
) -> tuple[dict[str, float], str]:
    """The probability of serving each label of ``slot`` (every label, 0 where excluded) and the greedy label."""
    greedy = greedy_label(probabilities)
    labels = list(probabilities)
    distribution = dict.fromkeys(labels, 0.0)
    if policy is None or policy.mode == "greedy":
        distribution[greedy] = 1.0
        return distribution, greedy
    allowed = allowed_labels(slot, labels, greedy, policy, context)
    if policy.mode == "epsilon_greedy":
        for label in allowed:
            distribution[label] = policy.epsilon / len(allowed)
        distribution[greedy] += 1.0 - policy.epsilon
    else:  # softmax over the allowed labels of log-probabilities / temperature, stable by subtracting the max
        logits = np.log(np.maximum([probabilities[label] for label in allowed], _FLOOR)) / policy.temperature
        weights = np.exp(logits - logits.max())
        distribution.update(zip(allowed, (weights / weights.sum()).tolist(), strict=True))
    return distribution, greedy
