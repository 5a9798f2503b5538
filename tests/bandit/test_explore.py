"""Exploration: the served label's logged propensity is the probability it really had, within guardrails."""

from __future__ import annotations

from collections import Counter

import pytest

from efimero.bandit.explore import decide, in_holdout
from efimero.bandit.policy import slot_distribution
from efimero.errors import RegistryFormatError
from efimero.registry import ExplorationPolicy, Guardrail, Registry

THEMES = {"tema-claro": 0.2, "tema-oscuro": 0.7, "tema-alto-contraste": 0.1}
DENSITY = {"densidad-baja": 0.5, "densidad-media": 0.3, "densidad-alta": 0.2}
CONTRAST = Guardrail(
    slot="css_class_theme", when={"prefers_contrast": "more"},
    rank={"tema-claro": 0, "tema-oscuro": 0, "tema-alto-contraste": 1},
)
PROBABILITIES = {"css_class_theme": THEMES, "css_class_density": DENSITY}


def policy(**settings: object) -> ExplorationPolicy:
    return ExplorationPolicy.model_validate({"mode": "epsilon_greedy", "salt": "s", "holdout_share": 0.0} | settings)


def decisions(explore: ExplorationPolicy | None, n: int, **context: object):
    return [decide(PROBABILITIES, explore, context=context, visitor_key=f"v{i}", decision_key=f"p{i}")
            for i in range(n)]


def test_without_a_policy_every_slot_serves_the_models_label_with_propensity_one() -> None:
    decision = decisions(None, 1)[0]
    assert {slot: (c.label, c.propensity) for slot, c in decision.slots.items()} == {
        "css_class_theme": ("tema-oscuro", 1.0), "css_class_density": ("densidad-baja", 1.0)}
    assert decision.to_record()["policy_id"] == "greedy" and not decision.explored and decision.propensity == 1.0


def test_epsilon_greedy_logs_the_probability_each_label_had_and_draws_by_it() -> None:
    explore = policy(epsilon=0.3)
    distribution, greedy = slot_distribution("css_class_theme", THEMES, explore, {})
    assert greedy == "tema-oscuro"
    assert distribution == pytest.approx({"tema-claro": 0.1, "tema-oscuro": 0.8, "tema-alto-contraste": 0.1})
    served = decisions(explore, 6000)
    counts = Counter(d.slots["css_class_theme"].label for d in served)
    for label, probability in distribution.items():
        assert counts[label] / len(served) == pytest.approx(probability, abs=0.02)
    for d in served:
        assert d.slots["css_class_theme"].propensity == pytest.approx(distribution[d.slots["css_class_theme"].label])
        theme, density = d.slots["css_class_theme"], d.slots["css_class_density"]
        assert d.propensity == pytest.approx(theme.propensity * density.propensity)
    assert sum(d.explored for d in served) / len(served) == pytest.approx(1 - 0.8 * 0.8, abs=0.03)


def test_the_same_decision_key_draws_the_same_labels_in_any_process() -> None:
    explore = policy(epsilon=0.5)
    first = decide(PROBABILITIES, explore, context={}, visitor_key="v", decision_key="p-42")
    again = decide(PROBABILITIES, explore, context={}, visitor_key="v", decision_key="p-42")
    assert first == again


def test_softmax_at_temperature_one_serves_the_models_own_probabilities() -> None:
    distribution, _ = slot_distribution("css_class_theme", THEMES, policy(mode="softmax", temperature=1.0), {})
    assert distribution == pytest.approx(THEMES)
    sharp, _ = slot_distribution("css_class_theme", THEMES, policy(mode="softmax", temperature=0.05), {})
    assert sharp["tema-oscuro"] > 0.999


def test_a_visitor_who_asked_for_more_contrast_is_never_explored_toward_less() -> None:
    explore = policy(epsilon=1.0, guardrails=[CONTRAST])
    high_contrast_first = {"tema-claro": 0.1, "tema-oscuro": 0.1, "tema-alto-contraste": 0.8}
    distribution, _ = slot_distribution("css_class_theme", high_contrast_first, explore, {"prefers_contrast": "more"})
    assert distribution == {"tema-claro": 0.0, "tema-oscuro": 0.0, "tema-alto-contraste": 1.0}
    # From a lower-contrast best label, exploration may only go up or sideways.
    served = decisions(explore, 600, prefers_contrast="more")
    assert {d.slots["css_class_theme"].label for d in served} == set(THEMES)
    # Other visitors, and other slots, are explored as configured.
    unguarded, _ = slot_distribution("css_class_theme", high_contrast_first, explore,
                                     {"prefers_contrast": "no-preference"})
    assert unguarded == pytest.approx(dict.fromkeys(THEMES, 1 / 3))


def test_the_holdout_is_a_stable_share_of_visitors_never_explored() -> None:
    explore = policy(epsilon=1.0, holdout_share=0.2)
    held = [f"v{i}" for i in range(5000) if in_holdout(explore, f"v{i}")]
    assert len(held) / 5000 == pytest.approx(0.2, abs=0.02)
    for key in held[:200]:
        decision = decide(PROBABILITIES, explore, context={}, visitor_key=key, decision_key=f"p-{key}")
        assert decision.holdout and not decision.explored and decision.propensity == 1.0
        assert decision.to_record()["policy_id"] == explore.policy_id


def test_the_policy_is_kept_per_registry_and_a_broken_file_is_named(tmp_path) -> None:
    registry = Registry(tmp_path)
    assert registry.exploration() is None
    registry.set_exploration(policy(epsilon=0.1, guardrails=[CONTRAST]))
    stored = registry.exploration()
    assert stored == policy(epsilon=0.1, guardrails=[CONTRAST], updated_at=stored.updated_at)
    registry.set_exploration(None)
    assert registry.exploration() is None
    (tmp_path / "exploration.json").write_text('{"mode": "sometimes", "salt": "s"}')
    with pytest.raises(RegistryFormatError, match=r"exploration.json: is not a valid exploration policy \(mode:"):
        registry.exploration()


def test_settings_that_shape_the_choices_change_the_logged_policy_id() -> None:
    assert policy(epsilon=0.1).policy_id == policy(epsilon=0.1).policy_id
    assert policy(epsilon=0.1).policy_id != policy(epsilon=0.2).policy_id
    assert policy(epsilon=0.1).policy_id != policy(epsilon=0.1, salt="other").policy_id
    with pytest.raises(ValueError, match="must not repeat"):
        policy(guardrails=[CONTRAST, CONTRAST])
