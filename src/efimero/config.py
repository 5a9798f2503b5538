"""Pydantic models for the YAML files under ``config/``, and their loaders.

**Layers.** A setting comes from four places, each winning over the ones before it, key by key:
built-in defaults < YAML file < ``EFIMERO_*`` environment variables < CLI flags (the loaders'
``overrides``). The order is written once, in :class:`efimero._settings.Settings`
(pydantic-settings' ``settings_customise_sources``), which these models and the service's
``ServeSettings`` derive from.

**Environment variables.** ``EFIMERO_`` followed by the key's dotted path in its file, upper
case, with ``__`` for each dot: ``EFIMERO_TRAINING__DATA__CV_FOLDS=3`` (``training.yaml``),
``EFIMERO_REGISTRY__MODEL_DIR``, ``EFIMERO_VALIDATION__MIN_ACCURACY``,
``EFIMERO_ENVIRONMENTS__PRODUCTION__MODEL_DIR`` (``environments.yaml``),
``EFIMERO_RETRAINING__DEPLOYMENT__TARGET=production`` (``retraining.yaml``),
``EFIMERO_TRACKING__URI`` (``tracking.yaml``). The files' top-level
sections are distinct (``training``, ``registry``, ``validation``; ``environments``;
``retraining``; ``tracking``), so one variable belongs to one file; the service reads ``EFIMERO_SERVE_<FIELD>``
(single ``_``, no section), the pepper ``EFIMERO_USER_ID_PEPPER`` and the config directory
``EFIMERO_CONFIG_DIR``, none of which a file section can spell. Lists and mappings are JSON
(``EFIMERO_TRAINING__TUNING__GRID='{"max_depth": [4, 6]}'``); ``null`` sets an optional key to None.
A variable that sets a key of a built-in table amends it (the other environments stay). An
invalid value is a :class:`~efimero.errors.ConfigError` naming the variable, its value and the rule.

**Where the files are.** A loader reads the file it is given (``--config``), else the file of
that name in ``$EFIMERO_CONFIG_DIR``, else in ``./config``; a file that is not there means
built-in defaults. Relative paths *written in a file* (``registry.model_dir``,
``environments.*.model_dir``, ``retraining.models_dir``, ``data_collection.output_dir`` and the
file of a ``sqlite:///`` ``db_url``) are read against the project root, the parent of the file's
directory, so ``/srv/proj/config/training.yaml`` means ``/srv/proj/models`` from any working
directory. Built-in defaults, variables and flags stay relative to the working directory, like
any command-line path.

**Reading a file.** Every model forbids unknown keys, and the loaders read a file in three steps
before validating it:

1. **Guide spellings are mapped.** The guides print ``config/training.yaml`` and
   ``config/retraining.yaml`` with keys that mean an efimero key under another name; they
   are read as that key (tables ``_TRAINING_GUIDE``, ``_RETRAINING_GUIDE``):

   - ``training.tuning.cv_folds`` → ``training.data.cv_folds``;
     ``training.tuning.n_iter`` → ``training.tuning.n_trials``;
     ``training.output.model_dir`` → ``registry.model_dir``;
     ``training.tuning.method`` ``grid_search`` → ``grid``, ``bayesian`` → ``optuna`` (TPE).
   - ``retraining.strategies.<s>.conditions``, a list of one-key mappings, sets keys beside
     it: ``time_since_last_days: "<= N"`` → ``incremental.max_days_since_last``,
     ``time_since_last_days: ">= N"`` → ``full.min_days_since_last``,
     ``performance_trigger`` → ``full.on_performance_trigger``, ``drift_trigger`` →
     ``full.on_drift_trigger``. A condition left out keeps efimero's default.

   A file that sets both spellings of one key must give them the same value.
2. **Keys efimero does not use are ignored, loudly.** In a mapping that efimero models, a
   key that is neither one of its fields nor a guide spelling is dropped with one
   :class:`~efimero.errors.ConfigKeyIgnoredWarning` per leaf, naming the file and the dotted
   key (``training.output.backup_models``); it never falls back to a silent default.
3. **Misspellings stay errors.** Such a key is *not* ignored when, lower-cased and with
   ``-`` read as ``_``, it is within edit distance 2 (:data:`MAX_TYPO_DISTANCE`, adjacent
   swaps count 1) of a field or guide spelling of the same mapping: ``learning_rte`` next to
   ``learning_rate``, ``test_sise``, ``Max_Depth``. The :class:`~efimero.errors.ConfigError`
   names the file, the dotted key and the key it probably meant.

Values are validated as before: a wrong type or an out-of-range number is a ``ConfigError``
naming the file and the dotted key (the guide's key where it was mapped). Variables and
overrides are efimero's own keys and are never mapped or ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from efimero._config_reader import Dialect, ProjectRelative
from efimero._settings import Settings, load
from efimero.bandit.reward import RewardFunction
from efimero.errors import ConfigError
from efimero.registry.exploration import ExplorationMode, Guardrail

ProjectPath = Annotated[Path, ProjectRelative()]
"""A path that, written relative in a file, is relative to the project root (module docstring)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSettings(_Strict):
    test_size: float = Field(0.2, gt=0, lt=1, description="Share of rows held out as the test set")
    validation_split: float = Field(
        0.1, gt=0, lt=1, description="Share of the training rows held out for early stopping"
    )
    cv_folds: int = Field(5, ge=0, description="k of k-fold cross-validation; 0 or 1 skips it")
    random_state: int = Field(42, description="Seed of every split, fold and model")
    allow_duplicates: bool = Field(False, description="Accept duplicate rows in training data")

    @model_validator(mode="after")
    def _folds_are_meaningful(self) -> DataSettings:
        if self.cv_folds == 1:
            raise ValueError("cv_folds must be 0 (off) or at least 2. Got 1 instead.")
        return self


