"""Side-by-side comparison of two model versions on the same labelled test data.

Each version predicts the test rows once; everything reuses those predictions: accuracy,
macro-F1 and log-loss per class target, RMSE, MAE and R² per regression target; a paired
bootstrap CI of B − A of the primary metric (accuracy: higher is better; RMSE: lower is better);
McNemar's test per classifier; single-row latency (A and B interleaved); and a verdict
("B better", "no significant difference", "B worse") with the rule that decided it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import f1_score, mean_absolute_error, r2_score

from efimero import tracking
from efimero._report import Html, image_tag, save_figure, table, write_report
from efimero.bundle import ModelBundle, TrainedModel
from efimero.data.validate import load_training_data
from efimero.errors import ComparisonError, DataError, EfimeroError, format_list

logger = logging.getLogger(__name__)

B_BETTER, NO_DIFFERENCE, B_WORSE = "B better", "no significant difference", "B worse"
Outcome = Literal["better", "worse", "no difference"]
EXACT_BELOW = 25  # McNemar: exact binomial test when b + c is below this, chi-squared otherwise
_BOOTSTRAP_CELLS = 4_000_000  # resample counts held at once (replicates × rows): bounded memory


@dataclass(frozen=True)
class Difference:
    """B − A of a target's primary metric: on all rows, bootstrap mean and percentile CI."""

    metric: str
    higher_is_better: bool
    observed: float
    mean: float
    low: float
    high: float
    ratio: tuple[float, float, float] | None = None  # regression: RMSE B/A on all rows, CI low, CI high


@dataclass(frozen=True)
class McNemar:
    """Paired test of two classifiers: b = A right & B wrong, c = A wrong & B right."""

    b: int
    c: int
    statistic: float
    p_value: float
    method: str


@dataclass(frozen=True)
class TargetComparison:
    target: str
    kind: Literal["classification", "regression"]
    metrics_a: dict[str, float]
    metrics_b: dict[str, float]
    difference: Difference
    mcnemar: McNemar | None
    outcome: Outcome


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p95_ms: float
    mean_ms: float
    samples: int


