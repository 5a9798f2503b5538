"""Pydantic models for the YAML files under ``config/``.

Precedence lives in one place, :func:`~efimero._config_reader.load_model`: built-in defaults < YAML file < explicit
overrides (the CLI flags). Every model forbids unknown keys, and the loaders read a file in
three steps before validating it:

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
naming the file and the dotted key (the guide's key where it was mapped). Overrides are
efimero's own keys and are never mapped or ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from efimero._config_reader import Dialect, load_model
from efimero.errors import ConfigError

DEFAULT_TRAINING_CONFIG = Path("config/training.yaml")


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

    @model_validator(mode="after")
    def _known_params(self) -> TuningSettings:
        known = set(XGBoostParams.model_fields) - {"early_stopping_rounds"}
        for source, names in (("grid", self.grid), ("search_space", self.search_space)):
            unknown = sorted(set(names) - known)
            if unknown:
                raise ValueError(
                    f"{source} may only name {', '.join(sorted(known))}. Got {', '.join(unknown)} instead."
                )
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
    model_dir: Path = Path("models")
    max_versions_to_keep: int = Field(10, ge=1)


class ValidationSettings(_Strict):
    latency_samples: int = Field(100, ge=10, description="Single predictions timed by the speed check")
    max_avg_latency_ms: float = Field(100.0, gt=0)
    max_p95_latency_ms: float = Field(100.0, gt=0)
    min_accuracy: float = Field(0.7, ge=0, le=1, description="Mean accuracy of the class targets")
    min_r2: float = Field(0.3, le=1, description="Mean R² of the regression targets")


class TrainingConfig(_Strict):
    """The whole of ``config/training.yaml``."""

    training: TrainingSettings = TrainingSettings()
    registry: RegistrySettings = RegistrySettings()
    validation: ValidationSettings = ValidationSettings()


def load_training_config(
    path: str | Path | None = None, *, overrides: dict[str, Any] | None = None
) -> TrainingConfig:
    """Load ``config/training.yaml`` (or ``path``) and apply nested ``overrides``.

    With no ``path``, ``config/training.yaml`` is read when it exists, else defaults apply.
    The training scripts guide's file loads too (see the module docstring for its keys).

    Raises:
        ConfigError: the file is missing (when named), not YAML, or a key is misspelt or invalid.

    Example:
        >>> cfg = load_training_config(overrides={"training": {"data": {"cv_folds": 3}}})
        >>> cfg.training.data.cv_folds
        3
    """
    return load_model(TrainingConfig, path, DEFAULT_TRAINING_CONFIG, overrides or {}, dialect=_TRAINING_GUIDE)


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
DEFAULT_ENVIRONMENTS_CONFIG = Path("config/environments.yaml")


class PerformanceThreshold(_Strict):
    latency_ms: float = Field(100.0, gt=0, description="Max average and p95 single-prediction latency")
    accuracy_min: float = Field(0.0, ge=0, le=1, description="Min mean accuracy of the class targets")
    r2_min: float = Field(0.0, le=1, description="Min mean R² of the regression targets")


class MonitoringSettings(_Strict):
    enabled: bool = False
    alert_threshold: float = Field(0.05, gt=0, le=1, description="Accuracy drop that raises an alert")


class Environment(_Strict):
    model_dir: Path
    validation_required: bool = False
    backup_enabled: bool = False
    rollback_enabled: bool = True
    max_versions_to_keep: int = Field(10, ge=2, description="Versions kept in the target (current and previous always)")
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


class EnvironmentsConfig(_Strict):
    """The whole of ``config/environments.yaml``."""

    environments: dict[str, Environment] = Field(default_factory=_default_environments)

    def get(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments))
            raise ConfigError(f"target must be one of {known}. Got {name!r} instead.") from None


def load_environments_config(path: str | Path | None = None) -> EnvironmentsConfig:
    """Load ``config/environments.yaml`` (or ``path``); defaults when absent and not named.

    The training scripts guide's file loads as printed. Keys efimero does not use warn with
    :class:`ConfigKeyIgnoredWarning` and are ignored; misspellings are errors (module docstring).

    Raises:
        ConfigError: the file is missing (when named), not YAML, or a key is misspelt or invalid.
    """
    return load_model(EnvironmentsConfig, path, DEFAULT_ENVIRONMENTS_CONFIG, {})


# -- config/retraining.yaml ----------------------------------------------------------------
DEFAULT_RETRAINING_CONFIG = Path("config/retraining.yaml")


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
    auto_deploy: bool = False
    target: str = "staging"
    rollback_enabled: bool = True


class DataCollection(_Strict):
    db_url: str = "sqlite:///data/efimero.db"
    min_session_duration: int = Field(10_000, ge=0, description="Shorter sessions are ignored (ms)")
    max_samples_per_collection: int = Field(10_000, ge=1)
    output_dir: Path = Path("data/production")


class RetrainingSettings(_Strict):
    models_dir: Path = Path("models")
    triggers: Triggers = Triggers()
    strategies: Strategies = Strategies()
    deployment: RetrainDeployment = RetrainDeployment()
    data_collection: DataCollection = DataCollection()


class RetrainingConfig(_Strict):
    """The whole of ``config/retraining.yaml``."""

    retraining: RetrainingSettings = RetrainingSettings()


_RETRAINING_GUIDE = Dialect(
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
        "retraining.deployment.deployment_strategy": "efimero deploys one way: contract check, validation, "
        "backup, smoke test, rollback on failure.",
        "retraining.data_collection.data_retention_days": "Prune old logs with `efimero store prune --older-than`.",
        "retraining.validation.performance_tests": "Every retrained version passes the checks of `efimero validate`.",
        "retraining.validation.quality_checks": "Collected data is validated against the schema before retraining.",
    },
)


def load_retraining_config(
    path: str | Path | None = None, *, overrides: dict[str, Any] | None = None
) -> RetrainingConfig:
    """Load ``config/retraining.yaml`` (or ``path``) with nested ``overrides``.

    The retraining scripts' file loads too: its strategy ``conditions`` are read as efimero's
    keys and its other extra keys are ignored with a warning (see the module docstring).

    Raises:
        ConfigError: the file is missing (when named), not YAML, or a key is misspelt or invalid.

    Example:
        >>> load_retraining_config(overrides={"retraining": {"deployment": {"target": "production"}}}
        ...                        ).retraining.deployment.target
        'production'
    """
    return load_model(RetrainingConfig, path, DEFAULT_RETRAINING_CONFIG, overrides or {}, dialect=_RETRAINING_GUIDE)
