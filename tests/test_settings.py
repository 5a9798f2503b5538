"""Where settings come from: defaults < YAML file < EFIMERO_* environment < CLI flags, and where files and paths are."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from typer.testing import CliRunner

from efimero._settings import CONFIG_DIR_ENV, Settings
from efimero.cli.main import app
from efimero.config import (
    EnvironmentsConfig,
    RetrainingConfig,
    TrainingConfig,
    load_environments_config,
    load_retraining_config,
    load_training_config,
)
from efimero.errors import ConfigError
from efimero.serve import ServeSettings
from efimero.serve.app import app_from_env
from efimero.serve.settings import load_serve_settings

Loader = Callable[..., Any]


def nested(keys: tuple[str, ...], value: Any) -> dict[str, Any]:
    for key in reversed(keys):
        value = {key: value}
    return value


def get(config: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        config = config[key] if isinstance(config, dict) else getattr(config, key)
    return config


def write_config(directory: Path, name: str, content: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(yaml.safe_dump(content), encoding="utf-8")
    return path


# -- one key per file through every layer ---------------------------------------------------------

LAYERS = [
    # loader, file, key, default, YAML value, variable and its value, CLI value
    (load_training_config, "training.yaml", ("training", "data", "cv_folds"), 5, 4,
     ("EFIMERO_TRAINING__DATA__CV_FOLDS", "3"), 2),
    (load_training_config, "training.yaml", ("validation", "min_accuracy"), 0.7, 0.6,
     ("EFIMERO_VALIDATION__MIN_ACCURACY", "0.5"), 0.4),
    (load_retraining_config, "retraining.yaml", ("retraining", "deployment", "target"), "staging", "development",
     ("EFIMERO_RETRAINING__DEPLOYMENT__TARGET", "production"), "canary"),
    (load_environments_config, "environments.yaml", ("environments", "production", "max_versions_to_keep"), 10, 6,
     ("EFIMERO_ENVIRONMENTS__PRODUCTION__MAX_VERSIONS_TO_KEEP", "4"), 3),
]


@pytest.mark.parametrize(("load", "name", "key", "default", "in_yaml", "variable", "flag"), LAYERS,
                         ids=[".".join(layer[2]) for layer in LAYERS])
def test_each_layer_beats_the_one_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, load: Loader, name: str, key: tuple[str, ...],
    default: Any, in_yaml: Any, variable: tuple[str, str], flag: Any,
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config here
    assert get(load(), key) == default
    content = nested(key, in_yaml)
    if name == "environments.yaml":  # an environment the file writes needs its model_dir
        content["environments"]["production"]["model_dir"] = "models/prod"
    path = write_config(tmp_path / "proj" / "config", name, content)
    assert get(load(path), key) == in_yaml
    monkeypatch.setenv(*variable)
    assert get(load(path), key) == type(default)(variable[1])
    assert get(load(path, overrides=nested(key, flag)), key) == flag


def test_a_variable_changes_one_key_and_keeps_the_rest_of_its_section(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path / "config", "training.yaml", {"training": {"data": {"cv_folds": 4, "test_size": 0.3}}})
    monkeypatch.setenv("EFIMERO_TRAINING__DATA__CV_FOLDS", "3")
    data = load_training_config(path, overrides={"training": {"data": {"random_state": 7}}}).training.data
    assert (data.cv_folds, data.test_size, data.random_state) == (3, 0.3, 7)


def test_a_variable_amends_the_built_in_environments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EFIMERO_ENVIRONMENTS__PRODUCTION__MODEL_DIR", "/srv/prod")
    environments = load_environments_config().environments
    assert sorted(environments) == ["development", "production", "staging"]
    assert environments["production"].model_dir == Path("/srv/prod")
    assert environments["production"].validation_required  # production's built-in value, not the class default


def test_lists_are_json_and_null_clears_an_optional_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EFIMERO_TRAINING__TUNING__GRID", '{"max_depth": [3, 5]}')
    monkeypatch.setenv("EFIMERO_TRAINING__MODELS__CLASSIFIER__EARLY_STOPPING_ROUNDS", "null")
    training = load_training_config().training
    assert training.tuning.grid["max_depth"] == [3, 5] and training.tuning.grid["n_estimators"] == [100, 200]
    assert training.models.classifier.early_stopping_rounds is None


def test_the_files_sections_cannot_collide() -> None:
    """A variable belongs to one model: the top-level sections of the files and the service's prefix differ."""
    sections = [set(model.model_fields) for model in (TrainingConfig, EnvironmentsConfig, RetrainingConfig)]
    assert sum(len(s) for s in sections) == len(set().union(*sections))
    assert not any(section.startswith(("serve", "config_dir", "user_id_pepper")) for section in set().union(*sections))
    assert ServeSettings.model_config["env_prefix"] == "EFIMERO_SERVE_"
    assert all(issubclass(model, Settings) for model in (TrainingConfig, EnvironmentsConfig, RetrainingConfig,
                                                          ServeSettings))


