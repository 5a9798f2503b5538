"""The one exception hierarchy of efimero.

Every problem a user can fix surfaces as an :class:`EfimeroError`; anything else is a bug
and keeps its traceback. The CLI catches ``EfimeroError`` once, prints it and exits 1::

    EfimeroError
    ├── ConfigError                  a YAML file or key under config/ is invalid
    ├── DataError                    a data file cannot be read (missing, unknown format)
    │   └── DataValidationError      the data breaks schema rules (holds the failures)
    │       └── UnseenLabelsError    labelled data holds classes a version was never trained on
    ├── TrainingError                training cannot run (too few rows, no GPU, ...)
    ├── PredictionInputError         a context lacks a feature or holds a non-number
    ├── StoreError                   the interaction store cannot be opened or written
    ├── DeployError                  a deployment or rollback cannot proceed
    ├── ComparisonError              two versions cannot be compared (different features or targets)
    ├── TrackingError                the MLflow tracking server or registry cannot do what was asked
    ├── SimulationError              the visitor simulator cannot reach a ready service
    ├── ExperimentError              an experiment cannot start, be read or stop as asked
    │   └── ExperimentInputError     its data or settings cannot be analysed (also a ValueError)
    ├── EstimatorError               an algorithm cannot be built, used or saved as asked (not fitted, no proba)
    │   ├── UnknownAlgorithmError    no algorithm or task kind of that name, or not that pair (also a LookupError)
    │   └── UntrustedModelError      a saved model holds types outside the allow-list; it is not loaded
    └── RegistryError                the model registry cannot do what was asked
        ├── VersionNotFoundError     (also a LookupError)
        ├── ModelIntegrityError      checksums or files do not match the manifest
        └── RegistryFormatError      a manifest or index file is malformed or too new

Exceptions keep their structured fields (``to_dict``) so ``--json`` output and, later, the
HTTP layer can report them without parsing messages.

Surprises that do not stop the work are ``warnings.warn`` calls with efimero classes (the CLI
shows them on stderr; a ``warnings`` filter set to "error" makes them exceptions)::

    UserWarning
    ├── ConfigKeyIgnoredWarning      a config key efimero does not use was ignored
    └── TrackingWarning              logging to MLflow failed mid-run; the work itself went on
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ROW_RULE = "<row>"
"""Column name of failures that concern whole rows (duplicates, cross-column rules)."""

MAX_LISTED = 5
"""Long lists in messages are capped at this many entries."""


def format_list(items: list[Any], limit: int = MAX_LISTED) -> str:
    """Join ``items`` for a message, naming how many were left out."""
    shown = ", ".join(str(item) for item in items[:limit])
    if len(items) > limit:
        shown += f", ... ({len(items) - limit} more)"
    return shown


class EfimeroError(Exception):
    """Root of every error a user of efimero can act on."""

    def to_dict(self) -> dict[str, Any]:
        """Return the error as a JSON-ready mapping."""
        return {"error": type(self).__name__, "message": str(self)}


class ConfigError(EfimeroError, ValueError):
    """A configuration file or one of its keys is invalid."""


class ConfigKeyIgnoredWarning(UserWarning):
    """A key in a configuration file that efimero does not use: it is ignored, never defaulted silently.

    Warned with an instance: ``path`` is the file, ``key`` the dotted key and ``hint`` what
    efimero does instead (may be empty).
    """

    def __init__(self, path: str, key: str, hint: str = "") -> None:
        self.path = path
        self.key = key
        self.hint = hint
        super().__init__(" ".join(filter(None, (
            f"{path}: {key} is not a key efimero uses and is ignored.", hint, "Remove it to silence this warning."))))


class DataError(EfimeroError):
    """A data file cannot be read or written."""


@dataclass(frozen=True)
class ValidationFailure:
    """One broken rule: which column, which rule, which rows and values."""

    column: str
    rule: str
    rows: list[int] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    count: int = 0

    def describe(self) -> str:
        """One line naming the column, the rule and the first failing rows."""
        where = "rows" if self.column == ROW_RULE else f"column {self.column!r}"
        text = f"{where}: {self.rule}"
        if self.count:
            text += f" — {self.count} row(s) fail"
        if self.rows:
            text += f", first rows {format_list(self.rows)}"
        if self.values:
            text += f" (values seen: {format_list(self.values)})"
        return text


class DataValidationError(DataError, ValueError):
    """A dataset breaks the schema; ``failures`` lists every broken rule."""

    def __init__(self, source: str, failures: list[ValidationFailure]) -> None:
        self.source = source
        self.failures = failures
        lines = "\n".join(f"  - {failure.describe()}" for failure in failures)
        super().__init__(
            f"{source} failed validation with {len(failures)} problem(s):\n{lines}\n"
            "Fix the rows named above or regenerate the file with `efimero data generate`."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "source": self.source,
            "failures": [asdict(failure) for failure in self.failures],
        }


class UnseenLabelsError(DataValidationError):
    """Labelled data holds class labels a version was never trained on, so it cannot score them.

    The file itself is valid (the labels are in the schema); the version simply has no
    probability for those labels. ``failures`` names, per class column, the unseen labels, the
    rows that hold them and (in the rule) the labels the version knows.
    """

    def __init__(self, source: str, version: str | None, failures: list[ValidationFailure]) -> None:
        self.source = source
        self.version = version
        self.failures = failures
        lines = "\n".join(f"  - {failure.describe()}" for failure in failures)
        # DataValidationError's own message would send the user to regenerate a valid file.
        DataError.__init__(
            self,
            f"{source} holds class labels that {version} was never trained on:\n{lines}\n"
            f"{version} cannot score those rows: drop them, or retrain on data that includes those labels "
            "(`efimero retrain full`).",
        )

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "version": self.version}


class TrainingError(EfimeroError):
    """Training cannot run with the data, options or hardware given."""


class PredictionInputError(EfimeroError, ValueError):
    """A prediction input lacks a feature or holds a value that is not a finite number."""


class StoreError(EfimeroError):
    """The interaction store cannot be opened, read or written."""


class DeployError(EfimeroError):
    """A deployment or rollback cannot proceed (thresholds, integrity, nothing to roll back)."""


class TrackingError(EfimeroError):
    """The MLflow tracking server or registry cannot do what was asked (unreachable, unknown alias, bad download)."""


class TrackingWarning(UserWarning):
    """Logging a run to MLflow failed after it started; the command's own work (a saved version) stands."""


