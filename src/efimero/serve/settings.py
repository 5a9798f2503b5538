"""Settings of the prediction service (built by the CLI, overridden in tests)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from efimero.store import DEFAULT_URL


class ServeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models_dir: Path = Field(Path("models"), description="Registry whose current version is served")
    db_url: str = Field(DEFAULT_URL, description="SQLAlchemy URL of the interaction store")
    poll_interval_s: float = Field(1.0, gt=0, description="How often the live pointer is checked")
    max_body_bytes: int = Field(65_536, ge=1024, description="Largest accepted request body")
    max_batch: int = Field(1000, ge=1, description="Most contexts per batch request")

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
    return {ENV_PREFIX + field.upper(): str(value) for field, value in settings.model_dump().items()}
