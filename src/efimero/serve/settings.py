"""Settings of the prediction service (built by the CLI, overridden in tests).

They come from the same layers as every setting (:mod:`efimero._settings`): built-in defaults <
``EFIMERO_SERVE_<FIELD>`` variables (``EFIMERO_SERVE_DB_URL``, ``EFIMERO_SERVE_RATE_LIMIT``…) <
``efimero serve``'s flags; the service has no YAML file. The variables are also how `efimero
serve` hands its settings to uvicorn's worker processes (:meth:`ServeSettings.to_environ`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from efimero._settings import ENV_NONE, Settings, load
from efimero.store import DEFAULT_URL, PEPPER_ENV, default_pepper_file


class ServeSettings(Settings):
    """Everything the service reads at start; variables ``EFIMERO_SERVE_<FIELD>`` (``EFIMERO_SERVE_MODELS_DIR``)."""

    model_config = SettingsConfigDict(env_prefix="EFIMERO_SERVE_")

    models_dir: Path = Field(Path("models"), description="Registry whose current version is served")
    db_url: str = Field(DEFAULT_URL, description="SQLAlchemy URL of the interaction store")
    poll_interval_s: float = Field(1.0, gt=0, description="How often the live pointer is checked")
    verify_interval_s: float = Field(
        60.0, gt=0, description="How often the served version's files are re-checked against its manifest"
    )
    max_body_bytes: int = Field(65_536, ge=1024, description="Largest accepted request body (batch excepted)")
    max_batch: int = Field(1000, ge=1, description="Most contexts per batch request")
    max_context_bytes: int = Field(
        1024, ge=512, description="Room per context in a batch body: the batch limit is max_batch times this"
    )
    commit_timeout_s: float = Field(
        5.0, gt=0, description="Longest wait for an interaction's commit before answering 503 with Retry-After"
    )
    body_timeout_s: float = Field(10.0, gt=0, description="Longest wait for the rest of a request body (then 408)")
    keep_alive_timeout_s: int = Field(5, ge=1, description="Idle keep-alive connections close after this")
    rate_limit: str | None = Field(
        None, description="Per-client limit on the public routes, e.g. '100/minute' (off when unset)"
    )
    rate_limit_storage: str = Field(
        "memory://",
        description="Where rate-limit counters live: memory:// (per worker) or redis://host:port/db (shared)",
    )
    feature_store: str | None = Field(
        None, description="Keep the visitors' history server-side, per hashed visitor id: redis://host:port/db "
        "(options ?ttl_days=180&timeout_ms=50&breaker_s=5). Its history wins over the client's; unset, the "
        "client's (localStorage) is the only one",
    )
    user_id_pepper_file: Path | None = Field(
        None, description=f"File holding the user-id pepper (${PEPPER_ENV} wins; created if missing). "
        "Default: user_id_pepper beside a SQLite store, else data/user_id_pepper",
    )

    monitor_interval_s: float = Field(
        60.0, ge=0, description="Seconds between rounds of the monitoring loop (the check of `efimero monitor` on "
        "the last complete window, alerts recorded and sent); 0 turns it off",
    )
    monitor_clock: Literal["wall", "store"] = Field(
        "wall", description="Time of the monitoring windows: the wall clock, or the newest visit in the store "
        "(simulated traffic)",
    )
    retraining_config: Path | None = Field(
        None, description="retraining.yaml holding the monitoring rules. Default: the config directory's, when present",
    )

    usecases: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Use cases whose production version is also served at /v1/usecases/<key>/predict; "
        "a variable lists them with commas (EFIMERO_SERVE_USECASES=breast_cancer,wine)",
    )
    usecases_models_dir: Path = Field(
        Path("models/usecases"), description="Use-case registry the use cases are served from",
    )
    usecase_max_batch: int = Field(1000, ge=1, description="Most rows per /v1/usecases/<key>/predict/batch request")

    @field_validator("usecases", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(key.strip() for key in value.split(",") if key.strip())
        return value

    @field_validator("rate_limit")
    @classmethod
    def _parseable_rate_limit(cls, value: str | None) -> str | None:
        if value is not None:
            from limits import parse

            try:
                parse(value)
            except ValueError as exc:
                raise ValueError(
                    f"rate_limit must read like '100/minute' or '10 per second'. Got {value!r} instead."
                ) from exc
        return value

    @field_validator("feature_store")
    @classmethod
    def _parseable_feature_store(cls, value: str | None) -> str | None:
        if value is not None:
            from efimero.serve.feature_store import FeatureStoreOptions

            FeatureStoreOptions.parse(value)
        return value

    @property
    def pepper_file(self) -> Path:
        return self.user_id_pepper_file or default_pepper_file(self.db_url)

    @property
    def max_batch_body_bytes(self) -> int:
        """The batch route's body limit: room for ``max_batch`` contexts of any valid content."""
        return self.max_batch * self.max_context_bytes + 1024

    def to_environ(self) -> dict[str, str]:
        """The ``EFIMERO_SERVE_*`` variables that make :func:`load_serve_settings` in another process equal these.

        `efimero serve` sets them before uvicorn starts its workers, which inherit the environment.
        """
        prefix = self.model_config.get("env_prefix") or ""
        return {f"{prefix}{name}".upper(): _environ_value(value)
                for name, value in self.model_dump(mode="json").items()}


def _environ_value(value: Any) -> str:
    """A setting as its variable holds it: ``null`` for None, a list with commas (use-case keys hold none)."""
    if value is None:
        return ENV_NONE
    return ",".join(value) if isinstance(value, list) else str(value)


def load_serve_settings(overrides: Mapping[str, Any] | None = None) -> ServeSettings:
    """The service's settings: built-in defaults < ``EFIMERO_SERVE_*`` variables < ``overrides`` (the flags given).

    Raises:
        ConfigError: a value is invalid; the message names the variable or the setting it came from.

    Example:
        >>> load_serve_settings({"db_url": "sqlite:///data/efimero.db"}).db_url
        'sqlite:///data/efimero.db'
    """
    return load(ServeSettings, overrides=overrides)