class ComparisonError(EfimeroError, ValueError):
    """Two versions cannot be compared: their features or targets differ."""


class SimulationError(EfimeroError):
    """The simulator cannot run: the service is unreachable or not ready."""


class ExperimentError(EfimeroError):
    """An experiment cannot start, be read or stop as asked (another owns the traffic, none runs, ...)."""


class ExperimentInputError(ExperimentError, ValueError):
    """An experiment's data or settings cannot be analysed (empty arm, NaN, mismatched lengths, bad level)."""


class EstimatorError(EfimeroError):
    """An estimator cannot do what was asked: used before fit, no probabilities for its task, a bad sidecar."""


class UnknownAlgorithmError(EstimatorError, LookupError):
    """An unknown algorithm or task kind, or a task the algorithm does not support; the message lists the valid ones."""


class UntrustedModelError(EstimatorError):
    """A saved scikit-learn model holds types outside efimero's allow-list, so it is refused rather than loaded.

    ``types`` lists the types that are not trusted.
    """

    def __init__(self, path: str, types: list[str]) -> None:
        self.path = path
        self.types = types
        super().__init__(
            f"{path} holds types efimero does not trust: {format_list(types)}. It was not loaded: loading it "
            "could run code. Retrain the model with efimero, or load it yourself only if you trust its source."
        )

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "path": self.path, "types": self.types}


class RegistryError(EfimeroError):
    """The model registry cannot do what was asked."""


class VersionNotFoundError(RegistryError, LookupError):
    """A model version (or the live pointer) does not exist."""


class ModelIntegrityError(RegistryError):
    """A version's files do not match the checksums of its manifest."""


class RegistryFormatError(RegistryError):
    """A manifest or index file is malformed or written by a newer efimero."""
