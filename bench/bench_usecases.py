"""How do the worked use cases score against their baselines, and how long do 64 use cases take?

Part 1, the worked examples of usecases/ (breast_cancer, wine, diabetes, segmentation, churn):
every algorithm each lists, tuned by CV on the training split, with its validation and test
scores on the primary metric (and the gate's metrics on test), beside the baseline (majority
class, training mean, random cluster ids) of the same split. The best by validation is kept.

Part 2, `efimero usecase generate-examples --count 64` then every one of them trained in one
process, as `efimero usecase train --all` does: the wall time, the share spent inside the
algorithms' tuning and fitting (the rest: generating the tables, preprocessing, baselines,
gate, registry writes), and how many passed their gate. No absolute thresholds.
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

from _common import print_environment, print_load_after, print_table

from efimero.usecases import TrainResult, train_usecase, write_examples

WORKED = Path(__file__).resolve().parents[1] / "usecases"
EXAMPLES = ["breast_cancer", "wine", "diabetes", "segmentation", "churn"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=64, help="generated use cases (default 64)")
    parser.add_argument("--rows", type=int, default=500, help="rows of each generated table (default 500)")
    parser.add_argument("--skip-worked", action="store_true", help="only part 2")
    parser.add_argument("--skip-generated", action="store_true", help="only part 1")
    return parser.parse_args()


def _f(value: object) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def worked(models: Path) -> None:
    for key in EXAMPLES:
        result = train_usecase(WORKED / f"{key}.yaml", models=models)
        metric = result.primary_metric
        gate = [name for name in result.thresholds if name != metric]
        print(f"== {key} ({result.task}), primary metric {metric}, gate {result.thresholds}")
        rows = [[run.algorithm + (" *" if run.algorithm == result.best else ""), _f(run.cv.get(metric)),
                 _f(run.validation.get(metric)), _f(run.test.get(metric)),
                 *(_f(run.test.get(name)) for name in gate), f"{run.seconds:.1f}"] for run in result.runs]
        rows.append(["baseline", "-", _f(result.baseline_validation.get(metric)),
                     _f(result.baseline_test.get(metric)), *(_f(result.baseline_test.get(name)) for name in gate), "-"])
        print_table(["algorithm", f"cv {metric}", f"val {metric}", f"test {metric}",
                     *(f"test {name}" for name in gate), "s"], rows)
        verdict = "passed" if result.passed else "REFUSED: " + "; ".join(result.gate_failures)
        print(f"kept {result.best} as {result.entry['version']}, gate {verdict}, {result.seconds:.1f} s\n")


def generated(models: Path, folder: Path, count: int, rows: int) -> None:
    paths = write_examples(folder, count=count, rows=rows)
    started = time.perf_counter()
    results: list[TrainResult] = [train_usecase(path, models=models) for path in paths]
    wall = time.perf_counter() - started
    inside = sum(run.seconds for result in results for run in result.runs)
    by_task: dict[str, list[TrainResult]] = collections.defaultdict(list)
    for result in results:
        by_task[result.task].append(result)
    table = []
    for task, group in sorted(by_task.items()):
        metric = group[0].primary_metric
        mean = sum(r.test[metric] or 0.0 for r in group) / len(group)
        base = sum(r.baseline_test[metric] or 0.0 for r in group) / len(group)
        table.append([task, str(len(group)), metric, f"{mean:.4f}", f"{base:.4f}",
                      str(sum(r.passed for r in group)), f"{sum(r.seconds for r in group):.1f}"])
    print_table(["task", "use cases", "metric", "mean test", "mean baseline", "passed gate", "s"], table)
    algorithms = collections.Counter(run.algorithm for result in results for run in result.runs)
    print(f"\nalgorithm runs: {dict(algorithms)}")
    print(f"{len(results)} use cases, {sum(len(r.runs) for r in results)} algorithm runs trained in {wall:.1f} s wall "
          f"({wall / len(results):.2f} s per use case); {inside:.1f} s inside tuning and fitting "
          f"({inside / wall:.0%}), {sum(r.passed for r in results)} passed their gate")


def main() -> None:
    args = parse_args()
    print_environment("usecases: worked examples and generated use cases, n_jobs=1")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_worked:
            worked(Path(tmp) / "models")
        if not args.skip_generated:
            generated(Path(tmp) / "models64", Path(tmp) / "generated", args.count, args.rows)
    print_load_after()


if __name__ == "__main__":
    main()
