from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from efimero.config import TrainingConfig, load_environments_config, load_retraining_config, load_training_config
from efimero.errors import ConfigError, ConfigKeyIgnoredWarning

SHIPPED = Path(__file__).parents[1] / "config" / "training.yaml"


def test_shipped_config_matches_the_guide_defaults() -> None:
    cfg = load_training_config(SHIPPED)
    classifier = cfg.training.models.classifier
    assert (classifier.learning_rate, classifier.max_depth, classifier.n_estimators,
            classifier.reg_alpha, classifier.reg_lambda) == (0.1, 6, 100, 0.1, 1.0)
    assert cfg.registry.max_versions_to_keep == 10
    assert cfg.registry.model_dir == SHIPPED.parents[1] / "models"  # the project's, from any working directory
    assert cfg.training.tuning.storage == f"sqlite:///{SHIPPED.parents[1] / 'data' / 'efimero.db'}"
    paths = {"registry": {"model_dir"}, "training": {"tuning": {"storage"}}}  # resolved against the project
    assert cfg.model_dump(exclude=paths) == TrainingConfig().model_dump(exclude=paths)


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


# -- The files printed in the guides (tests/assets/guide_config/, copied verbatim) -------------
GUIDE = Path(__file__).parent / "assets" / "guide_config"
PROJECT = Path(__file__).parents[1] / "config"


def _ignored(record: list[warnings.WarningMessage], path: Path) -> list[str]:
    """Dotted keys of the ConfigKeyIgnoredWarnings in ``record``, each checked to name ``path``."""
    found = [w for w in record if issubclass(w.category, ConfigKeyIgnoredWarning)]
    for w in found:
        message = w.message
        assert isinstance(message, ConfigKeyIgnoredWarning)
        assert message.path == str(path) and str(message).startswith(f"{path}: {message.key} ")
        assert w.filename == __file__  # points at the line that loaded the file
    return [w.message.key for w in found]  # type: ignore[union-attr]


def test_guide_training_yaml_loads_with_its_values_and_warns_per_ignored_key() -> None:
    path = GUIDE / "training.yaml"
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        cfg = load_training_config(path)
    assert _ignored(record, path) == [
        "training.data.size", "training.preprocessing.feature_selection",
        "training.output.backup_models", "training.output.export_metrics",
    ]
    training = cfg.training
    for params, objective in ((training.models.classifier, "multi:softprob"),
                              (training.models.regressor, "reg:squarederror")):
        assert (params.objective, params.learning_rate, params.max_depth, params.n_estimators,
                params.reg_alpha, params.reg_lambda) == (objective, 0.1, 6, 100, 0.1, 1.0)
    assert (training.data.validation_split, training.data.random_state) == (0.2, 42)
    assert training.preprocessing.scaling == "standard"
    # Guide spellings read as efimero's keys.
    assert training.tuning.method == "grid"  # grid_search
    assert training.data.cv_folds == 5  # training.tuning.cv_folds
    assert training.tuning.n_trials == 50  # training.tuning.n_iter
    assert cfg.registry.model_dir == GUIDE.parent / "models"  # training.output.model_dir, read from the project root


def test_guide_retraining_yaml_loads_with_its_values_and_warns_per_ignored_key() -> None:
    path = GUIDE / "retraining.yaml"
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        settings = load_retraining_config(path).retraining
    assert _ignored(record, path) == [
        "retraining.strategies.incremental.conditions.0.data_volume_trigger",
        "retraining.validation.performance_tests", "retraining.validation.quality_checks",
    ]
    triggers = settings.triggers
    assert (triggers.time_based.min_days_since_last, triggers.time_based.max_days_since_last) == (7, 30)
    assert (triggers.data_volume.min_new_samples, triggers.data_volume.collection_window_days) == (500, 7)
    assert (triggers.performance.accuracy_threshold, triggers.performance.max_drop_percentage,
            triggers.performance.monitoring_window_hours) == (0.75, 0.05, 24)
    assert (triggers.drift.feature_drift_threshold, triggers.drift.prediction_drift_threshold) == (0.20, 0.15)
    incremental, full = settings.strategies.incremental, settings.strategies.full
    assert incremental.max_days_since_last == 14  # conditions: time_since_last_days "<= 14"
    assert (incremental.parameters.min_samples, incremental.parameters.max_new_trees,
            incremental.parameters.learning_rate_factor) == (100, 20, 0.8)
    assert full.min_days_since_last == 21  # conditions: time_since_last_days ">= 21"
    assert full.on_performance_trigger and full.on_drift_trigger
    assert (full.parameters.hyperparameter_tuning, full.parameters.cv_folds, full.parameters.test_split) == (
        True, 5, 0.2)
    assert (settings.deployment.auto_deploy, settings.deployment.rollback_enabled) == (False, True)
    # deployment_strategy is efimero's strategy; monitoring_duration_hours its own key.
    assert (settings.deployment.strategy, settings.deployment.monitoring_duration_hours) == ("safe", 24)
    assert (settings.data_collection.min_session_duration,
            settings.data_collection.max_samples_per_collection) == (30000, 10000)