# -- errors name the variable ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("EFIMERO_TRAINING__DATA__CV_FOLDS", "abc",
         "environment variable EFIMERO_TRAINING__DATA__CV_FOLDS='abc' (read as training.data.cv_folds): "
         "Input should be a valid integer"),
        ("EFIMERO_TRAINING__DATA__CV_FOLDS", "1", "EFIMERO_TRAINING__DATA__CV_FOLDS='1' (read as training.data): "
         "Value error, cv_folds must be 0 (off) or at least 2"),
        ("EFIMERO_TRAINING__DATA__CV_FOLD", "3", "EFIMERO_TRAINING__DATA__CV_FOLD='3' (read as training.data.cv_fold): "
         "Extra inputs are not permitted"),
        ("EFIMERO_VALIDATION__MIN_ACCURACY", "2", "EFIMERO_VALIDATION__MIN_ACCURACY='2' (read as "
         "validation.min_accuracy): Input should be less than or equal to 1"),
        ("EFIMERO_TRAINING__TUNING__GRID__MAX_DEPTH", "[4,", "EFIMERO_TRAINING__TUNING__GRID__MAX_DEPTH='[4,' "
         "(read as training.tuning.grid.max_depth): Input should be a valid list"),
        ("EFIMERO_TRAINING", "{n_jobs: 1}", "environment variable EFIMERO_TRAINING must be JSON, as its key holds "
         "a list or a mapping (e.g. '[4, 6]' or '{\"max_depth\": [4, 6]}'). Got '{n_jobs: 1}' instead."),
    ],
)
def test_an_invalid_variable_is_named_with_its_value_and_the_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    path = write_config(tmp_path / "config", "training.yaml", {"training": {"n_jobs": 1}})
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_training_config(path)
    assert message in str(info.value)
    assert not str(info.value).startswith(str(path))  # the file is not to blame


def test_an_invalid_serve_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EFIMERO_SERVE_POLL_INTERVAL_S", "-1")
    with pytest.raises(ConfigError, match=r"EFIMERO_SERVE_POLL_INTERVAL_S='-1' \(read as poll_interval_s\): "
                                          "Input should be greater than 0"):
        load_serve_settings()


def test_a_file_error_still_names_the_file_beside_a_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path / "config", "training.yaml", {"training": {"data": {"test_size": 2}}})
    monkeypatch.setenv("EFIMERO_TRAINING__N_JOBS", "many")
    with pytest.raises(ConfigError) as info:
        load_training_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid configuration: ")
    assert "training.data.test_size: Input should be less than 1" in message
    assert "EFIMERO_TRAINING__N_JOBS='many'" in message


# -- where the files are, and what relative paths in them mean ----------------------------------------

def test_the_config_directory_is_the_named_file_else_efimero_config_dir_else_dot_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = write_config(tmp_path / "config", "training.yaml", {"training": {"n_jobs": 1}})
    elsewhere = write_config(tmp_path / "other" / "config", "training.yaml", {"training": {"n_jobs": 2}})
    named = write_config(tmp_path / "named", "training.yaml", {"training": {"n_jobs": 3}})
    monkeypatch.chdir(local.parents[1])
    assert load_training_config().training.n_jobs == 1
    monkeypatch.setenv(CONFIG_DIR_ENV, str(elsewhere.parent))
    assert load_training_config().training.n_jobs == 2
    assert load_training_config(named).training.n_jobs == 3
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"\$EFIMERO_CONFIG_DIR must name a directory of config files\. Got '.*"):
        load_training_config()