class XGBoostParams(_Strict):
    """Hyperparameters shared by every XGBoost model; names follow XGBoost's own."""

    learning_rate: float = Field(0.1, gt=0, le=1)
    max_depth: int = Field(6, ge=1, le=32)
    n_estimators: int = Field(100, ge=1, le=10_000)
    reg_alpha: float = Field(0.1, ge=0)
    reg_lambda: float = Field(1.0, ge=0)
    min_child_weight: float = Field(1.0, ge=0)
    subsample: float = Field(1.0, gt=0, le=1)
    colsample_bytree: float = Field(1.0, gt=0, le=1)
    early_stopping_rounds: int | None = Field(10, ge=1, description="None trains all n_estimators")


class ClassifierParams(XGBoostParams):
    objective: Literal["multi:softprob"] = "multi:softprob"


class RegressorParams(XGBoostParams):
    objective: Literal["reg:squarederror"] = "reg:squarederror"
    multi_strategy: Literal["one_output_per_tree", "multi_output_tree"] = "one_output_per_tree"


class ModelSettings(_Strict):
    classifier: ClassifierParams = ClassifierParams()
    regressor: RegressorParams = RegressorParams()


def _default_grid() -> dict[str, list[float]]:
    return {
        "max_depth": [4, 6, 8],
        "learning_rate": [0.05, 0.1, 0.2],
        "n_estimators": [100, 200],
    }


