"""Reading a config file into efimero's keys: guide spellings mapped, unused keys warned, typos refused.

The rules are described in :mod:`efimero.config`; this module holds the machinery, so that
``config.py`` holds only the models and their loaders. What it reads becomes the YAML layer of
:mod:`efimero._settings`, which orders it among the other sources.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from efimero.errors import ConfigError, format_list

_Key = tuple[str, ...]


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}.") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: is not valid YAML: {exc}") from exc
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: the top level must be a mapping. Got {type(content).__name__} instead.")
    return content


_SQLITE_FILE = re.compile(r"^(?P<scheme>sqlite(?:\+\w+)?:///)(?P<path>(?!/|:memory:)[^?]+)(?P<query>.*)$")


@dataclass(frozen=True)
class ProjectRelative:
    """Field marker: a relative path written in a config file is relative to the project root.

    The project root is the parent of the directory that holds the file
    (``/srv/proj/config/training.yaml`` → ``/srv/proj``), as docker compose reads paths
    relative to its file: the same file then means the same directories from any working
    directory (a cron job, a service unit). ``sqlite=True`` marks a SQLAlchemy URL, whose
    SQLite file is resolved the same way; other databases are left alone.
    """

    sqlite: bool = False

    def resolve(self, value: Any, root: Path) -> Any:
        """``value`` read from a file under ``root``; absolute paths and non-strings pass unchanged."""
        if not isinstance(value, str):
            return value
        if not self.sqlite:
            return str(root / value)
        match = _SQLITE_FILE.match(value)
        return f"{match['scheme']}{root / match['path']}{match['query']}" if match else value


def project_root(source: Path) -> Path:
    """The parent of the directory holding ``source``, kept relative when ``source`` is (``config/x.yaml`` → ``.``)."""
    return Path(os.path.normpath(source.parent / os.pardir))


MAX_TYPO_DISTANCE = 2
"""An unknown key this close to a known one is a misspelling (an error), not an ignored key."""


@dataclass(frozen=True)
class Dialect:
    """How one file's guide spellings read into efimero's keys (dotted keys throughout).

    ``renames``: guide key -> efimero key. ``values``: efimero key -> {guide value: efimero
    value}. ``conditions``: key of a guide ``conditions`` list -> {condition: (operator, key
    beside the list)}, the operator ``bool``, ``<=`` or ``>=``. ``hints``: ignored key (list
    indices left out) -> what efimero does instead, for the warning.
    """

    renames: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    conditions: Mapping[str, Mapping[str, tuple[str, str]]] = field(default_factory=dict)
    hints: Mapping[str, str] = field(default_factory=dict)

    def names_at(self, path: _Key) -> set[str]:
        """Guide spellings that belong directly under ``path`` (candidates for a misspelling)."""
        keys = [tuple(k.split(".")) for k in (*self.renames, *self.conditions)]
        return {key[-1] for key in keys if key[:-1] == path}


def _distance(a: str, b: str) -> int:
    """Edit distance where an insertion, deletion, substitution or adjacent swap costs 1."""
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            row.append(min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (ca != cb)))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def _near(name: str, known: set[str]) -> str | None:
    """The known key that ``name`` misspells, if any (see the module docstring)."""
    plain = name.lower().replace("-", "_")
    scored = sorted((_distance(plain, candidate), candidate) for candidate in known)
    return scored[0][1] if scored and scored[0][0] <= MAX_TYPO_DISTANCE else None


def _dotted(key: _Key) -> str:
    return ".".join(key) or "<root>"


def _model_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds, and whether it holds a mapping of names to that model."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = get_args(annotation)
    if get_origin(annotation) is dict and len(args) == 2 and isinstance(args[1], type) \
            and issubclass(args[1], BaseModel):
        return args[1], True
    return None, False


_CONDITION = re.compile(r"^\s*(<=|>=)\s*(\d+(?:\.\d+)?)\s*$")


class _Reader:
    """One file's content read against a model: guide keys mapped, unused keys set aside."""

    def __init__(self, source: Path, dialect: Dialect) -> None:
        self.source = source
        self.root = project_root(source)
        self.dialect = dialect
        self.ignored: list[str] = []
        self.typos: dict[_Key, str] = {}
        self.read_as: dict[_Key, str] = {}

    def read(self, content: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
        for guide_key, key in self.dialect.renames.items():
            found, value = self._pop(content, tuple(guide_key.split(".")))
            if found:
                self._assign(content, tuple(key.split(".")), value, guide_key)
        for list_key, table in self.dialect.conditions.items():
            self._conditions(content, tuple(list_key.split(".")), table)
        for key, aliases in self.dialect.values.items():
            *parents, leaf = key.split(".")
            node = self._node(content, tuple(parents))
            if node is not None and isinstance(node.get(leaf), str) and node[leaf] in aliases:
                node[leaf] = aliases[node[leaf]]
        return self._sort(content, model, ())

    def hint(self, key: str) -> str:
        return self.dialect.hints.get(".".join(p for p in key.split(".") if not p.isdigit()), "")

    def error(self, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: invalid configuration: {problem}")

    @staticmethod
    def _node(content: dict[str, Any], path: _Key) -> dict[str, Any] | None:
        node: Any = content
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else None

    def _pop(self, content: dict[str, Any], key: _Key) -> tuple[bool, Any]:
        """Remove ``key``; a mapping it leaves empty goes too, so it is not reported as ignored."""
        parents = [content]
        for part in key[:-1]:
            child = parents[-1].get(part)
            if not isinstance(child, dict):
                return False, None
            parents.append(child)
        if key[-1] not in parents[-1]:
            return False, None
        value = parents[-1].pop(key[-1])
        for depth in range(len(parents) - 1, 0, -1):
            if not parents[depth]:
                del parents[depth - 1][key[depth - 1]]
        return True, value

    def _assign(self, content: dict[str, Any], key: _Key, value: Any, guide_key: str) -> None:
        node = content
        for depth, part in enumerate(key[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise self.error(f"{_dotted(key[:depth + 1])} must be a mapping. Got {node!r} instead.")
        if key[-1] in node and node[key[-1]] != value:
            raise self.error(f"{guide_key} is read as {_dotted(key)}, so the two must agree. "
                             f"Got {value!r} and {node[key[-1]]!r} instead; keep one of them.")
        node[key[-1]] = value
        self.read_as[key] = guide_key

    def _conditions(self, content: dict[str, Any], key: _Key, table: Mapping[str, tuple[str, str]]) -> None:
        found, entries = self._pop(content, key)
        if not found:
            return
        if isinstance(entries, dict):
            entries = [entries]
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            raise self.error(f"{_dotted(key)} must be a list of mappings such as `- drift_trigger: true`. "
                             f"Got {entries!r} instead.")
        for index, entry in enumerate(entries):
            for name, value in entry.items():
                here = f"{_dotted(key)}.{index}.{name}"
                if name not in table:
                    if (near := _near(str(name), set(table))) is not None:
                        raise self.error(f"{here}: not a condition efimero knows; did you mean {near}?")
                    self.ignored.append(here)
                    continue
                operator, target = table[name]
                if operator == "bool":
                    if not isinstance(value, bool):
                        raise self.error(f"{here} must be true or false. Got {value!r} instead.")
                else:
                    match = _CONDITION.match(str(value))
                    if match is None or match[1] != operator:
                        raise self.error(f'{here} must be "{operator} <days>" for this strategy. '
                                         f"Got {value!r} instead.")
                    value = float(match[2]) if "." in match[2] else int(match[2])
                self._assign(content, (*key[:-1], target), value, here)

    def _sort(self, node: dict[str, Any], model: type[BaseModel], path: _Key) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        for key, value in node.items():
            here = (*path, str(key))
            info = model.model_fields.get(key) if isinstance(key, str) else None
            if info is not None:
                kept[key] = self._sort_field(value, info, here)
            elif (near := _near(str(key), set(model.model_fields) | self.dialect.names_at(path))) is not None:
                kept[key] = value  # left for pydantic to reject, with the suggestion added
                self.typos[here] = near
            else:
                self.ignored.extend(self._leaves(value, here))
        return kept

    def _sort_field(self, value: Any, info: FieldInfo, here: _Key) -> Any:
        for marker in info.metadata:
            if isinstance(marker, ProjectRelative):
                return marker.resolve(value, self.root)
        inner, by_name = _model_in(info.annotation)
        if inner is None or not isinstance(value, dict):
            return value
        if not by_name:
            return self._sort(value, inner, here)
        return {name: self._sort(item, inner, (*here, str(name))) if isinstance(item, dict) else item
                for name, item in value.items()}

    def _leaves(self, value: Any, here: _Key) -> list[str]:
        """The dotted keys to warn about; a misspelt guide spelling in there is still an error."""
        if not isinstance(value, dict) or not value:
            return [_dotted(here)]
        leaves = []
        for key, item in value.items():
            if (near := _near(str(key), self.dialect.names_at(here))) is not None:
                raise self.error(f"{_dotted((*here, str(key)))}: not a key efimero knows; did you mean {near}?")
            leaves.extend(self._leaves(item, (*here, str(key))))
        return leaves


@dataclass(frozen=True)
class ConfigFile:
    """A config file read into efimero's keys, with what the reading noticed for warnings and errors.

    ``content`` holds efimero's keys (guide spellings mapped, unused keys dropped, relative paths
    resolved against the project root); ``ignored`` the dropped keys with a hint each; ``read_as``
    the guide spelling each mapped key was written as; ``typos`` the key a misspelt one probably meant.
    """

    path: Path
    content: dict[str, Any]
    ignored: list[tuple[str, str]]
    read_as: Mapping[_Key, str]
    typos: Mapping[_Key, str]

    def name(self, loc: _Key) -> str:
        """How an error at ``loc`` names its key: the spelling the file used."""
        return f"{self.read_as[loc]} (read as {_dotted(loc)})" if loc in self.read_as else _dotted(loc)

    def suggestion(self, loc: _Key) -> str:
        """``; did you mean …?`` for a key that misspells one efimero knows, else empty."""
        return f"; did you mean {self.typos[loc]}?" if loc in self.typos else ""


def read_config(source: Path, model: type[BaseModel], dialect: Dialect | None = None) -> ConfigFile:
    """Read ``source`` against ``model``; see the module docstring of :mod:`efimero.config` for the rules.

    Raises:
        ConfigError: the file cannot be read, is not YAML, or misspells a guide key.
    """
    reader = _Reader(source, dialect or Dialect())
    content = reader.read(_read_yaml(source), model)
    return ConfigFile(source, content, [(key, reader.hint(key)) for key in reader.ignored], reader.read_as,
                      reader.typos)


class KeyedError(ValueError):
    """A cross-field problem that belongs to one nested key (pydantic would report it at the root).

    Raise it from a model validator: :func:`load_strict` names its ``loc``, not the model's root.
    """

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


MAX_REPORTED_PROBLEMS = 5

M = TypeVar("M", bound=BaseModel)


def load_strict(source: str | Path, model: type[M], what: str) -> M:
    """Read and validate a declaration file (a use case, a site's style tokens) where every key counts.

    Unlike the layered config, an unknown key is refused rather than ignored: in a declaration
    a misspelt key would silently fall back to a default.

    Raises:
        ConfigError: naming the file and each dotted key at fault (at most
            :data:`MAX_REPORTED_PROBLEMS`, then how many more), e.g.
            ``usecases/churn.yaml: algorithms.0.grid.max_depth: Input should be a valid list``.
    """
    path = Path(source)
    file = read_config(path, model)
    if file.ignored:
        keys = [key for key, _ in file.ignored]
        top = f" The top-level keys are {', '.join(model.model_fields)}." if all("." not in k for k in keys) else ""
        raise ConfigError(f"{path}: {format_list(keys)}: not a key of {what}; remove it or fix its spelling.{top}")
    try:
        return model.model_validate(file.content)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(str(part) for part in err["loc"])
            cause = err.get("ctx", {}).get("error")
            if isinstance(cause, KeyedError):
                loc = tuple(str(part) for part in cause.loc)
            message = str(cause) if cause is not None else err["msg"]
            problems.append(f"{path}: {file.name(loc) if loc else 'file'}: {message}{file.suggestion(loc)}")
        more = len(problems) - MAX_REPORTED_PROBLEMS
        raise ConfigError("; ".join(problems[:MAX_REPORTED_PROBLEMS]) + (f" ({more} more)" if more > 0 else "")) \
            from None
