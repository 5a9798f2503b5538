"""Where a setting comes from, and which source wins: defaults < YAML file < ``EFIMERO_*`` environment < CLI flags.

Every settings model derives from :class:`Settings`: the three files under ``config/``
(:mod:`efimero.config`) and the service's :class:`~efimero.serve.ServeSettings`. Its
``settings_customise_sources`` is the one place that order is written; pydantic-settings merges
the layers key by key, so a variable or a flag changes one key and keeps the rest of its section.
:func:`load` is the one entry point: it finds and reads the file, then builds the model and turns
every failure into a :class:`~efimero.errors.ConfigError` that names where the bad value came
from: the file and its key, the environment variable, or the override.

The config directory is the ``--config`` file's when one is named, else ``$EFIMERO_CONFIG_DIR``,
else ``./config``. Relative paths written in a file are read against the project root, the
parent of the file's directory (:class:`~efimero._config_reader.ProjectRelative`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from efimero._config_reader import ConfigFile, Dialect, read_config
from efimero.errors import ConfigError, ConfigKeyIgnoredWarning

CONFIG_DIR_ENV = "EFIMERO_CONFIG_DIR"
"""Names the directory holding ``training.yaml``, ``environments.yaml`` and ``retraining.yaml``."""

DEFAULT_CONFIG_DIR = Path("config")
ENV_NESTED_DELIMITER = "__"
ENV_NONE = "null"
"""An environment value that sets an optional key to None (``EFIMERO_SERVE_RATE_LIMIT=null``)."""

_S = TypeVar("_S", bound="Settings")
_Key = tuple[str, ...]

_reading: ContextVar[ConfigFile | None] = ContextVar("efimero_config_file", default=None)
"""The file :func:`load` is building a model from; pydantic-settings builds its sources per class, not per call."""


class Settings(BaseSettings):
    """Base of every settings model: the one place where the order of sources is decided.

    Keyword arguments are the CLI layer. Variables are ``EFIMERO_`` plus the dotted key with
    ``__`` for each dot (``EFIMERO_TRAINING__DATA__CV_FOLDS``); a model may set another
    ``env_prefix``. Built directly (``TrainingConfig()``) a model has no file layer; :func:`load` adds it.
    """

    model_config = SettingsConfigDict(
        extra="forbid", frozen=True, env_prefix="EFIMERO_", env_nested_delimiter=ENV_NESTED_DELIMITER,
        env_parse_none_str=ENV_NONE,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest first: CLI flags (keyword arguments), ``EFIMERO_*`` variables, the YAML file over built-in defaults.

        No ``.env`` file and no secrets directory: a setting comes from these four places only.
        """
        return init_settings, env_settings, _FileLayer(settings_cls)