class TuningSettings(_Strict):
    method: Literal["grid", "optuna"] = "grid"
    n_trials: int = Field(50, ge=1, description="Optuna trials per model")
    grid: dict[str, list[float]] = Field(
        default_factory=_default_grid,
        description="Seed grid: every combination is scored by k-fold CV",
    )
    search_space: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "max_depth": (3, 10),
            "learning_rate": (0.01, 0.3),
            "n_estimators": (50, 400),
            "min_child_weight": (1, 10),
            "subsample": (0.6, 1.0),
            "colsample_bytree": (0.6, 1.0),
            "reg_alpha": (1e-3, 10),
            "reg_lambda": (1e-3, 10),
        },
        description="Optuna ranges (log scale for learning_rate and the reg_* terms)",
    )
    storage: Annotated[str | None, ProjectRelative(sqlite=True)] = Field(
        "sqlite:///data/efimero.db",
        description="SQLAlchemy URL where Optuna studies persist, so a rerun resumes them (default: the "
        "interaction store's database); none or empty keeps them in memory",
    )
    pruner: Literal["median", "none"] = Field(
        "median", description="Stop Optuna trials whose first-fold score per boosting round is below the median")
    objectives: tuple[Literal["quality", "latency"], ...] = Field(
        ("quality",), description="[quality], or [quality, latency]: also minimise single-row predict latency")
    latency_budget_ms: float | None = Field(
        None, gt=0, description="With the latency objective: the Pareto trial chosen must predict a row within "
        "this (default: validation.max_avg_latency_ms)")

    @model_validator(mode="before")
    @classmethod
    def _no_storage(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("storage"), str) and data["storage"].strip().lower() in (
                "", "none", "null", "memory"):
            return {**data, "storage": None}
        return data

    @field_serializer("storage")
    def _hide_password(self, storage: str | None) -> str | None:
        """Dumps (a version's metadata, MLflow parameters) never hold the storage's password."""
        if storage is None:
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            return make_url(storage).render_as_string(hide_password=True)
        except ArgumentError:
            return storage

    @model_validator(mode="after")
    def _known_params(self) -> TuningSettings:
        known = set(XGBoostParams.model_fields) - {"early_stopping_rounds"}
        for source, names in (("grid", self.grid), ("search_space", self.search_space)):
            unknown = sorted(set(names) - known)
            if unknown:
                raise ValueError(
                    f"{source} may only name {', '.join(sorted(known))}. Got {', '.join(unknown)} instead."
                )
        if self.objectives not in (("quality",), ("quality", "latency")):
            raise ValueError(
                f"objectives must be [quality] or [quality, latency]. Got {list(self.objectives)} instead.")
        return self


class PreprocessingSettings(_Strict):
    scaling: Literal["standard"] = Field("standard", description="Features are standardised; the only scaling")


class TrainingSettings(_Strict):
    data: DataSettings = DataSettings()
    preprocessing: PreprocessingSettings = PreprocessingSettings()
    models: ModelSettings = ModelSettings()
    tuning: TuningSettings = TuningSettings()
    n_jobs: int = Field(-1, description="Threads per model; -1 uses every core")
    device: Literal["cpu", "cuda"] = "cpu"


class RegistrySettings(_Strict):
    model_dir: ProjectPath = Path("models")
    max_versions_to_keep: int = Field(10, ge=1)


class ValidationSettings(_Strict):
    latency_samples: int = Field(100, ge=10, description="Single predictions timed by the speed check")
    max_avg_latency_ms: float = Field(100.0, gt=0)
    max_p95_latency_ms: float = Field(100.0, gt=0)
    min_accuracy: float = Field(0.7, ge=0, le=1, description="Mean accuracy of the class targets")
    min_r2: float = Field(0.3, le=1, description="Mean R² of the regression targets")


class TrainingConfig(Settings):
    """The whole of ``config/training.yaml``.

    Its variables: ``EFIMERO_TRAINING__*``, ``EFIMERO_REGISTRY__*``, ``EFIMERO_VALIDATION__*``.
    """

    training: TrainingSettings = TrainingSettings()
    registry: RegistrySettings = RegistrySettings()
    validation: ValidationSettings = ValidationSettings()

    @model_validator(mode="after")
    def _latency_budget_from_the_gate(self) -> TrainingConfig:
        """``training.tuning.latency_budget_ms`` left unset is the gate's ``validation.max_avg_latency_ms``."""
        tuning = self.training.tuning
        if tuning.latency_budget_ms is None:
            budget = tuning.model_copy(update={"latency_budget_ms": self.validation.max_avg_latency_ms})
            object.__setattr__(self, "training", self.training.model_copy(update={"tuning": budget}))  # frozen
        return self


