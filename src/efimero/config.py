"""Pydantic models for the YAML files under ``config/``.

Precedence lives in one place, :func:`load_training_config`: built-in defaults < YAML file <
explicit overrides (the CLI flags). Every model forbids unknown keys so a typo is an error
that names the file and the dotted key, not a silently ignored setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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


class TrainingSettings(_Strict):
    data: DataSettings = DataSettings()
    preprocessing: dict[str, Any] = Field(default_factory=lambda: {"scaling": "standard"})
    models: ModelSettings = ModelSettings()
    tuning: TuningSettings = TuningSettings()
    n_jobs: int = Field(-1, description="Threads per model; -1 uses every core")
    device: Literal["cpu", "cuda"] = "cpu"

    @model_validator(mode="after")
    def _standard_scaling(self) -> TrainingSettings:
        if self.preprocessing != {"scaling": "standard"}:
            raise ValueError(f"preprocessing must be {{scaling: standard}}. Got {self.preprocessing} instead.")
        return self


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


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_training_config(
    path: str | Path | None = None, *, overrides: dict[str, Any] | None = None
) -> TrainingConfig:
    """Load ``config/training.yaml`` (or ``path``) and apply nested ``overrides``.

    With no ``path``, ``config/training.yaml`` is read when it exists, else defaults apply.

    Example:
        >>> cfg = load_training_config(overrides={"training": {"data": {"cv_folds": 3}}})
        >>> cfg.training.data.cv_folds
        3
    """
    return _load(TrainingConfig, path, DEFAULT_TRAINING_CONFIG, overrides or {})


_Model = TypeVar("_Model", bound=BaseModel)


def _load(model: type[_Model], path: str | Path | None, default: Path, overrides: dict[str, Any]) -> _Model:
    """Defaults < YAML file < overrides, validated; errors name the file and the dotted key."""
    source = Path(path) if path is not None else default
    if path is not None and not source.is_file():
        raise ConfigError(f"{source}: no such config file.")
    content = _read_yaml(source) if source.is_file() else {}
    content = _merge(content, overrides)
    try:
        return model.model_validate(content)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{source}: invalid configuration: {problems}") from exc


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
    """Load ``config/environments.yaml`` (or ``path``); defaults when absent and not named."""
    return _load(EnvironmentsConfig, path, DEFAULT_ENVIRONMENTS_CONFIG, {})


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


def load_retraining_config(
    path: str | Path | None = None, *, overrides: dict[str, Any] | None = None
) -> RetrainingConfig:
    """Load ``config/retraining.yaml`` (or ``path``) with nested ``overrides``."""
    return _load(RetrainingConfig, path, DEFAULT_RETRAINING_CONFIG, overrides or {})
