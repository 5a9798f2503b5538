"""The steps of the weekly retraining DAG (``dags/efimero_weekly.py``), one function per Airflow task.

ready → collect → validate → drift → retrain → compare → rollout. Each step takes and returns
small JSON-able values (paths, versions, verdicts), so Airflow can pass them between tasks as
XCom while each task runs in efimero's own interpreter. A step with nothing to do returns
``{"skip": "<why>"}``; the DAG turns that into a skipped task (and skips what follows).

Relative paths of the config (``models_dir``, ``db_url``, ``output_dir``) are read from the
working directory, as the CLI reads them: the DAG's tasks run in the project directory.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from efimero.config import RetrainingConfig, load_retraining_config

Result = dict[str, Any]


def _config(config: str | Path | RetrainingConfig | None) -> RetrainingConfig:
    return config if isinstance(config, RetrainingConfig) else load_retraining_config(config)


def ready(config: str | Path | RetrainingConfig | None = None) -> Result:
    """The shared readiness check (:func:`efimero.pipeline.readiness`); ``skip`` names why it is not ready."""
    from efimero.pipeline.ready import readiness

    checked = readiness(_config(config))
    result = checked.to_dict()
    if not checked.ready:
        result["skip"] = "; ".join(checked.reasons)
    return result


def collect_new(config: str | Path | RetrainingConfig | None = None) -> Result:
    """Collect the window into ``data_collection.output_dir``; the triggers and the strategy they choose."""
    from efimero.monitor.drift import reference_of
    from efimero.pipeline.auto import choose_strategy
    from efimero.pipeline.ready import collect_window, readiness_of
    from efimero.registry import Registry
    from efimero.retrain.triggers import days_since_training, evaluate

    settings = (loaded := _config(config)).retraining
    live = Registry(settings.models_dir).load()
    reference = reference_of(live)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    output = Path(settings.data_collection.output_dir) / f"weekly_{stamp}_{uuid.uuid4().hex[:6]}.csv"
    collected = collect_window(settings, reference, output=output)
    triggers = evaluate(settings.triggers, bundle=live, collected=collected, reference=reference)
    checked = readiness_of(settings, collected, live_version=live.version)
    result: Result = {
        "path": str(collected.output), "rows": len(collected.frame), "live_version": live.version,
        "strategy": choose_strategy(loaded, triggers, days_since_training(live, datetime.now(UTC))),
        "fired": [t.name for t in triggers if t.fired], "ready": checked.ready,
    }
    if not checked.quality_passed:  # the window changed since the readiness check
        result["skip"] = "; ".join(checked.reasons)
    return result


def validate(path: str | Path) -> Result:
    """Validate the collected file against the training schema (raises DataValidationError when it fails)."""
    from efimero._api import validate_data

    report = validate_data(path, allow_duplicates=True)
    return {"path": str(path), "rows": report.rows, "columns": report.columns, "warnings": report.warnings}


def drift(path: str | Path, live_version: str, config: str | Path | RetrainingConfig | None = None) -> Result:
    """The drift report of the collected file against the live version's training data, saved beside it."""
    from efimero.data import read_table
    from efimero.monitor import detect_drift
    from efimero.monitor.drift import reference_of
    from efimero.registry import Registry
    from efimero.schema import CSS_TASK

    settings = _config(config).retraining
    reference = reference_of(Registry(settings.models_dir).load(live_version))
    report_path = Path(path).with_name(f"{Path(path).stem}_drift.json")
    if reference.frame is None:
        result: Result = {"measured": False, "problem": reference.problem, "report": None}
    else:
        features = CSS_TASK.feature_names
        report = detect_drift(reference.frame[features], read_table(path)[features], importance=reference.importance)
        report_path.write_text(json.dumps(report.to_dict(), indent=2, default=str))
        result = {"measured": True, "drift_share": report.decision_share, "dataset_drift": report.dataset_drift,
                  "drifted_features": report.drifted_features, "report": str(report_path)}
    return result


def retrain(path: str | Path, strategy: str, config: str | Path | RetrainingConfig | None = None) -> Result:
    """Retrain by ``strategy`` on the collected file, then run the deployment gate on the new version."""
    from efimero.errors import EfimeroError
    from efimero.gate import run_validation
    from efimero.monitor.drift import reference_of
    from efimero.pipeline.auto import retrain_with_strategy
    from efimero.registry import Registry

    loaded = _config(config)
    models = Path(loaded.retraining.models_dir)
    live = Registry(models).load()
    result = retrain_with_strategy(loaded, strategy, Path(path), reference_of(live))
    out: Result = {"strategy": strategy, "status": result.status, "reason": result.reason,
                   "parent_version": result.parent_version or live.version, "version": result.version}
    if result.status != "success" or result.version is None:
        out["skip"] = f"retraining ended {result.status}: {result.reason}"
        return out
    report = run_validation(models, version=result.version)
    if not report.passed:
        raise EfimeroError(f"the retrained version {result.version} failed validation: {report.to_dict()['checks']}")
    return out


def compare(live_version: str, candidate: str, path: str | Path,
            config: str | Path | RetrainingConfig | None = None, *, n_bootstrap: int = 200) -> Result:
    """The candidate (B) against the live version (A) on the collected file; ``better`` when B is better."""
    from efimero.analysis.compare import B_BETTER, compare_versions
    from efimero.registry import Registry

    registry = Registry(_config(config).retraining.models_dir)
    comparison = compare_versions(registry.path(live_version), registry.path(candidate), path,
                                  n_bootstrap=n_bootstrap, latency_samples=20)
    return {"live_version": live_version, "candidate": candidate, "verdict": comparison.verdict,
            "better": comparison.verdict == B_BETTER, "rows": comparison.n_rows, "reasons": comparison.reasons}


def rollout(compared: Result, config: str | Path | RetrainingConfig | None = None) -> Result:
    """Start the configured rollout (``deployment.strategy`` to ``deployment.target``) of a better candidate."""
    from efimero.pipeline.auto import deploy_with_strategy

    if not compared.get("better"):
        return {"skip": f"the candidate is not better than the live version: {compared.get('verdict')}"}
    settings = _config(config).retraining
    return deploy_with_strategy(settings, Path(settings.models_dir), compared["candidate"])