def load_training_config(
    path: str | Path | None = None, *, overrides: dict[str, Any] | None = None
) -> TrainingConfig:
    """Load ``training.yaml`` (``path``, else from the config directory), the environment and nested ``overrides``.

    With no ``path``, the config directory's ``training.yaml`` is read when it exists, else
    defaults apply; ``EFIMERO_*`` variables then ``overrides`` win over it (module docstring).
    The training scripts guide's file loads too (see the module docstring for its keys).

    Raises:
        ConfigError: the file is missing (when named), not YAML, a key is misspelt, or a value of
            the file, a variable or an override is invalid.

    Example:
        >>> cfg = load_training_config(overrides={"training": {"data": {"cv_folds": 3}}})
        >>> cfg.training.data.cv_folds
        3
    """
    return load(TrainingConfig, path=path, name="training.yaml", overrides=overrides, dialect=_TRAINING_GUIDE)


_TRAINING_GUIDE = Dialect(
    renames={
        "training.tuning.cv_folds": "training.data.cv_folds",
        "training.tuning.n_iter": "training.tuning.n_trials",
        "training.output.model_dir": "registry.model_dir",
    },
    values={"training.tuning.method": {"grid_search": "grid", "bayesian": "optuna"}},
    hints={
        "training.data.size": "Choose the number of rows with `efimero data generate --size`.",
        "training.preprocessing.feature_selection": "efimero trains on every schema feature.",
        "training.output.backup_models": "Versions are never overwritten; registry.max_versions_to_keep "
        "sets how many stay.",
        "training.output.export_metrics": "Every version holds its metrics.json.",
    },
)


# -- config/environments.yaml --------------------------------------------------------------


class PerformanceThreshold(_Strict):
    latency_ms: float = Field(100.0, gt=0, description="Max average and p95 single-prediction latency")
    accuracy_min: float = Field(0.0, ge=0, le=1, description="Min mean accuracy of the class targets")
    r2_min: float = Field(0.0, le=1, description="Min mean R² of the regression targets")


class MonitoringSettings(_Strict):
    enabled: bool = False
    alert_threshold: float = Field(0.05, gt=0, le=1, description="Accuracy drop that raises an alert")


class Environment(_Strict):
    model_dir: ProjectPath
    validation_required: bool = False
    backup_enabled: bool = False
    rollback_enabled: bool = True
    max_versions_to_keep: int = Field(10, ge=2, description="Versions kept in the target (current and previous always)")
    compile: bool = Field(False, description="Compile each deployed version's trees to a shared library (treelite + "
                          "tl2cgen + gcc) for fast serving; a failed compile serves through XGBoost")
    performance_threshold: PerformanceThreshold = PerformanceThreshold()
    monitoring: MonitoringSettings = MonitoringSettings()


def _default_environments() -> dict[str, Environment]:
    return {
        "development": Environment(model_dir=Path("models/dev")),
        "staging": Environment(
            model_dir=Path("models/staging"), validation_required=True, backup_enabled=True,
            performance_threshold=PerformanceThreshold(latency_ms=100, accuracy_min=0.7),
        ),
        "production": Environment(
            model_dir=Path("models/prod"), validation_required=True, backup_enabled=True, rollback_enabled=True,
            performance_threshold=PerformanceThreshold(latency_ms=50, accuracy_min=0.8),
            monitoring=MonitoringSettings(enabled=True, alert_threshold=0.05),
        ),
    }


class EnvironmentsConfig(Settings):
    """The whole of ``config/environments.yaml``; variables ``EFIMERO_ENVIRONMENTS__<NAME>__*``."""

    environments: dict[str, Environment] = Field(default_factory=_default_environments)

    def get(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments))
            raise ConfigError(f"target must be one of {known}. Got {name!r} instead.") from None


def load_environments_config(
    path: str | Path | None = None, *, overrides: dict[str, Any] | None = None
) -> EnvironmentsConfig:
    """Load ``environments.yaml`` (``path``, else from the config directory), the environment and ``overrides``.

    Built-in environments apply when the file is absent and not named; ``EFIMERO_ENVIRONMENTS__*``
    variables then nested ``overrides`` win over the file (module docstring).

    The training scripts guide's file loads as printed. Keys efimero does not use warn with
    :class:`ConfigKeyIgnoredWarning` and are ignored; misspellings are errors (module docstring).

    Raises:
        ConfigError: the file is missing (when named), not YAML, a key is misspelt, or a value of
            the file, a variable or an override is invalid.
    """
    return load(EnvironmentsConfig, path=path, name="environments.yaml", overrides=overrides)


