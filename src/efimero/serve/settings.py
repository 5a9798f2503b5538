"""Settings of the prediction service (built by the CLI, overridden in tests)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from efimero.store import DEFAULT_URL, PEPPER_ENV, default_pepper_file


class ServeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

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
    user_id_pepper_file: Path | None = Field(
        None, description=f"File holding the user-id pepper (${PEPPER_ENV} wins; created if missing). "
        "Default: user_id_pepper beside a SQLite store, else data/user_id_pepper",
    )

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

    @property
    def pepper_file(self) -> Path:
        return self.user_id_pepper_file or default_pepper_file(self.db_url)

    @property
    def max_batch_body_bytes(self) -> int:
        """The batch route's body limit: room for ``max_batch`` contexts of any valid content."""
        return self.max_batch * self.max_context_bytes + 1024

ENV_PREFIX = "EFIMERO_SERVE_"


def settings_from_env(environ: dict[str, str]) -> ServeSettings:
    """Settings from ``EFIMERO_SERVE_*`` variables: how `efimero serve` reaches its workers."""
    values = {
        field: environ[ENV_PREFIX + field.upper()]
        for field in ServeSettings.model_fields
        if ENV_PREFIX + field.upper() in environ
    }
    return ServeSettings.model_validate(values)


def settings_to_env(settings: ServeSettings) -> dict[str, str]:
    return {
        ENV_PREFIX + field.upper(): str(value) for field, value in settings.model_dump().items() if value is not None
    }