def test_guide_environments_yaml_loads_as_printed_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        environments = load_environments_config(GUIDE / "environments.yaml").environments
    assert sorted(environments) == ["development", "production", "staging"]
    production = environments["production"]
    assert production.model_dir == GUIDE.parent / "models" / "prod"  # relative to the project root
    assert (production.performance_threshold.latency_ms, production.performance_threshold.accuracy_min) == (50, 0.8)
    assert production.monitoring.enabled and production.monitoring.alert_threshold == 0.05
    assert environments["staging"].performance_threshold.accuracy_min == 0.7


@pytest.mark.parametrize(
    "load", [load_training_config, load_retraining_config, load_environments_config], ids=lambda f: f.__name__)
def test_project_configs_load_without_warnings(load) -> None:
    name = load.__name__.removeprefix("load_").removesuffix("_config")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load(PROJECT / f"{name}.yaml")


def _guide_with(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = (GUIDE / name).read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "old", "new", "message"),
    [
        ("training.yaml", "learning_rate: 0.1", "learning_rte: 0.1",
         "training.models.classifier.learning_rte: Extra inputs are not permitted; did you mean learning_rate?"),
        ("training.yaml", "random_state:", "Random-State:", "training.data.Random-State"),
        ("training.yaml", "n_iter:", "n_itr:", "training.tuning.n_itr: Extra inputs are not permitted; "
         "did you mean n_iter?"),
        ("training.yaml", "model_dir:", "model_dri:",
         "training.output.model_dri: not a key efimero knows; did you mean model_dir?"),
        ("training.yaml", "max_depth: 6", "max_depth: 0",
         "training.models.classifier.max_depth: Input should be greater than or equal to 1"),
        ("training.yaml", "n_iter: 50", "n_iter: 0",
         "training.tuning.n_iter (read as training.tuning.n_trials): Input should be greater than or equal to 1"),
        ("training.yaml", "cv_folds: 5", "cv_folds: 5\n  data:\n    cv_folds: 3",
         "training.tuning.cv_folds is read as training.data.cv_folds, so the two must agree"),
        ("retraining.yaml", "conditions:", "conditons:", "did you mean conditions?"),
        ("retraining.yaml", "drift_trigger: true", "drift_triger: true",
         "retraining.strategies.full.conditions.2.drift_triger: not a condition efimero knows; "
         "did you mean drift_trigger?"),
        ("retraining.yaml", '">= 21"', '"<= 21"',
         'retraining.strategies.full.conditions.1.time_since_last_days must be ">= <days>"'),
        ("retraining.yaml", "min_new_samples: 500", "min_new_sample: 500",
         "retraining.triggers.data_volume.min_new_sample: Extra inputs are not permitted"),
        ("environments.yaml", "validation_required: true", "validaton_required: true",
         "environments.staging.validaton_required: Extra inputs are not permitted; did you mean validation_required?"),
    ],
)
def test_misspelt_or_invalid_used_keys_in_guide_files_are_errors(
    tmp_path: Path, name: str, old: str, new: str, message: str
) -> None:
    load = {"training.yaml": load_training_config, "retraining.yaml": load_retraining_config,
            "environments.yaml": load_environments_config}[name]
    path = _guide_with(tmp_path, name, old, new)
    with pytest.raises(ConfigError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigKeyIgnoredWarning)
        load(path)
    assert str(info.value).startswith(f"{path}: invalid configuration: ")
    assert message in str(info.value)


def test_ignored_keys_can_be_made_errors(tmp_path: Path) -> None:
    path = tmp_path / "training.yaml"
    path.write_text("training:\n  notes: tuned by hand\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigKeyIgnoredWarning)
        with pytest.raises(ConfigKeyIgnoredWarning, match=r"training.yaml: training.notes is not a key efimero uses"):
            load_training_config(path)


def test_the_cli_shows_ignored_keys_on_stderr(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS" and not k.startswith("EFIMERO_")}
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from efimero.cli.main import app; app(prog_name='efimero')",
         "validate", "--config", str(GUIDE / "training.yaml"), "--models", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert run.returncode == 1 and "validation failed" in run.stdout  # it went on with the config
    for key in ("training.data.size", "training.preprocessing.feature_selection",
                "training.output.backup_models", "training.output.export_metrics"):
        assert f"ConfigKeyIgnoredWarning: {GUIDE / 'training.yaml'}: {key} is not a key" in run.stderr