# -- config/tracking.yaml ------------------------------------------------------------------

MLFLOW_TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
"""MLflow's own variable: read as ``tracking.uri``, below ``EFIMERO_TRACKING__URI`` and the flag."""


class TrackingSettings(_Strict):
    """Where runs and the registry mirror go. No ``uri``: nothing is tracked and mlflow is never imported."""

    uri: str | None = Field(
        None, description="MLflow tracking URI (http://host:5000, sqlite:///mlflow.db); None turns tracking off")
    experiment: str = Field("efimero", min_length=1, description="Experiment of every run")
    model_name: str = Field(
        "efimero-css", pattern=r"^[\w.-]+$", description="Registered model that mirrors efimero's versions")
    log_models: bool = Field(True, description="Log each booster of a version in the mlflow.xgboost flavour")


class TrackingConfig(Settings):
    """The whole of ``config/tracking.yaml``; variables ``EFIMERO_TRACKING__*``."""

    tracking: TrackingSettings = TrackingSettings()


def load_tracking_config(
    path: str | Path | None = None, *, overrides: dict[str, Any] | None = None
) -> TrackingConfig:
    """Load ``tracking.yaml`` (``path``, else from the config directory), the environment and nested ``overrides``.

    ``MLFLOW_TRACKING_URI``, the variable every MLflow user already sets, counts as a variable of
    ``tracking.uri``: it wins over the file and loses to ``EFIMERO_TRACKING__URI`` and ``overrides``
    (the ``--mlflow-uri`` flag).

    Raises:
        ConfigError: the file is missing (when named), not YAML, a key is misspelt, or a value is invalid.

    Example:
        >>> load_tracking_config(overrides={"tracking": {"uri": "http://127.0.0.1:5000"}}).tracking.uri
        'http://127.0.0.1:5000'
    """
    overrides = dict(overrides or {})
    mlflow_uri = os.environ.get(MLFLOW_TRACKING_URI_ENV)
    section = dict(overrides.get("tracking", {}))
    if mlflow_uri and "EFIMERO_TRACKING__URI" not in os.environ and "uri" not in section:
        overrides["tracking"] = section | {"uri": mlflow_uri}
    return load(TrackingConfig, path=path, name="tracking.yaml", overrides=overrides)


# -- config/retraining.yaml ----------------------------------------------------------------


class TimeTrigger(_Strict):
    enabled: bool = True
    min_days_since_last: float = Field(
        7, ge=0, description="Scheduled runs never retrain a live version younger than this, whatever fired")
    max_days_since_last: float = Field(30, gt=0, description="Retrain at the latest after this long")

    @model_validator(mode="after")
    def _min_below_max(self) -> TimeTrigger:
        if self.min_days_since_last > self.max_days_since_last:
            raise ValueError(f"min_days_since_last must not exceed max_days_since_last ({self.max_days_since_last:g}). "
                             f"Got {self.min_days_since_last:g} instead.")
        return self


class VolumeTrigger(_Strict):
    enabled: bool = True
    min_new_samples: int = Field(500, ge=1, description="Usable new rows that trigger retraining")
    collection_window_days: int = Field(7, ge=1)


class PerformanceTrigger(_Strict):
    enabled: bool = True
    accuracy_threshold: float = Field(0.75, ge=0, le=1, description="Online accuracy below this triggers")
    max_drop_percentage: float = Field(0.05, ge=0, le=1, description="Relative drop against the previous window")
    monitoring_window_hours: float = Field(24, gt=0)


class DriftTrigger(_Strict):
    enabled: bool = True
    feature_drift_threshold: float = Field(
        0.20, ge=0, le=1, description="Share of drifted features, each weighted by the live model's importance")
    prediction_drift_threshold: float = Field(0.15, ge=0, description="PSI of the served class shares")


class NegativeFeedbackTrigger(_Strict):
    enabled: bool = True
    max_negative_share: float = Field(
        0.25, ge=0, le=1, description="Share of sessions with negative feedback (rated 1–2, or naming another "
        "class than the one served) above which retraining is triggered")


