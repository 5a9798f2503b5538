"""The serving contract: every feature and class target a candidate drops or adds is named, after
a task change and with the right number (found by `make mutation`)."""

from __future__ import annotations

from efimero.deploy.contract import Contract, contract_changes

LIVE = Contract(version="v_live", task="css", features=("hour_of_day", "is_mobile", "viewport_width"),
                classes={"css_class_theme": ("tema-claro", "tema-oscuro"), "css_class_font": ("fuente-sans",)},
                regression=("font_size_base",))


def test_a_candidate_with_other_features_and_class_targets_is_told_each_one() -> None:
    candidate = Contract(version="v_cand", task="other", features=("hour_of_day", "screen_width"),
                         classes={"css_class_theme": ("tema-claro", "tema-oscuro"), "css_class_density": ("d",)},
                         regression=("font_size_base",))
    assert contract_changes(LIVE, candidate) == [
        "candidate v_cand is trained for task 'other', the live v_live for 'css' "
        "(feature kinds and target units differ)",
        "candidate v_cand drops features 'is_mobile', 'viewport_width' that the live v_live serves",
        "candidate v_cand adds feature 'screen_width' that the live v_live does not serve",
        "candidate v_cand drops class target 'css_class_font' that the live v_live serves",
        "candidate v_cand adds class target 'css_class_density' that the live v_live does not serve",
    ]


def test_the_same_features_in_the_same_order_are_no_change() -> None:
    assert contract_changes(LIVE, Contract(version="v_cand", task="css", features=LIVE.features,
                                           classes=dict(LIVE.classes), regression=LIVE.regression)) == []


def test_several_dropped_items_are_named_in_the_plural() -> None:
    live = Contract(version="v_live", task="css", features=LIVE.features, classes=dict(LIVE.classes),
                    regression=("font_size_base", "line_height_base"))
    candidate = Contract(version="v_cand", task="css", features=LIVE.features,
                         classes={"css_class_theme": ()}, regression=())
    assert contract_changes(live, candidate) == [
        "candidate v_cand drops class target 'css_class_font' that the live v_live serves",
        "candidate v_cand drops classes 'tema-claro', 'tema-oscuro' of css_class_theme that the live v_live serves",
        "candidate v_cand drops regression targets 'font_size_base', 'line_height_base' that the live v_live serves",
    ]
    no_classes = Contract(version="v_cand", task="css", features=LIVE.features, classes={}, regression=LIVE.regression)
    assert contract_changes(LIVE, no_classes) == [
        "candidate v_cand drops class targets 'css_class_font', 'css_class_theme' that the live v_live serves"]
