"""How much does efimero add to one prediction over calling the XGBoost boosters directly?

Trains a small registry version in a temporary folder, compiles its trees (treelite +
tl2cgen, `efimero models compile`), then times single predictions of realistic rows through
five paths, interleaved call by call (in rotating order) so drift and cache effects hit all
alike:

  (a) efimero.predict(row, models=dir)   module-level, cached; reads the `current` pointer per call
  (b) bundle.predict(row), XGBoost       a ModelBundle without compiled trees (efimero before #13):
                                         validation, scaling, one DMatrix, label mapping
  (e) bundle.predict(row), compiled      the same bundle with its compiled trees attached
  (c) raw inplace_predict                dict -> numpy row, standard scaling, booster.inplace_predict x4
  (d) raw DMatrix predict                the same, but one xgb.DMatrix(row) shared by booster.predict x4

Reports p50/p95/p99/mean in microseconds and each path's ratio to (c), then the time of
``predict_outputs`` over batches of rows, compiled vs XGBoost (where COMPILED_MAX_ROWS comes
from). No absolute thresholds: the numbers depend on the machine, so compare ratios.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import efimero
import numpy as np
import xgboost as xgb
from efimero._api import train
from efimero.bundle import COMPILED_MAX_ROWS
from efimero.compiled import entries
from efimero.config import load_training_config
from efimero.data.generate import generate_dataset
from efimero.registry import Registry
from efimero.schema import FEATURE_NAMES

from _common import print_environment, print_load_after, print_table

Context = Mapping[str, Any]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="timed predictions per path (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed predictions per path first (default 200)")
    parser.add_argument("--rows", type=int, default=5000, help="rows of the training data (default 5000)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the training data (default 42)")
    return parser.parse_args()


def raw_paths(bundle: efimero.training.ModelBundle) -> tuple[Callable[[Context], Any], Callable[[Context], Any]]:
    """What a user without efimero would write: the (c) and (d) paths over the same boosters."""
    names = list(bundle.feature_names)
    mean, scale = bundle.preprocessor.mean, bundle.preprocessor.scale
    boosters = [model.booster for model in bundle.models.values()]

    def scaled(context: Context) -> np.ndarray:
        row: np.ndarray = (np.array([context[n] for n in names], dtype=float) - mean) / scale
        return row.reshape(1, -1)

    def inplace(context: Context) -> list[np.ndarray]:
        row = scaled(context)
        return [booster.inplace_predict(row) for booster in boosters]

    def dmatrix(context: Context) -> list[np.ndarray]:
        matrix = xgb.DMatrix(scaled(context))
        return [booster.predict(matrix) for booster in boosters]

    return inplace, dmatrix


def check_same_outputs(bundle: efimero.training.ModelBundle, raw: Callable[[Context], Any], context: Context) -> None:
    """The raw baseline must compute what efimero computes, or the comparison means nothing."""
    expected = bundle.predict_outputs(np.array([[context[n] for n in bundle.feature_names]], dtype=float))
    for (name, model), output in zip(bundle.models.items(), raw(context)):
        values = np.asarray(output).reshape(1, -1)
        if model.kind == "regressor":
            values = values * model.target_scale + model.target_mean
        if not np.allclose(values, expected[name], rtol=1e-5, atol=1e-6):
            raise SystemExit(f"raw baseline disagrees with efimero on model {name!r}")


def summarise(label: str, samples_ns: list[int], baseline: dict[str, float] | None) -> tuple[list[str], dict[str, float]]:
    micro = np.asarray(samples_ns, dtype=float) / 1000
    stats = {"p50": float(np.percentile(micro, 50)), "p95": float(np.percentile(micro, 95)),
             "p99": float(np.percentile(micro, 99)), "mean": float(micro.mean())}
    ratios = [f"{stats[k] / baseline[k]:.2f}x" if baseline else "1.00x" for k in ("p50", "mean")]
    return [label, *(f"{stats[k]:.1f}" for k in ("p50", "p95", "p99", "mean")), *ratios], stats


def main() -> None:
    args = parse_args()
    print_environment("single-prediction latency (bench/bench_predict.py)")
    with tempfile.TemporaryDirectory(prefix="efimero-bench-") as tmp:
        data, models = Path(tmp) / "train.csv", Path(tmp) / "models"
        efimero.generate(args.rows, output=data, seed=args.seed)
        config = load_training_config(overrides={"training": {"data": {"cv_folds": 0}}})
        started = time.perf_counter()
        run = train(data, output=models, config=config)
        print(f"trained version {run.version} on {args.rows} rows (cv_folds=0) in {time.perf_counter() - started:.1f} s")
        compiled_report = Registry(models).compile()
        print(f"compiled in {compiled_report.seconds:.1f} s ({compiled_report.toolchain}); "
              f"max |compiled - XGBoost| on the verification sample {compiled_report.max_abs_diff:.1e}")
        bundle = efimero.load(models)
        compiled = Registry(models).load()
        assert compiled.inference == "compiled", compiled.inference
        for model in bundle.models.values():
            model.compiled = None
        trees = ", ".join(f"{name}={m.booster.num_boosted_rounds()}" for name, m in bundle.models.items())
        print(f"boosted rounds per model: {trees}")

        # Realistic rows the models have not seen: another seed of the same generator.
        contexts: list[Context] = generate_dataset(1000, seed=args.seed + 1)[FEATURE_NAMES].to_dict("records")
        inplace, dmatrix = raw_paths(bundle)
        check_same_outputs(bundle, inplace, contexts[0])
        check_same_outputs(bundle, dmatrix, contexts[0])
        paths: dict[str, Callable[[Context], Any]] = {
            "(a) efimero.predict(row, models=dir)": lambda c: efimero.predict(c, models=models),
            "(b) bundle.predict(row), XGBoost": bundle.predict,
            "(e) bundle.predict(row), compiled": compiled.predict,
            "(c) raw: numpy scale + inplace_predict x4": inplace,
            "(d) raw: numpy scale + DMatrix predict x4": dmatrix,
        }
        for path in paths.values():
            for i in range(args.warmup):
                path(contexts[i % len(contexts)])
        labels = list(paths)
        samples: dict[str, list[int]] = {label: [] for label in labels}
        clock = time.perf_counter_ns
        for i in range(args.n):
            context = contexts[i % len(contexts)]
            shift = i % len(labels)
            for label in labels[shift:] + labels[:shift]:
                path = paths[label]
                start = clock()
                path(context)
                samples[label].append(clock() - start)
        batches = batch_times(bundle, compiled, np.array([[c[n] for n in bundle.feature_names] for c in contexts]))

    print(f"\n{args.n} single predictions per path after {args.warmup} warm-up calls (microseconds)\n")
    baseline_label = "(c) raw: numpy scale + inplace_predict x4"
    _, baseline = summarise(baseline_label, samples[baseline_label], None)
    rows = [summarise(label, values, baseline)[0] for label, values in samples.items()]
    print_table(["path", "p50 us", "p95 us", "p99 us", "mean us", "p50 vs (c)", "mean vs (c)"], rows)
    before, after = samples["(b) bundle.predict(row), XGBoost"], samples["(e) bundle.predict(row), compiled"]
    speedup = np.median(before) / np.median(after)
    print(f"\ntarget: bundle.predict at least 3x faster than before (p50 of (b) / (e)): {speedup:.1f}x, "
          f"{'met' if speedup >= 3 else 'NOT met'}")
    print(f"\npredict_outputs over a batch, median of repeated calls (us); COMPILED_MAX_ROWS = {COMPILED_MAX_ROWS}\n")
    print_table(["rows", "XGBoost us", "compiled us", "compiled / XGBoost"],
                [[str(n), f"{x:.0f}", f"{c:.0f}", f"{c / x:.2f}"] for n, (x, c) in batches.items()])
    print_load_after()


def batch_times(xgboost: efimero.training.ModelBundle, compiled: efimero.training.ModelBundle,
                rows: np.ndarray) -> dict[int, tuple[float, float]]:
    """Median time of predict_outputs on n rows through XGBoost and through the compiled trees (forced)."""
    times = {}
    for n in (1, 16, 64, 128, 256, 1000):
        batch = rows[:n]
        scaled = compiled._scaled(batch)
        converted = entries(scaled, len(compiled.feature_names))

        def through_compiled(converted: np.ndarray = converted) -> None:
            for model in compiled.models.values():
                model.predict_compiled(converted)

        medians = []
        for run in (lambda batch=batch: xgboost.predict_outputs(batch), through_compiled):
            spent = []
            for _ in range(max(5, 2000 // n)):
                start = time.perf_counter_ns()
                run()
                spent.append(time.perf_counter_ns() - start)
            medians.append(float(np.median(spent)) / 1000)
        times[n] = (medians[0], medians[1])
    return times


if __name__ == "__main__":
    main()