class Triggers(_Strict):
    time_based: TimeTrigger = TimeTrigger()
    data_volume: VolumeTrigger = VolumeTrigger()
    performance: PerformanceTrigger = PerformanceTrigger()
    negative_feedback: NegativeFeedbackTrigger = NegativeFeedbackTrigger()
    drift: DriftTrigger = DriftTrigger()


Severity = Literal["high", "medium", "low"]


class MonitoringSeverities(_Strict):
    """Each anomaly rule's severity, which decides the action (the retraining guidelines): ``high`` → automatic
    rollback, ``medium`` → the version's traffic halved and an alert, ``low`` → an alert."""

    accuracy_drop: Severity = "high"
    latency_increase: Severity = "medium"
    error_rate: Severity = Field(
        "high", description="The guidelines give no severity; a candidate failing 2 % of its requests is rolled back")
    prediction_drift: Severity = "low"


class MonitoringRules(_Strict):
    """``retraining.monitoring``: the anomaly rules `efimero monitor` and the service's loop check per window."""

    window_minutes: float = Field(5, gt=0, description="Length of a monitoring window (the guidelines' 5 minutes)")
    min_sessions: int = Field(
        30, ge=1, description="Fewer judged sessions (or ratings) than this leave accuracy and engagement unmeasured")
    min_predictions: int = Field(
        100, ge=1, description="Fewer predictions than this leave latency, error rate and prediction drift unmeasured")
    accuracy_drop: float = Field(
        0.05, gt=0, le=1, description="Fall of online accuracy below the baseline's (absolute)")
    latency_increase_ms: float = Field(50, gt=0, description="Rise of the latency percentile above the baseline's")
    latency_percentile: Literal["p50", "p95", "p99"] = Field("p95", description="Which latency the rule compares")
    error_rate: float = Field(0.02, gt=0, le=1, description="Share of failed predictions (absolute, no baseline)")
    prediction_drift: float = Field(
        0.15, gt=0, description="PSI of the served classes against the version's predictions on its training data")
    severities: MonitoringSeverities = MonitoringSeverities()
    webhook_url: str | None = Field(None, pattern=r"^https?://\S+$", description="Alerts are POSTed here as JSON")
    webhook_timeout_s: float = Field(5.0, gt=0, le=60)


class IncrementalParameters(_Strict):
    min_samples: int = Field(100, ge=1)
    max_new_trees: int = Field(20, ge=1)
    learning_rate_factor: float = Field(0.8, gt=0, le=1)
    validation_split: float = Field(0.2, gt=0, lt=1)
    min_improvement_threshold: float = Field(
        0.01, ge=-1, description="Relative gain needed to save a version (negative accepts a loss)"
    )
    forgetting_tolerance: float = Field(0.02, ge=0, description="Allowed drop of the original test score")


class IncrementalStrategy(_Strict):
    max_days_since_last: float = Field(14, ge=0, description="Incremental only while the model is this recent")
    parameters: IncrementalParameters = IncrementalParameters()


class FullParameters(_Strict):
    hyperparameter_tuning: bool = False
    cv_folds: int = Field(5, ge=0)
    test_split: float = Field(0.2, gt=0, lt=1)
    include_training_data: bool = Field(False, description="Also train on the live model's training file")


class FullStrategy(_Strict):
    min_days_since_last: float = Field(21, ge=0, description="Full retraining once the model is this old")
    on_performance_trigger: bool = Field(True, description="Also on the negative-feedback trigger")
    on_drift_trigger: bool = True
    parameters: FullParameters = FullParameters()


class Strategies(_Strict):
    incremental: IncrementalStrategy = IncrementalStrategy()
    full: FullStrategy = FullStrategy()