def test_relative_paths_in_a_file_are_read_from_the_project_root(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "proj"
    config = project / "config"
    training = write_config(config, "training.yaml", {"registry": {"model_dir": "models"}})
    environments = write_config(config, "environments.yaml", {"environments": {
        "staging": {"model_dir": "models/staging"}, "production": {"model_dir": "/srv/prod"}}})
    retraining = write_config(config, "retraining.yaml", {"retraining": {
        "models_dir": "models", "data_collection": {"db_url": "sqlite:///data/efimero.db", "output_dir": "data/new"}}})
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")

    assert load_training_config(training).registry.model_dir == project / "models"
    table = load_environments_config(environments).environments
    assert table["staging"].model_dir == project / "models" / "staging"
    assert table["production"].model_dir == Path("/srv/prod")  # absolute stays
    settings = load_retraining_config(retraining).retraining
    assert settings.models_dir == project / "models"
    assert settings.data_collection.db_url == f"sqlite:///{project}/data/efimero.db"
    assert settings.data_collection.output_dir == project / "data" / "new"

    # Through $EFIMERO_CONFIG_DIR too; built-in defaults, variables and flags stay relative to the working directory.
    monkeypatch.setenv(CONFIG_DIR_ENV, str(config))
    assert load_retraining_config().retraining.models_dir == project / "models"
    assert load_training_config(overrides={"registry": {"model_dir": "mine"}}).registry.model_dir == Path("mine")
    monkeypatch.setenv("EFIMERO_REGISTRY__MODEL_DIR", "theirs")
    assert load_training_config().registry.model_dir == Path("theirs")
    monkeypatch.delenv(CONFIG_DIR_ENV)
    assert load_retraining_config().retraining.models_dir == Path("models")


@pytest.mark.parametrize(("url", "read_as"), [
    ("sqlite:///data/efimero.db?timeout=5", "sqlite:///{root}/data/efimero.db?timeout=5"),
    ("sqlite+pysqlite:///store.db", "sqlite+pysqlite:///{root}/store.db"),
    ("sqlite:////var/lib/efimero.db", "sqlite:////var/lib/efimero.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("postgresql://efimero@db/efimero", "postgresql://efimero@db/efimero"),
])
def test_only_a_relative_sqlite_file_in_a_db_url_is_resolved(tmp_path: Path, url: str, read_as: str) -> None:
    path = write_config(tmp_path / "config", "retraining.yaml", {"retraining": {"data_collection": {"db_url": url}}})
    assert load_retraining_config(path).retraining.data_collection.db_url == read_as.format(root=tmp_path)


def test_train_from_another_directory_writes_into_the_projects_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_csv: Path
) -> None:
    few = {"n_estimators": 5, "max_depth": 3}
    config = write_config(tmp_path / "proj" / "config", "training.yaml", {
        "training": {"data": {"cv_folds": 0}, "models": {"classifier": few, "regressor": few}, "n_jobs": 1},
        "registry": {"model_dir": "models"}})
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    result = CliRunner().invoke(app, ["train", "--data", str(small_csv), "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "proj" / "models" / "current").exists()
    assert not any((tmp_path / "elsewhere").iterdir())


# -- the service: flags > EFIMERO_SERVE_* > defaults, handed to the workers ----------------------------

@pytest.fixture
def restored_environ() -> Iterator[None]:
    """`efimero serve` writes its settings into os.environ for its workers; put it back afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_serve_settings_round_trip_through_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = ServeSettings(models_dir=tmp_path / "m", db_url="postgresql://u@h/db", poll_interval_s=0.25,
                             max_batch=7, rate_limit="10/second", user_id_pepper_file=tmp_path / "pepper")
    for name, value in settings.to_environ().items():
        monkeypatch.setenv(name, value)
    assert load_serve_settings() == settings
    unset = ServeSettings(rate_limit=None).to_environ()["EFIMERO_SERVE_RATE_LIMIT"]
    monkeypatch.setenv("EFIMERO_SERVE_RATE_LIMIT", unset)
    assert load_serve_settings().rate_limit is None  # unset travels too


def test_serve_flags_beat_variables_and_reach_the_workers(
    tiny_registry: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restored_environ: None,
) -> None:
    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kwargs: runs.append({"target": target, **kwargs}))
    monkeypatch.setenv("EFIMERO_SERVE_POLL_INTERVAL_S", "0.5")  # no flag: the variable wins over the default
    monkeypatch.setenv("EFIMERO_SERVE_KEEP_ALIVE_TIMEOUT_S", "9")
    monkeypatch.setenv("EFIMERO_SERVE_DB_URL", "sqlite:///nowhere/never.db")  # the flag wins
    monkeypatch.setenv("EFIMERO_SERVE_RATE_LIMIT", "5/minute")
    db_url = f"sqlite:///{tmp_path}/store.db"
    result = CliRunner().invoke(app, ["serve", "--models", str(tiny_registry[0]), "--db", db_url,
                                      "--rate-limit", "100/minute", "--pepper-file", str(tmp_path / "pepper")])
    assert result.exit_code == 0, result.output
    assert runs and runs[0]["timeout_keep_alive"] == 9

    worker = app_from_env().state.settings  # what a uvicorn worker process builds from the inherited environment
    assert worker == ServeSettings(models_dir=tiny_registry[0], db_url=db_url, poll_interval_s=0.5,
                                   keep_alive_timeout_s=9, rate_limit="100/minute",
                                   user_id_pepper_file=tmp_path / "pepper")


def test_an_invalid_serve_flag_is_a_config_error(tiny_registry: tuple[Path, list[str]], restored_environ: None) -> None:
    result = CliRunner().invoke(app, ["serve", "--models", str(tiny_registry[0]), "--rate-limit", "often"])
    assert result.exit_code == 1
    assert "invalid configuration: rate_limit: Value error, rate_limit must read like '100/minute'" in " ".join(
        result.output.split())
