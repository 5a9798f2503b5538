"""`--feature-store URL`, EFIMERO_SERVE_FEATURE_STORE: parsed, checked, handed to the workers (no Redis needed)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from efimero.cli.main import app
from efimero.errors import ConfigError
from efimero.serve.app import app_from_env
from efimero.serve.feature_store import FeatureStore, FeatureStoreOptions, history_from
from efimero.serve.settings import load_serve_settings


def test_the_url_options_have_defaults_and_the_rest_goes_to_redis() -> None:
    options = FeatureStoreOptions.parse("redis://127.0.0.1:6379/0")
    assert (options.url, options.ttl_s, options.timeout_s, options.breaker_s) == (
        "redis://127.0.0.1:6379/0", 180 * 86_400, 0.05, 5.0)
    options = FeatureStoreOptions.parse("rediss://:s3cret@cache:6380/2?ttl_days=30&timeout_ms=20&breaker_s=1"
                                        "&health_check_interval=10")
    assert (options.ttl_s, options.timeout_s, options.breaker_s) == (30 * 86_400, 0.02, 1.0)
    assert options.url == "rediss://:s3cret@cache:6380/2?health_check_interval=10"
    assert options.shown == "rediss://:***@cache:6380/2?health_check_interval=10"
    assert "s3cret" not in FeatureStore(options, CollectorRegistry()).status()


@pytest.mark.parametrize(("url", "message"), [
    ("http://127.0.0.1:6379/0", "must be a redis://, rediss:// or unix:// URL"),
    ("127.0.0.1:6379", "must be a redis://, rediss:// or unix:// URL"),
    ("redis://h/0?ttl_days=0", "ttl_days must be a number in"),
    ("redis://h/0?timeout_ms=fast", "timeout_ms must be a number in [1, 10000]. Got 'fast' instead."),
    ("redis://h/0?socket_timeout=1", "sets its timeouts with timeout_ms"),
])
def test_a_bad_url_is_a_config_error_naming_the_setting(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_serve_settings({"feature_store": url})
    assert "feature_store" in str(error.value) and message in str(error.value)


def test_a_password_is_not_repeated_in_the_error() -> None:
    with pytest.raises(ConfigError) as error:
        load_serve_settings({"feature_store": "http://:s3cret@h/0"})
    assert "s3cret" not in str(error.value)


def test_the_variable_sets_it_and_it_is_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_serve_settings().feature_store is None
    monkeypatch.setenv("EFIMERO_SERVE_FEATURE_STORE", "redis://127.0.0.1:6379/0")
    assert load_serve_settings().feature_store == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(("fields", "expected"), [
    ({"visits": "3", "avg_session_duration_s": "98.333", "total_interactions": "21", "first_visit": "2026-11-20"},
     {"visits": 3, "avg_session_duration_s": 98.333, "total_interactions": 21, "first_visit": "2026-11-20"}),
    ({"visits": "99999999999", "avg_session_duration_s": "1e9", "total_interactions": "5"},  # clamped to the bounds
     {"visits": 10_000_000, "avg_session_duration_s": 86_400.0, "total_interactions": 5, "first_visit": None}),
    ({"visits": "-1"}, None),
    ({"visits": "1", "avg_session_duration_s": "nan"}, None),
    ({"visits": "1", "first_visit": "1999-12-31"}, None),
    ({"visits": "many"}, None),
])
def test_a_stored_history_is_read_within_the_client_bounds(fields: dict[str, str], expected: Any) -> None:
    history = history_from(fields)
    assert (history.model_dump(mode="json") if history else None) == expected


@pytest.fixture
def restored_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_the_flag_reaches_the_workers(
    tiny_registry: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restored_environ: None,
) -> None:
    monkeypatch.setattr(uvicorn, "run", lambda target, **kwargs: None)
    url = "redis://127.0.0.1:6379/3?ttl_days=30"
    result = CliRunner().invoke(app, ["serve", "--models", str(tiny_registry[0]), "--db",
                                      f"sqlite:///{tmp_path}/store.db", "--feature-store", url])
    assert result.exit_code == 0, result.output
    assert app_from_env().state.settings.feature_store == url
    result = CliRunner().invoke(app, ["serve", "--models", str(tiny_registry[0]), "--feature-store", "localhost"])
    assert result.exit_code == 1 and "feature_store must be a redis://" in " ".join(result.output.split())