@dataclass(frozen=True)
class Comparison:
    """Everything `efimero compare` measured, the verdict and the rule behind it."""

    version_a: str | None
    version_b: str | None
    test_data: str
    n_rows: int
    n_bootstrap: int
    confidence: float
    seed: int
    targets: list[TargetComparison]
    latency: dict[str, Latency]
    verdict: str
    rule: str
    reasons: list[str] = field(default_factory=list)

    def group(self, kind: str) -> list[TargetComparison]:
        return [t for t in self.targets if t.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _targets(bundle: ModelBundle) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {"classification": set(), "regression": set()}
    for model in bundle.models.values():
        found["classification" if model.kind == "classifier" else "regression"].update(model.targets)
    return found


def _check_comparable(a: ModelBundle, b: ModelBundle, frame: pd.DataFrame, source: str) -> None:
    """Raise when A and B do not predict the same targets from the same features."""
    targets_a, targets_b = _targets(a), _targets(b)
    problems = []
    for what, in_a, in_b in (("feature names", set(a.feature_names), set(b.feature_names)),
                             ("classification targets", targets_a["classification"], targets_b["classification"]),
                             ("regression targets", targets_a["regression"], targets_b["regression"])):
        if in_a != in_b:
            problems.append(f"{what} differ (only in A: {format_list(sorted(in_a - in_b)) or 'none'}; "
                            f"only in B: {format_list(sorted(in_b - in_a)) or 'none'})")
    if problems:
        raise ComparisonError(f"versions {a.version} (A) and {b.version} (B) cannot be compared: "
                              f"{'; '.join(problems)}. Compare two versions trained for the same task and schema.")
    missing = sorted(set(a.feature_names).union(*targets_a.values()) - set(frame.columns))
    if missing:
        raise DataError(f"{source}: lacks column(s) both versions need: {format_list(missing)}.")


def _by_target(bundle: ModelBundle, outputs: dict[str, np.ndarray]) -> dict[str, tuple[TrainedModel, np.ndarray]]:
    """Per target: its model and its output (class probabilities (n, labels) or values (n,))."""
    models = bundle.models.items()
    found = {model.targets[0]: (model, outputs[name]) for name, model in models if model.kind == "classifier"}
    return found | {target: (model, outputs[name][:, i]) for name, model in models if model.kind == "regressor"
                    for i, target in enumerate(model.targets)}


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> McNemar:
    """McNemar's test on paired correctness; p = 1 when A and B never disagree.

    Example:
        >>> mcnemar(np.array([True, True, False]), np.array([True, False, True])).p_value
        1.0
    """
    b = int(np.sum(correct_a & ~correct_b))
    c = int(np.sum(~correct_a & correct_b))
    if b + c < EXACT_BELOW:
        p_value = float(stats.binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0
        return McNemar(b, c, float(min(b, c)), p_value, "exact binomial")
    statistic = (abs(b - c) - 1) ** 2 / (b + c)
    return McNemar(b, c, float(statistic), float(stats.chi2.sf(statistic, df=1)), "chi-squared (continuity-corrected)")


def paired_bootstrap(correct: tuple[np.ndarray, np.ndarray], squared: tuple[np.ndarray, np.ndarray], *,
                     n_bootstrap: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample rows with replacement ``n_bootstrap`` times, the same rows for A and B.

    ``correct`` holds A's and B's 0/1 matrices (rows, class targets) of correct predictions,
    ``squared`` their squared errors (rows, regression targets). Returns, one row per replicate,
    the accuracy differences B − A, the RMSE differences B − A and the RMSE ratios B/A.
    """
    n, rng = len(correct[0]), np.random.default_rng(seed)
    delta_correct = correct[1] - correct[0]
    accuracy, rmse_diff, rmse_ratio = [], [], []
    block = max(1, _BOOTSTRAP_CELLS // n)
    for start in range(0, n_bootstrap, block):
        size = min(block, n_bootstrap - start)
        rows = rng.integers(0, n, size=(size, n))
        weights = np.bincount((rows + (np.arange(size) * n)[:, None]).ravel(), minlength=size * n).reshape(size, n) / n
        accuracy.append(weights @ delta_correct)
        rmse_a, rmse_b = np.sqrt(weights @ squared[0]), np.sqrt(weights @ squared[1])
        rmse_diff.append(rmse_b - rmse_a)
        with np.errstate(divide="ignore", invalid="ignore"):
            rmse_ratio.append(np.where(rmse_a > 0, rmse_b / rmse_a, np.nan))
    return np.vstack(accuracy), np.vstack(rmse_diff), np.vstack(rmse_ratio)


def _outcome(difference: Difference, test: McNemar | None, alpha: float) -> Outcome:
    """'better'/'worse' when the CI excludes 0 (and McNemar agrees for classifiers), else 'no difference'."""
    better = difference.low > 0 if difference.higher_is_better else difference.high < 0
    worse = difference.high < 0 if difference.higher_is_better else difference.low > 0
    agrees = test is None or (test.p_value < alpha and (test.c > test.b) == better)
    return "better" if better and agrees else "worse" if worse and agrees else "no difference"


def verdict_rule(confidence: float) -> str:
    """The decision rule in words, as reported beside every verdict."""
    level, alpha = f"{confidence:.0%}", f"{1 - confidence:.3g}"
    return (
        f"A target is significantly better for B when the {level} paired-bootstrap CI of B − A lies entirely "
        f"on B's better side (accuracy above 0 for class targets, RMSE below 0 for regression targets) and, for "
        f"class targets, McNemar's p < {alpha} with B right more often than A (c > b); significantly worse "
        f"symmetrically. Verdict: '{B_WORSE}' if any target is significantly worse (a regression anywhere blocks "
        f"promotion); '{B_BETTER}' if at least one target is significantly better and none is worse; otherwise "
        f"'{NO_DIFFERENCE}'. Latency is reported but is not part of the verdict."
    )


def _latency(a: ModelBundle, b: ModelBundle, rows: list[dict[str, Any]]) -> dict[str, Latency]:
    """Single-row prediction times, A and B alternating which goes first."""
    a.predict(rows[0]), b.predict(rows[0])  # warm-up
    timings: dict[str, list[float]] = {"a": [], "b": []}
    for index, row in enumerate(rows):
        for key in ("a", "b") if index % 2 == 0 else ("b", "a"):
            started = time.perf_counter()
            (a if key == "a" else b).predict(row)
            timings[key].append((time.perf_counter() - started) * 1000)
    return {key: Latency(float(np.percentile(v, 50)), float(np.percentile(v, 95)), float(np.mean(v)), len(v))
            for key, v in timings.items()}


def _paired_scores(bundles: tuple[ModelBundle, ModelBundle], frame: pd.DataFrame) -> tuple[dict, tuple, tuple]:
    """Metrics of A and B per target (and McNemar), from one vectorised prediction per version.

    Returns ``{kind: {target: (metrics_a, metrics_b, mcnemar | None)}}`` and the (A, B) matrices of correct
    predictions and of squared errors. Macro-F1 averages over the labels in the test data; a true label
    a model never saw gets probability 0 (clipped at 1e-15) in its log-loss.
    """
    predictions = [_by_target(bundle, bundle.predict_outputs(frame)) for bundle in bundles]
    kinds = _targets(bundles[0])
    scores: dict[str, dict[str, tuple]] = {"classification": {}, "regression": {}}
    correct: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    squared: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for target in (t for t in frame.columns if t in kinds["classification"]):
        truth = frame[target].to_numpy(dtype=object)
        metrics = []
        for side, by_target in enumerate(predictions):
            model, probabilities = by_target[target]
            labels = np.asarray(model.labels, dtype=object)
            codes = pd.Categorical(truth, categories=labels).codes
            p_true = np.where(codes >= 0, probabilities[np.arange(len(truth)), np.maximum(codes, 0)], 0.0)
            predicted = labels[probabilities.argmax(axis=1)]
            correct[side].append(predicted == truth)
            f1 = f1_score(truth, predicted, average="macro", labels=sorted(set(truth)), zero_division=0)
            metrics.append({"accuracy": float(correct[side][-1].mean()), "macro_f1": float(f1),
                            "log_loss": float(-np.log(np.clip(p_true, 1e-15, 1.0)).mean())})
        scores["classification"][target] = (*metrics, mcnemar(correct[0][-1], correct[1][-1]))
    for target in (t for t in frame.columns if t in kinds["regression"]):
        truth = frame[target].to_numpy(dtype=float)
        metrics = []
        for side, by_target in enumerate(predictions):
            predicted = by_target[target][1]
            squared[side].append((predicted - truth) ** 2)
            metrics.append({"rmse": float(np.sqrt(squared[side][-1].mean())),
                            "mae": float(mean_absolute_error(truth, predicted)),
                            "r2": float(r2_score(truth, predicted))})
        scores["regression"][target] = (*metrics, None)
    empty = np.zeros((len(frame), 0))  # keeps the matrices 2-D when a kind has no targets

    def stacked(pair: tuple[list[np.ndarray], list[np.ndarray]]) -> tuple[np.ndarray, ...]:
        return tuple(np.column_stack([empty, *side]).astype(float) for side in pair)

    return scores, stacked(correct), stacked(squared)


def compare_versions(model_a: str | Path, model_b: str | Path, test_data: str | Path, *, n_bootstrap: int = 1000,
                     confidence: float = 0.95, seed: int = 0, latency_samples: int = 200) -> Comparison:
    """Compare version B with version A on labelled test data and give a verdict.

    Args:
        model_a: the reference version: a version directory or a registry (its current version).
        model_b: the candidate version, same forms.
        test_data: labelled CSV/JSON/Parquet file in the training schema.
        n_bootstrap: bootstrap replicates of each difference.
        confidence: level of the confidence intervals; McNemar's threshold is 1 − confidence.
        seed: seed of the bootstrap resampling (same seed, same intervals).
        latency_samples: test rows timed as single predictions for each version.

    Returns:
        Per-target metrics, differences with CIs, McNemar tests, latency, the verdict and its rule.

    Raises:
        EfimeroError: the arguments are out of range or the versions differ in features or targets.
        DataError: the test data cannot be read or breaks the schema.
        RegistryError: a version does not exist or fails its checksums.

    Example:
        >>> result = compare_versions("models/v1", "models/v2", "data/test.csv")  # doctest: +SKIP
        >>> result.verdict, result.rule  # doctest: +SKIP
        ('B better', 'A target is significantly better for B when ...')
    """
    if n_bootstrap < 1 or latency_samples < 1 or not 0 < confidence < 1:
        raise EfimeroError("n_bootstrap and latency_samples must be ≥ 1 and confidence strictly between 0 and 1. Got "
                           f"{n_bootstrap}, {latency_samples} and {confidence} instead.")
    bundles = (load_version(model_a), load_version(model_b))
    frame, _ = load_training_data(test_data, allow_duplicates=True)
    if len(frame) < 2:
        raise DataError(f"{test_data}: holds {len(frame)} row(s); a comparison needs at least 2 labelled rows.")
    _check_comparable(*bundles, frame, str(test_data))
    scores, correct, squared = _paired_scores(bundles, frame)
    boot_acc, boot_rmse, boot_ratio = paired_bootstrap(correct, squared, n_bootstrap=n_bootstrap, seed=seed)
    bounds = [50 * (1 - confidence), 50 * (1 + confidence)]
    results: list[TargetComparison] = []
    passes: tuple[tuple[Literal["classification", "regression"], np.ndarray, str], ...] = (
        ("classification", boot_acc, "accuracy"), ("regression", boot_rmse, "rmse"))
    for kind, boot, metric in passes:
        for column, (target, (metrics_a, metrics_b, test)) in enumerate(scores[kind].items()):
            low, high = np.percentile(boot[:, column], bounds)
            ratio = None
            if kind == "regression":
                ratios = boot_ratio[:, column][np.isfinite(boot_ratio[:, column])]
                ratio_ci = np.percentile(ratios, bounds) if ratios.size else (np.nan, np.nan)
                observed = metrics_b["rmse"] / metrics_a["rmse"] if metrics_a["rmse"] > 0 else np.nan
                ratio = (float(observed), float(ratio_ci[0]), float(ratio_ci[1]))
            difference = Difference(metric, kind == "classification", metrics_b[metric] - metrics_a[metric],
                                    float(boot[:, column].mean()), float(low), float(high), ratio)
            results.append(TargetComparison(target, kind, metrics_a, metrics_b, difference, test,
                                            _outcome(difference, test, 1 - confidence)))
    found = {word: [t.target for t in results if t.outcome == word] for word in ("worse", "better")}
    reasons = [f"significantly {word} for B: {', '.join(names)}" for word, names in found.items() if names]
    verdict = B_WORSE if found["worse"] else B_BETTER if found["better"] else NO_DIFFERENCE
    timed = frame[bundles[0].feature_names].head(latency_samples)
    samples = cast(list[dict[str, Any]], timed.to_dict(orient="records"))  # columns are feature names
    logger.info("compared %s (A) with %s (B): %s", bundles[0].version, bundles[1].version, verdict)
    comparison = Comparison(
        version_a=bundles[0].version, version_b=bundles[1].version, test_data=str(test_data), n_rows=len(frame),
        n_bootstrap=n_bootstrap, confidence=confidence, seed=seed, targets=results, latency=_latency(*bundles, samples),
        verdict=verdict, rule=verdict_rule(confidence), reasons=reasons or ["no target differs significantly"],
    )
    _track(comparison)
    return comparison


def _track(comparison: Comparison) -> None:
    """Log the comparison into the open tracking run (``compare.*``): the verdict, A's and B's metrics, B − A."""
    log = tracking.current()
    log.set_tags({"compare.verdict": comparison.verdict, "compare.version_a": comparison.version_a,
                  "compare.version_b": comparison.version_b})
    log.log_metrics({t.target: {"a": t.metrics_a, "b": t.metrics_b, "b_minus_a": asdict(t.difference)}
                     for t in comparison.targets}
                    | {"latency": {arm: asdict(latency) for arm, latency in comparison.latency.items()},
                       "n_rows": comparison.n_rows}, prefix="compare.")


def _errorbars(points: list[tuple[float, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(observed, low, high) triples → the observed values and matplotlib's asymmetric error bars."""
    values = np.array(points, dtype=float).reshape(-1, 3)
    return values[:, 0], np.vstack([values[:, 0] - values[:, 1], values[:, 2] - values[:, 0]]).clip(min=0)


def plot_comparison(comparison: Comparison, output_dir: str | Path) -> dict[str, Path]:
    """Write compare_accuracy.png (class targets) and compare_rmse.png (regression); return their paths."""
    import matplotlib.pyplot as plt

    (output_dir := Path(output_dir)).mkdir(parents=True, exist_ok=True)
    level, plots = f"{comparison.confidence:.0%} CI", {}
    classes, regression = comparison.group("classification"), comparison.group("regression")
    if classes:
        x, names = np.arange(len(classes)), [t.target for t in classes]
        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
        left.bar(x - 0.2, [t.metrics_a["accuracy"] for t in classes], 0.4, label=f"A ({comparison.version_a})")
        left.bar(x + 0.2, [t.metrics_b["accuracy"] for t in classes], 0.4, label=f"B ({comparison.version_b})")
        left.set(ylabel="accuracy", ylim=(0, 1.2), title="Accuracy per class target")
        left.legend(loc="upper center", ncol=2, fontsize="small")
        values, errors = _errorbars([(t.difference.observed, t.difference.low, t.difference.high) for t in classes])
        right.errorbar(x, values, yerr=errors, fmt="o", capsize=5)
        right.axhline(0, color="grey", linestyle="--", linewidth=1)
        right.set(ylabel="accuracy B − A", title=f"Difference B − A with {level}")
        for axis in (left, right):
            axis.set_xticks(x, names, rotation=20, ha="right")
        plots["accuracy"] = save_figure(figure, output_dir / "compare_accuracy.png")
    if regression:
        y = np.arange(len(regression))
        figure, axis = plt.subplots(figsize=(8, 0.5 * len(regression) + 1.8))
        values, errors = _errorbars([t.difference.ratio or (np.nan,) * 3 for t in regression])
        axis.errorbar(values, y, xerr=errors, fmt="o", capsize=5)
        axis.axvline(1, color="grey", linestyle="--", linewidth=1)
        axis.set(xlabel="RMSE of B / RMSE of A (below 1: B is better)",
                 title=f"RMSE ratio B/A per regression target with {level}")
        axis.set_yticks(y, [t.target for t in regression])
        axis.invert_yaxis()
        plots["rmse"] = save_figure(figure, output_dir / "compare_rmse.png")
    return plots


_CSS = {"better": "good", "worse": "bad", B_BETTER: "good", B_WORSE: "bad"}


def _cell(outcome: Outcome) -> str:
    return Html(f"<span class='{_CSS.get(outcome, 'neutral')}'>{outcome}</span>")


def _ci(d: Difference) -> str:
    return f"{d.observed:+.4g} [{d.low:+.4g}, {d.high:+.4g}]"


def export_report(comparison: Comparison, output_dir: str | Path, *,
                  plots: dict[str, Path] | None = None) -> tuple[Path, Path]:
    """Write compare.html (plots inline, tables, verdict and rule) and compare.json; return both paths.

    ``plots`` reuses what :func:`plot_comparison` wrote to ``output_dir``; by default they are drawn here.

    Example:
        >>> export_report(compare_versions("models/v1", "models", "test.csv"), "comparison/")  # doctest: +SKIP
    """
    plots = plot_comparison(comparison, output_dir) if plots is None else plots
    verdict = f"<p class='verdict {_CSS.get(comparison.verdict, 'neutral')}'>{comparison.verdict}</p>"
    sections = [("Verdict", f"{verdict}<p>{'; '.join(comparison.reasons)}.</p>"
                            f"<p class='meta'>Rule: {comparison.rule}</p>")]
    if classes := comparison.group("classification"):
        class_rows = [(t.target, t.metrics_a["accuracy"], t.metrics_b["accuracy"], _ci(t.difference),
                       t.metrics_a["macro_f1"], t.metrics_b["macro_f1"], t.metrics_a["log_loss"],
                       t.metrics_b["log_loss"], _cell(t.outcome)) for t in classes]
        sections.append(("Class targets", table(["target", "accuracy A", "accuracy B", "B − A [CI]", "macro-F1 A",
                                                 "macro-F1 B", "log-loss A", "log-loss B", "outcome"], class_rows)
                         + image_tag(plots["accuracy"], "accuracy of A and B")))
        tests = [(t.target, t.mcnemar.b, t.mcnemar.c, t.mcnemar.statistic, t.mcnemar.p_value, t.mcnemar.method)
                 for t in classes if t.mcnemar]
        sections.append(("McNemar tests", "<p>b: A right and B wrong; c: A wrong and B right.</p>"
                         + table(["target", "b", "c", "statistic", "p-value", "method"], tests)))
    if regression := comparison.group("regression"):
        regression_rows = [(t.target, t.metrics_a["rmse"], t.metrics_b["rmse"], _ci(t.difference),
                            "{:.3f} [{:.3f}, {:.3f}]".format(*(t.difference.ratio or (np.nan,) * 3)),
                            t.metrics_a["mae"], t.metrics_b["mae"], t.metrics_a["r2"], t.metrics_b["r2"],
                            _cell(t.outcome)) for t in regression]
        sections.append(("Regression targets", table(["target", "RMSE A", "RMSE B", "B − A [CI]", "B/A [CI]", "MAE A",
                                                      "MAE B", "R² A", "R² B", "outcome"], regression_rows)
                         + image_tag(plots["rmse"], "RMSE ratio B/A")))
    latency = [(f"{key.upper()} ({comparison.version_a if key == 'a' else comparison.version_b})",
                value.p50_ms, value.p95_ms, value.mean_ms, value.samples) for key, value in comparison.latency.items()]
    sections.append(("Latency of single predictions",
                     table(["version", "p50 ms", "p95 ms", "mean ms", "samples"], latency)
                     + "<p class='meta'>Reported only; not part of the verdict.</p>"))
    subtitle = (f"A = {comparison.version_a}, B = {comparison.version_b}; {comparison.n_rows} rows of "
                f"{comparison.test_data}; {comparison.n_bootstrap} bootstrap replicates, seed {comparison.seed}")
    payload = comparison.to_dict() | {"plots": {name: str(path) for name, path in plots.items()}}
    return write_report(Path(output_dir), "compare", "Model comparison", subtitle, sections, payload)


def load_version(path: str | Path) -> ModelBundle:
    """A version directory (holding MANIFEST.json) or a registry directory (its current version)."""
    from efimero.registry import Registry

    path = Path(path)
    if (path / "MANIFEST.json").is_file():
        return Registry(path.parent).load(path.name)
    return Registry(path).load()
