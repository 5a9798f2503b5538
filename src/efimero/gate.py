"""The validation gate: can this registry version be trusted with live traffic?

Checks, in order (a failed load stops the rest):

1. ``loading``: the version loads and every checksum of its manifest matches;
2. ``prediction``: realistic sample features give labels the models know and finite values
   inside the schema's ranges;
3. ``performance``: average and p95 latency of single predictions under the thresholds;
4. ``accuracy`` (with test data): mean class accuracy and mean R² at or above the thresholds,
   each class target above its majority-class baseline. Without test data and with
   ``recorded_metrics``, the same rules are applied to the test metrics saved with the version.
   Test data holding a class label the version was never trained on fails this check with an
   :class:`~efimero.errors.UnseenLabelsError` (file, column, those labels, the known ones):
   the version has no probability for such rows, so no accuracy of it on that file is honest.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from efimero.config import ValidationSettings
from efimero.css import tokens_of
from efimero.data.generate import generate_dataset
from efimero.data.validate import load_training_data
from efimero.errors import MAX_LISTED, EfimeroError, UnseenLabelsError, ValidationFailure
from efimero.registry import Registry
from efimero.schema import TabularTask
from efimero.training import ModelBundle, evaluate, summary_scores

SAMPLE_SEED = 20261125


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"


@dataclass(frozen=True)
class GateReport:
    """Results of every check of one version; ``passed`` only when all passed."""

    models_dir: str
    version: str | None
    checks: list[CheckResult]

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "models_dir": self.models_dir,
            "version": self.version,
            "passed": self.passed,
            "checks": [asdict(check) | {"status": check.status} for check in self.checks],
        }


def _check_predictions(bundle: ModelBundle, samples: pd.DataFrame, task: TabularTask) -> CheckResult:
    predicted = bundle.predict_frame(samples)
    problems = []
    for class_target in task.class_targets:
        unknown = set(predicted[class_target.name]) - set(class_target.labels)
        if unknown:
            problems.append(f"{class_target.name} predicted unknown labels {sorted(unknown)}")
    for target in task.regression_targets:
        values = predicted[target.name].to_numpy(float)
        if not np.isfinite(values).all():
            problems.append(f"{target.name} has non-finite values")
        elif values.min() < target.minimum or values.max() > target.maximum:
            problems.append(
                f"{target.name} must lie in [{target.minimum}, {target.maximum}]. "
                f"Got [{values.min():.3g}, {values.max():.3g}] instead"
            )
    if problems:
        return CheckResult("prediction", False, "; ".join(problems))
    return CheckResult("prediction", True, f"{len(samples)} sample rows → labels and values in schema")


def _check_latency(bundle: ModelBundle, samples: pd.DataFrame, settings: ValidationSettings) -> CheckResult:
    rows = cast(list[dict[str, Any]], samples.to_dict(orient="records"))  # columns are feature names
    bundle.predict(rows[0])  # warm-up
    timings = []
    for row in rows:
        started = time.perf_counter()
        bundle.predict(row)
        timings.append((time.perf_counter() - started) * 1000)
    avg, p95 = float(np.mean(timings)), float(np.percentile(timings, 95))
    passed = avg <= settings.max_avg_latency_ms and p95 <= settings.max_p95_latency_ms
    detail = (
        f"single prediction avg {avg:.3f} ms (limit {settings.max_avg_latency_ms:g}), "
        f"p95 {p95:.3f} ms (limit {settings.max_p95_latency_ms:g}) over {len(rows)} samples"
    )
    return CheckResult("performance", passed, detail, {"avg_ms": avg, "p95_ms": p95, "samples": len(rows)})


def _accuracy_result(metrics: dict[str, Any], settings: ValidationSettings, source: str) -> CheckResult:
    scores = summary_scores(metrics)
    problems = []
    accuracy, r2 = scores.get("mean_accuracy"), scores.get("mean_r2")
    if accuracy is not None and accuracy < settings.min_accuracy:
        problems.append(f"mean accuracy must be ≥ {settings.min_accuracy:g}. Got {accuracy:.3f} instead")
    if r2 is not None and r2 < settings.min_r2:
        problems.append(f"mean R² must be ≥ {settings.min_r2:g}. Got {r2:.3f} instead")
    for target, values in metrics["classification"].items():
        if values["accuracy"] <= values["baseline_accuracy"]:
            problems.append(
                f"{target} accuracy {values['accuracy']:.3f} does not beat the majority baseline "
                f"{values['baseline_accuracy']:.3f}"
            )
    detail = f"mean accuracy {accuracy:.3f}, mean R² {r2:.3f} on {source}"
    return CheckResult("accuracy", not problems, "; ".join(problems) or detail, {"summary": scores, "metrics": metrics})


def require_known_labels(bundle: ModelBundle, frame: pd.DataFrame, source: str) -> None:
    """Refuse labelled rows whose class labels ``bundle`` was never trained on.

    A classifier knows only the labels present in its training rows, so a rare class can be
    valid in the schema yet unknown to a version. Scoring such rows would either crash inside
    the metrics or quietly depend on how they are counted; naming them lets the user decide.
    Rows are reported as 1-based data rows of ``source`` (``frame``'s index is the row position).

    Raises:
        UnseenLabelsError: per class column, the unseen labels, their rows and the known labels.
    """
    failures = []
    for model in bundle.models.values():
        if model.labels is None:  # a regressor
            continue
        column = frame[model.targets[0]]
        unseen = ~column.isin(model.labels)
        if unseen.any():
            rows = [int(i) + 1 for i in frame.index[unseen.to_numpy()]]
            known = ", ".join(map(repr, model.labels))
            failures.append(ValidationFailure(
                model.targets[0], f"must be one of the labels {bundle.version} knows ({known})",
                rows[:MAX_LISTED], sorted(set(column[unseen])), count=len(rows),
            ))
    if failures:
        raise UnseenLabelsError(source, bundle.version, failures)


def _check_accuracy(bundle: ModelBundle, test_data: Path, settings: ValidationSettings,
                    task: TabularTask) -> CheckResult:
    frame, _ = load_training_data(test_data, task=task, allow_duplicates=True)
    require_known_labels(bundle, frame, str(test_data))
    return _accuracy_result(evaluate(bundle, frame), settings, f"{len(frame)} rows of {test_data}")


def run_validation(
    models_dir: str | Path,
    *,
    version: str | None = None,
    test_data: str | Path | None = None,
    settings: ValidationSettings | None = None,
    task: TabularTask | None = None,
    recorded_metrics: bool = False,
) -> GateReport:
    """Run the validation suite on one version (the current one by default).

    ``task`` defaults to the one of the style tokens the version was trained on (:func:`efimero.css.tokens_of`).

    Example:
        >>> report = run_validation("models/", test_data="data/test.csv")  # doctest: +SKIP
        >>> report.passed
        True
    """
    settings = settings or ValidationSettings()
    registry = Registry(models_dir)
    try:
        bundle = registry.load(version)
    except EfimeroError as exc:
        return GateReport(str(models_dir), version, [CheckResult("loading", False, str(exc))])
    checks = [CheckResult("loading", True, f"{bundle.version}: {len(bundle.models)} models, checksums verified")]
    task = task or tokens_of(bundle.metadata).task
    samples = generate_dataset(settings.latency_samples, seed=SAMPLE_SEED)[task.feature_names]
    checks.append(_check_predictions(bundle, samples, task))
    checks.append(_check_latency(bundle, samples, settings))
    if test_data is not None:
        try:
            checks.append(_check_accuracy(bundle, Path(test_data), settings, task))
        except EfimeroError as exc:
            checks.append(CheckResult("accuracy", False, str(exc)))
    elif recorded_metrics:
        n_rows = bundle.metrics.get("n_rows", "?")
        checks.append(_accuracy_result(bundle.metrics, settings,
                                       f"the {n_rows} test rows recorded with {bundle.version}"))
    return GateReport(str(models_dir), bundle.version, checks)