class RetrainDeployment(_Strict):
    """How `efimero auto-retrain` deploys what it retrained (the retraining scripts' ``deployment``)."""

    auto_deploy: bool = False
    target: str = "staging"
    rollback_enabled: bool = True
    strategy: Literal["safe", "canary", "immediate"] = Field(
        "safe", description="safe: a rollout through 5, 10, 25, 50 and 100 %; canary: 5 % then 100 %; immediate: "
        "every visitor at once (the guidelines advise against it)")
    monitoring_duration_hours: float = Field(
        24, gt=0, description="How long a rollout watches the candidate before it serves everyone, spread evenly "
        "over its stages below 100 %")
    clock: Literal["wall", "store"] = Field(
        "wall", description="Time of the rollout's stage windows: the wall clock, or the newest visit in the store "
        "(simulated traffic)")


class DataCollection(_Strict):
    db_url: Annotated[str, ProjectRelative(sqlite=True)] = "sqlite:///data/efimero.db"
    min_session_duration: int = Field(10_000, ge=0, description="Shorter sessions are ignored (ms)")
    max_samples_per_collection: int = Field(10_000, ge=1)
    data_retention_days: int = Field(
        90, ge=1, le=36_500, description="`efimero store retain` deletes logs older than this many days")
    output_dir: ProjectPath = Path("data/production")
    labels: Literal["heuristic", "reward"] = Field(
        "heuristic", description="Training targets from behaviour rules, or the served labels weighted by reward / "
        "propensity (learning from rewards; needs logged decisions, best with exploration on)")


class ExplorationDefaults(_Strict):
    """What `efimero explore set` writes unless its flags say otherwise (the guardrails always come from here)."""

    mode: ExplorationMode = "epsilon_greedy"
    epsilon: float = Field(0.1, ge=0, le=1, description="Share of explored slot choices (epsilon_greedy)")
    temperature: float = Field(1.0, gt=0, le=100, description="Softmax temperature (softmax)")
    holdout_share: float = Field(0.05, ge=0, lt=1, description="Share of visitors never explored")
    guardrails: tuple[Guardrail, ...] = ()


class OfflineGate(_Strict):
    """The off-policy check a rollout may require before its first canary stage."""

    required: bool = Field(False, description="Refuse a rollout whose candidate cannot be estimated or looks worse")
    estimator: Literal["dr", "snips", "ips"] = "dr"
    margin: float = Field(0.02, ge=0, le=1, description="Largest tolerated shortfall of the estimate against live")
    min_effective_sample_size: float = Field(100, gt=0, description="Fewer effective visits: the check cannot run")
    window_days: float = Field(7, gt=0, description="Logged visits of this many days before the newest one")


class BanditSettings(_Strict):
    """Rewards, exploration and off-policy evaluation of the served style (``retraining.bandit``)."""

    reward: RewardFunction = RewardFunction()
    exploration: ExplorationDefaults = ExplorationDefaults()
    offline_gate: OfflineGate = OfflineGate()


NotificationEvent = Literal["failure", "success", "alert"]
"""What an e-mail is sent for: a failed or a successful `efimero auto-retrain` run, or new monitoring alerts."""

