from __future__ import annotations

import pytest

from pathlib import Path

from efimero.config import TrainingConfig, load_training_config
from efimero.errors import ConfigError

SHIPPED = Path(__file__).parents[1] / "config" / "training.yaml"


def test_shipped_config_matches_the_guide_defaults() -> None:
    cfg = load_training_config(SHIPPED)
    classifier = cfg.training.models.classifier
    assert (classifier.learning_rate, classifier.max_depth, classifier.n_estimators,
            classifier.reg_alpha, classifier.reg_lambda) == (0.1, 6, 100, 0.1, 1.0)
    assert cfg.registry.max_versions_to_keep == 10
    assert cfg == TrainingConfig()


def test_overrides_win_over_the_file() -> None:
    cfg = load_training_config(SHIPPED, overrides={"training": {"data": {"cv_folds": 3}}})
    assert cfg.training.data.cv_folds == 3 and cfg.training.data.test_size == 0.2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("training:\n  data:\n    test_sise: 0.3\n", "training.data.test_sise: Extra inputs are not permitted"),
        ("training:\n  data:\n    test_size: 1.5\n", "training.data.test_size"),
        ("training:\n  tuning:\n    grid: {depth: [1]}\n", "grid may only name"),
        ("training: [1, 2\n", "is not valid YAML"),
        ("- 1\n", "top level must be a mapping"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "training.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="training.yaml") as info:
        load_training_config(path)
    assert message in str(info.value)


def test_missing_explicit_file_is_an_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_training_config(tmp_path / "nope.yaml")