class _FileLayer(PydanticBaseSettingsSource):
    """The file :func:`load` is reading, over the built-in defaults of the top-level sections it leaves out.

    A section the file writes is the file's (an ``environments`` table lists every environment).
    Defaults are given as data rather than left to validation so that a variable amends a built-in
    table: ``EFIMERO_ENVIRONMENTS__PRODUCTION__MODEL_DIR`` keeps staging and the rest of production.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused (the base class requires it): :meth:`__call__` returns the whole layer at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        file = _reading.get()
        layer = {
            name: to_jsonable_python(default)
            for name, field in self.settings_cls.model_fields.items()
            if (default := field.get_default(call_default_factory=True)) is not PydanticUndefined
        }
        layer.update(file.content if file is not None else {})
        return layer


def config_path(path: str | Path | None, name: str) -> Path:
    """The file to read: ``path`` when named, else ``name`` in ``$EFIMERO_CONFIG_DIR``, else in ``./config``.

    Raises:
        ConfigError: ``$EFIMERO_CONFIG_DIR`` names no directory (a typo would otherwise mean silent defaults).
    """
    if path is not None:
        return Path(path)
    directory = os.environ.get(CONFIG_DIR_ENV)
    if not directory:
        return DEFAULT_CONFIG_DIR / name
    if not Path(directory).is_dir():
        raise ConfigError(f"${CONFIG_DIR_ENV} must name a directory of config files. Got {directory!r}, which "
                          "is not a directory, instead; fix it or unset it to use ./config.")
    return Path(directory) / name


def load(
    model: type[_S], *, path: str | Path | None = None, name: str | None = None,
    overrides: Mapping[str, Any] | None = None, dialect: Dialect | None = None,
) -> _S:
    """Build ``model`` from built-in defaults < its YAML file < ``EFIMERO_*`` variables < ``overrides``.

    ``name`` is the model's file in the config directory, read when present (None: the model has
    no file); ``path`` names a file that must exist. Warns with :class:`ConfigKeyIgnoredWarning`
    once per key of the file that efimero does not use, pointing at the caller's caller.

    Raises:
        ConfigError: the file is missing (when named), unreadable or misspelt, or a value from any
            layer is invalid; the message names the file key, the variable or the override.
    """
    file = None
    if path is not None or name is not None:
        source = config_path(path, name or "")
        if path is not None and not source.is_file():
            raise ConfigError(f"{source}: no such config file.")
        file = read_config(source, model, dialect) if source.is_file() else None
        for key, hint in file.ignored if file is not None else ():
            warnings.warn(ConfigKeyIgnoredWarning(str(source), key, hint), stacklevel=3)
    overrides = dict(overrides or {})
    token = _reading.set(file)
    try:
        return model(**overrides)
    except ValidationError as exc:
        raise _invalid(model, exc, file, overrides) from exc
    except SettingsError as exc:
        raise _unparsable(model, exc) from exc
    finally:
        _reading.reset(token)


def _variables(model: type[Settings]) -> dict[_Key, str]:
    """The model's variables that are set, by the key they set (lower case, as pydantic-settings reads them)."""
    prefix = (model.model_config.get("env_prefix") or "").lower()
    return {tuple(name[len(prefix):].lower().split(ENV_NESTED_DELIMITER)): name
            for name in os.environ if name.lower().startswith(prefix)}


def _touches(layer: Mapping[str, Any], loc: _Key) -> bool:
    """Whether ``layer`` sets ``loc``, a key above it or one below it."""
    node: Any = layer
    for key in loc:
        if not isinstance(node, Mapping):
            return True
        if key not in node:
            return False
        node = node[key]
    return bool(loc)


def _invalid(model: type[Settings], exc: ValidationError, file: ConfigFile | None,
             overrides: Mapping[str, Any]) -> ConfigError:
    """One message for every problem, each named by the layer its value came from (the highest that sets it)."""
    variables = _variables(model)
    problems, blames_file = [], False
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        dotted = ".".join(loc)
        named = [name for key, name in variables.items() if key[:len(loc)] == loc or loc[:len(key)] == key]
        if _touches(overrides, loc):
            problems.append(f"{dotted}: {err['msg']}")
        elif named:
            shown = ", ".join(f"{name}={os.environ[name]!r}" for name in sorted(named)[:5])
            problems.append(f"environment variable {shown} (read as {dotted}): {err['msg']}")
        elif file is not None:
            blames_file = True
            problems.append(f"{file.name(loc)}: {err['msg']}{file.suggestion(loc)}")
        else:
            problems.append(f"{dotted}: {err['msg']}")
    place = f"{file.path}: " if file is not None and blames_file else ""
    return ConfigError(f"{place}invalid configuration: {'; '.join(problems)}")


def _unparsable(model: type[Settings], exc: SettingsError) -> ConfigError:
    """A variable for a list, mapping or section that does not hold JSON (pydantic-settings decodes those)."""
    raw = getattr(exc.__cause__, "doc", None)
    named = sorted(name for name in _variables(model).values() if os.environ[name] == raw)
    if not named:
        return ConfigError(f"invalid configuration: {exc} ({exc.__cause__}).")
    return ConfigError(f"environment variable {', '.join(named[:5])} must be JSON, as its key holds a list or "
                       f"a mapping (e.g. '[4, 6]' or '{{\"max_depth\": [4, 6]}}'). Got {raw!r} instead.")