EmailAddress = Annotated[str, Field(pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+$", description="A bare address: a@example.com")]


class SmtpSettings(_Strict):
    """The SMTP server notifications go through (``retraining.notifications.smtp``); no ``host``: none are sent.

    Give the password as ``EFIMERO_RETRAINING__NOTIFICATIONS__SMTP__PASSWORD`` rather than in the file: it is a
    :class:`~pydantic.SecretStr`, shown as ``**********`` in every dump, repr and log.
    """

    host: str = Field("", description="SMTP server name or address; empty turns e-mail off")
    port: int | None = Field(
        None, ge=1, le=65535, description="Default: 465 with ssl, 587 with starttls, else 25")
    username: str | None = Field(None, description="Log in as this user (AUTH); none sends without logging in")
    password: SecretStr | None = Field(
        None, description="Prefer EFIMERO_RETRAINING__NOTIFICATIONS__SMTP__PASSWORD to writing it in the file")
    ssl: bool = Field(False, description="TLS from the first byte (SMTPS, port 465)")
    starttls: bool = Field(False, description="Upgrade the connection with STARTTLS before logging in (port 587)")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Connect and per-command timeout")
    from_address: EmailAddress = Field("efimero@localhost", description="The sender (From)")

    @field_validator("starttls")
    @classmethod
    def _one_kind_of_tls(cls, starttls: bool, info: ValidationInfo) -> bool:
        # on this field, not the model: an error at the model would quote the password's variable
        if starttls and info.data.get("ssl"):
            raise ValueError("starttls must be false when ssl is true (ssl is TLS from the start, starttls an "
                             "upgrade of a plain connection). Got both true instead; keep one.")
        return starttls

    @property
    def effective_port(self) -> int:
        """``port``, else the usual port of the connection kind: 465 (ssl), 587 (starttls) or 25."""
        return self.port or (465 if self.ssl else 587 if self.starttls else 25)


class NotificationSettings(_Strict):
    """E-mail on `efimero auto-retrain` failures and successes and on monitoring alerts (``retraining.notifications``).

    Off, so nothing is sent and nothing fails, while ``smtp.host`` or ``to`` is empty (the default).
    Write ``on`` quoted in YAML (``"on": [failure]``): YAML 1.1 reads a bare ``on`` as ``true``.
    """

    smtp: SmtpSettings = SmtpSettings()
    to: tuple[EmailAddress, ...] = Field((), description="Recipients; empty turns e-mail off")
    on: tuple[NotificationEvent, ...] = Field(
        ("failure", "success", "alert"), description="The events that send an e-mail")
    subject_prefix: str = Field("[efimero]", max_length=100, pattern=r"^[^\r\n]*$")

    @property
    def enabled(self) -> bool:
        """Whether e-mail is configured at all: a server and at least one recipient."""
        return bool(self.smtp.host and self.to)


class RetrainingSettings(_Strict):
    models_dir: ProjectPath = Path("models")
    triggers: Triggers = Triggers()
    strategies: Strategies = Strategies()
    deployment: RetrainDeployment = RetrainDeployment()
    data_collection: DataCollection = DataCollection()
    monitoring: MonitoringRules = MonitoringRules()
    bandit: BanditSettings = BanditSettings()
    notifications: NotificationSettings = NotificationSettings()


class RetrainingConfig(Settings):
    """The whole of ``config/retraining.yaml``; variables ``EFIMERO_RETRAINING__*``."""

    retraining: RetrainingSettings = RetrainingSettings()


_RETRAINING_GUIDE = Dialect(
    renames={"retraining.deployment.deployment_strategy": "retraining.deployment.strategy"},
    conditions={
        "retraining.strategies.incremental.conditions": {"time_since_last_days": ("<=", "max_days_since_last")},
        "retraining.strategies.full.conditions": {
            "performance_trigger": ("bool", "on_performance_trigger"),
            "drift_trigger": ("bool", "on_drift_trigger"),
            "time_since_last_days": (">=", "min_days_since_last"),
        },
    },
    hints={
        "retraining.strategies.incremental.conditions.data_volume_trigger": "Incremental retraining runs on any "
        "fired trigger while the model is recent and no full-retraining condition holds.",
        "retraining.validation.performance_tests": "Every retrained version passes the checks of `efimero validate`.",
        "retraining.validation.quality_checks": "Collected data is validated against the schema before retraining.",
        "retraining.notifications.True": "YAML 1.1 reads a bare `on` as true: quote the key, "
        "\"on\": [failure, success, alert].",
    },
)


def load_retraining_config(
    path: str | Path | None = None, *, overrides: dict[str, Any] | None = None
) -> RetrainingConfig:
    """Load ``retraining.yaml`` (``path``, else from the config directory), the environment and nested ``overrides``.

    The retraining scripts' file loads too: its strategy ``conditions`` are read as efimero's
    keys and its other extra keys are ignored with a warning (see the module docstring).

    Raises:
        ConfigError: the file is missing (when named), not YAML, a key is misspelt, or a value of
            the file, a variable or an override is invalid.

    Example:
        >>> load_retraining_config(overrides={"retraining": {"deployment": {"target": "production"}}}
        ...                        ).retraining.deployment.target
        'production'
    """
    return load(RetrainingConfig, path=path, name="retraining.yaml", overrides=overrides, dialect=_RETRAINING_GUIDE)
